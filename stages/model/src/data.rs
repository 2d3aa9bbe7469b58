//! The training data: normalised motion features, sentences and their embeddings,
//! paired per split, and deterministic batches of similar lengths.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context};
use arrow_array::{Array, FixedSizeListArray, Float32Array, Int32Array, ListArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pipe_motion::features::{to_features, Mmm, N_FEATURES};
use pipe_motion::stats::{for_each_motion, Normalisation};
use pipe_tabular::column;
use tch::{Device, Kind, Tensor};

/// One motion, its features normalised with the train-split statistics.
pub struct Motion {
    pub id: String,
    pub split: String,
    pub frames: usize,
    /// `frames × N_FEATURES`, row-major.
    pub features: Vec<f32>,
}

/// Everything training reads, in memory.
pub struct Dataset {
    pub norm: Normalisation,
    pub motions: Vec<Motion>,
    pub sentences: Vec<String>,
    /// `sentences.len() × text_dim`.
    pub pooled: Vec<f32>,
    /// Per sentence: `n × text_dim` token states (when the embeddings have them).
    pub tokens: Option<Vec<Vec<f32>>>,
    pub text_dim: usize,
    /// Encoder name and digest from the embeddings file's metadata.
    pub encoder: (String, String),
    /// Per split: (motion index, sentence index) pairs.
    pub pairs: BTreeMap<String, Vec<(usize, usize)>>,
    /// Mirrored training pairs added, and those left out because the mirrored
    /// sentence has no embedding.
    pub mirrored: (usize, usize),
}

fn open(path: &Path) -> anyhow::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?)
}

fn f32_values(a: &dyn Array, what: &str) -> anyhow::Result<Vec<f32>> {
    let f = a
        .as_any()
        .downcast_ref::<Float32Array>()
        .with_context(|| format!("{what}: expected float32 values"))?;
    if f.null_count() > 0 {
        bail!("{what}: null values");
    }
    Ok(f.values().to_vec())
}

impl Dataset {
    /// `norm.json`, `motions.parquet`, `texts.parquet`, `text_embeddings.parquet`.
    pub fn load(
        norm: &Path,
        motions: &Path,
        texts: &Path,
        embeddings: &Path,
        mirror: bool,
    ) -> anyhow::Result<Self> {
        let norm: Normalisation = serde_json::from_slice(
            &std::fs::read(norm).with_context(|| format!("reading {}", norm.display()))?,
        )
        .with_context(|| format!("{}: not a normalisation file", norm.display()))?;
        if norm.stats.mean.len() != N_FEATURES || norm.stats.std.len() != N_FEATURES {
            bail!(
                "normalisation has {} features, the model needs {N_FEATURES}",
                norm.stats.mean.len()
            );
        }
        let mut ms = Vec::new();
        let skeleton = pipe_kit::body::Skeleton::mmm();
        // Motion id → index of its mirrored copy.
        let mut mirrored_of: HashMap<String, usize> = HashMap::new();
        for_each_motion(motions, |m| {
            if (m.fps - norm.fps).abs() > 1e-9 {
                bail!(
                    "motion {} is at {} Hz, the normalisation at {} Hz",
                    m.id,
                    m.fps,
                    norm.fps
                );
            }
            let normalise = |mmm: &Mmm| {
                let (f, _) = to_features(mmm, m.fps);
                f.chunks_exact(N_FEATURES)
                    .flat_map(|row| {
                        row.iter()
                            .zip(norm.stats.mean.iter().zip(&norm.stats.std))
                            .map(|(x, (mu, sd))| ((x - mu) / sd) as f32)
                    })
                    .collect::<Vec<f32>>()
            };
            if mirror && m.split == "train" {
                let mb = pipe_kit::body::mirror::mirror(&skeleton, &m.body());
                let mm = Mmm {
                    root_position: mb.root_position,
                    root_rotation: mb.root_rotation,
                    joints: mb.joints,
                };
                mirrored_of.insert(m.id.clone(), ms.len() + 1);
                let orig = Motion {
                    id: m.id.clone(),
                    split: m.split.clone(),
                    frames: m.mmm.frames(),
                    features: normalise(&m.mmm),
                };
                ms.push(orig);
                ms.push(Motion {
                    id: format!("{}~mirrored", m.id),
                    split: "train".into(),
                    frames: mm.frames(),
                    features: normalise(&mm),
                });
                return Ok(());
            }
            ms.push(Motion {
                id: m.id.clone(),
                split: m.split.clone(),
                frames: m.mmm.frames(),
                features: normalise(&m.mmm),
            });
            Ok(())
        })?;
        let (sentences, pooled, tokens, text_dim, encoder) = read_embeddings(embeddings)?;
        let index: HashMap<&str, usize> = sentences
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let by_id: HashMap<&str, usize> = ms
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.as_str(), i))
            .collect();
        let mut pairs: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        let mut mirrored = (0, 0);
        for b in open(texts)? {
            let b = b?;
            let ids = column::<StringArray>(&b, "id", texts)?;
            let sents = column::<StringArray>(&b, "sentence", texts)?;
            for i in 0..b.num_rows() {
                let Some(&m) = by_id.get(ids.value(i)) else {
                    bail!(
                        "{}: sentence for motion {} which motions.parquet lacks",
                        texts.display(),
                        ids.value(i)
                    );
                };
                let Some(&s) = index.get(sents.value(i)) else {
                    bail!(
                        "{}: sentence {:?} has no embedding in {} (re-run the embed stage)",
                        texts.display(),
                        sents.value(i),
                        embeddings.display()
                    );
                };
                pairs.entry(ms[m].split.clone()).or_default().push((m, s));
                if let Some(&mi) = mirrored_of.get(ids.value(i)) {
                    let swapped = pipe_kit::body::mirror::mirror_sentence(sents.value(i));
                    match index.get(swapped.as_str()) {
                        Some(&ms_) => {
                            pairs.entry("train".into()).or_default().push((mi, ms_));
                            mirrored.0 += 1;
                        }
                        None => mirrored.1 += 1,
                    }
                }
            }
        }
        if pairs.get("train").is_none_or(|p| p.is_empty()) {
            bail!("{}: no sentence in the train split", texts.display());
        }
        Ok(Dataset {
            norm,
            motions: ms,
            sentences,
            pooled,
            tokens,
            text_dim,
            encoder,
            pairs,
            mirrored,
        })
    }

    pub fn split(&self, name: &str) -> &[(usize, usize)] {
        self.pairs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Per training motion: its distinct sentences (for `train.text_mix`).
    pub fn paraphrases(&self) -> HashMap<usize, Vec<usize>> {
        let mut of: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(m, s) in self.split("train") {
            let v = of.entry(m).or_default();
            if !v.contains(&s) {
                v.push(s);
            }
        }
        of
    }

    /// The pooled vectors of `pairs` (`B × text_dim`), each with probability `p`
    /// replaced by `(1 − w)·own + w·other`, `other` another of its motion's
    /// `paraphrases` and `w` uniform in [0, 1), scaled back to the own vector's length.
    pub fn mixed_pooled(
        &self,
        pairs: &[(usize, usize)],
        paraphrases: &HashMap<usize, Vec<usize>>,
        p: f64,
        rng: &mut Rng,
    ) -> Vec<f32> {
        let d = self.text_dim;
        let row = |s: usize| &self.pooled[s * d..(s + 1) * d];
        let mut out = Vec::with_capacity(pairs.len() * d);
        for &(m, s) in pairs {
            let own = row(s);
            let others: Vec<usize> = paraphrases
                .get(&m)
                .map(|v| v.iter().copied().filter(|&o| o != s).collect())
                .unwrap_or_default();
            if others.is_empty() || rng.unit() >= p {
                out.extend_from_slice(own);
                continue;
            }
            let other = row(others[rng.below(others.len() as u64) as usize]);
            let w = rng.unit() as f32;
            let mixed: Vec<f32> = own
                .iter()
                .zip(other)
                .map(|(a, b)| (1.0 - w) * a + w * b)
                .collect();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let scale = norm(own) / norm(&mixed).max(1e-12);
            out.extend(mixed.iter().map(|x| x * scale));
        }
        out
    }

    /// `[N, text_dim]` pooled vectors of the distinct sentences of the train split,
    /// in sentence order: the bank generation's `retrieval` draws on.
    pub fn train_bank(&self) -> Tensor {
        let d = self.text_dim;
        let idx: std::collections::BTreeSet<usize> =
            self.split("train").iter().map(|&(_, s)| s).collect();
        let mut v = Vec::with_capacity(idx.len() * d);
        for &s in &idx {
            v.extend_from_slice(&self.pooled[s * d..(s + 1) * d]);
        }
        Tensor::from_slice(&v).view([idx.len() as i64, d as i64])
    }

    /// The training motions behind [`Dataset::train_bank`], for `retrieval_init`:
    /// their normalised features end to end `[ΣT, F]`, where each begins (`[M + 1]`,
    /// the last the total), and every (bank row, motion row) pair `[P, 2]`.
    pub fn train_motion_bank(&self) -> [Tensor; 3] {
        let pairs = self.split("train");
        let rows: BTreeMap<usize, i64> = pairs
            .iter()
            .map(|&(_, s)| s)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .zip(0..)
            .collect();
        let motions: BTreeMap<usize, i64> = pairs
            .iter()
            .map(|&(m, _)| m)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .zip(0..)
            .collect();
        let mut features = Vec::new();
        let mut offsets = vec![0i64];
        for &m in motions.keys() {
            features.extend_from_slice(&self.motions[m].features);
            offsets.push((features.len() / N_FEATURES) as i64);
        }
        // One entry per distinct pair, in bank order.
        let mut links: Vec<[i64; 2]> = pairs.iter().map(|(m, s)| [rows[s], motions[m]]).collect();
        links.sort_unstable();
        links.dedup();
        [
            Tensor::from_slice(&features).view([-1, N_FEATURES as i64]),
            Tensor::from_slice(&offsets),
            Tensor::from_slice(&links.concat()).view([-1, 2]),
        ]
    }

    /// A padded batch of `pairs`; clips longer than `max_frames` are cropped at a
    /// position drawn from `rng`; T is rounded up to a multiple of `k`.
    pub fn batch(
        &self,
        pairs: &[(usize, usize)],
        max_frames: usize,
        k: usize,
        rng: &mut Rng,
        device: Device,
    ) -> Batch {
        let lens: Vec<usize> = pairs
            .iter()
            .map(|&(m, _)| self.motions[m].frames.min(max_frames))
            .collect();
        let t = lens.iter().copied().max().unwrap_or(k).div_ceil(k) * k;
        let b = pairs.len();
        let mut x = vec![0f32; b * t * N_FEATURES];
        let mut mask = vec![false; b * t];
        let mut pooled = Vec::with_capacity(b * self.text_dim);
        for (i, (&(m, s), &len)) in pairs.iter().zip(&lens).enumerate() {
            let mo = &self.motions[m];
            let start = if mo.frames > len {
                rng.below((mo.frames - len + 1) as u64) as usize
            } else {
                0
            };
            x[i * t * N_FEATURES..(i * t + len) * N_FEATURES]
                .copy_from_slice(&mo.features[start * N_FEATURES..(start + len) * N_FEATURES]);
            mask[i * t..i * t + len].fill(true);
            pooled.extend_from_slice(&self.pooled[s * self.text_dim..(s + 1) * self.text_dim]);
        }
        let tokens = self.tokens.as_ref().map(|toks| {
            let l = pairs
                .iter()
                .map(|&(_, s)| toks[s].len() / self.text_dim)
                .max()
                .unwrap_or(1)
                .max(1);
            let mut tk = vec![0f32; b * l * self.text_dim];
            let mut tm = vec![false; b * l];
            for (i, &(_, s)) in pairs.iter().enumerate() {
                let n = toks[s].len() / self.text_dim;
                tk[i * l * self.text_dim..][..toks[s].len()].copy_from_slice(&toks[s]);
                tm[i * l..i * l + n].fill(true);
            }
            (
                Tensor::from_slice(&tk)
                    .view([b as i64, l as i64, self.text_dim as i64])
                    .to_device(device),
                Tensor::from_slice(&tm)
                    .view([b as i64, l as i64])
                    .to_device(device),
            )
        });
        Batch {
            x0: Tensor::from_slice(&x)
                .view([b as i64, t as i64, N_FEATURES as i64])
                .to_device(device),
            mask: Tensor::from_slice(&mask)
                .view([b as i64, t as i64])
                .to_device(device),
            pooled: Tensor::from_slice(&pooled)
                .view([b as i64, self.text_dim as i64])
                .to_device(device),
            tokens,
            frames: Tensor::from_slice(&lens.iter().map(|&l| l as f32).collect::<Vec<_>>())
                .to_device(device),
        }
    }
}

/// A padded batch on the training device.
pub struct Batch {
    /// `[B, T, F]` normalised features, zero in padded frames.
    pub x0: Tensor,
    /// `[B, T]` bool, true = real frame.
    pub mask: Tensor,
    /// `[B, Dt]`.
    pub pooled: Tensor,
    /// `[B, L, Dt]` and `[B, L]` mask.
    pub tokens: Option<(Tensor, Tensor)>,
    /// `[B]` real frames (float).
    pub frames: Tensor,
}

type Embeddings = (
    Vec<String>,
    Vec<f32>,
    Option<Vec<Vec<f32>>>,
    usize,
    (String, String),
);

fn read_embeddings(path: &Path) -> anyhow::Result<Embeddings> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?;
    let meta = builder.schema().metadata().clone();
    let encoder = (
        meta.get("pipe.encoder").cloned().unwrap_or_default(),
        meta.get("pipe.encoder_digest").cloned().unwrap_or_default(),
    );
    let mut sentences = Vec::new();
    let mut pooled = Vec::new();
    let mut tokens: Option<Vec<Vec<f32>>> = None;
    let mut dim = 0usize;
    for b in builder.build()? {
        let b = b?;
        let s = column::<StringArray>(&b, "sentence", path)?;
        let e = column::<FixedSizeListArray>(&b, "embedding", path)?;
        dim = e.value_length() as usize;
        let vals = f32_values(
            e.values().as_ref(),
            &format!("{}: embedding", path.display()),
        )?;
        if let Some(bad) = vals.iter().find(|v| !v.is_finite()) {
            bail!("{}: non-finite embedding value {bad}", path.display());
        }
        pooled.extend_from_slice(&vals[e.offset() * dim..(e.offset() + e.len()) * dim]);
        sentences.extend((0..b.num_rows()).map(|i| s.value(i).to_string()));
        if let Some(ts) = b.column_by_name("token_states") {
            let ts = ts.as_any().downcast_ref::<ListArray>().with_context(|| {
                format!("{}: token_states has an unexpected type", path.display())
            })?;
            let out = tokens.get_or_insert_with(Vec::new);
            for i in 0..b.num_rows() {
                let v = ts.value(i);
                let fsl = v
                    .as_any()
                    .downcast_ref::<FixedSizeListArray>()
                    .with_context(|| {
                        format!(
                            "{}: token_states rows are not fixed-size lists",
                            path.display()
                        )
                    })?;
                let vals = f32_values(
                    fsl.values().as_ref(),
                    &format!("{}: token_states", path.display()),
                )?;
                out.push(vals[fsl.offset() * dim..(fsl.offset() + fsl.len()) * dim].to_vec());
            }
        }
        let _ = column::<Int32Array>(&b, "n_tokens", path)?;
    }
    if sentences.is_empty() || dim == 0 {
        bail!("{}: no embeddings", path.display());
    }
    Ok((sentences, pooled, tokens, dim, encoder))
}

/// SplitMix64: the batch order and crops (torch's own generator draws the noise).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A seed for one purpose at one step, so every step's randomness is a function of
/// (seed, step) alone: resuming at step s draws what an uninterrupted run drew.
pub fn derive_seed(seed: u64, purpose: u64, step: u64) -> u64 {
    let mut r = Rng::new(seed ^ purpose.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    r.0 ^= step.wrapping_mul(0xA076_1D64_78BD_642F);
    r.next_u64()
}

/// The batches of one epoch: pairs shuffled, grouped into pools of 8 batches sorted
/// by length (little padding), cut into batches, batch order shuffled.
pub fn epoch_batches(
    data: &Dataset,
    pairs: &[(usize, usize)],
    batch: usize,
    seed: u64,
    epoch: u64,
) -> Vec<Vec<(usize, usize)>> {
    let mut rng = Rng::new(derive_seed(seed, 1, epoch));
    let mut order = pairs.to_vec();
    rng.shuffle(&mut order);
    let mut out = Vec::new();
    for pool in order.chunks(batch * 8) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&(m, _)| data.motions[m].frames);
        out.extend(pool.chunks(batch).map(<[_]>::to_vec));
    }
    rng.shuffle(&mut out);
    out
}

/// `[B, T, F]` → per-sample masked mean over frames and features, `[B]`.
pub fn masked_mse(a: &Tensor, b: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.to_kind(Kind::Float).unsqueeze(2);
    let f = a.size()[2] as f64;
    let se = (a - b).square() * &m;
    se.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float)
        / (m.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float) * f).clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_uniform_enough_and_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..1000).map(|_| a.below(10)).collect();
        assert_eq!(xs, (0..1000).map(|_| b.below(10)).collect::<Vec<_>>());
        for k in 0..10 {
            let c = xs.iter().filter(|&&x| x == k).count();
            assert!((60..140).contains(&c), "{k}: {c}");
        }
        assert_ne!(derive_seed(1, 2, 3), derive_seed(1, 2, 4));
    }

    #[test]
    fn masked_mse_ignores_padding() {
        let a = Tensor::from_slice(&[1f32, 1.0, 1.0, 5.0]).view([1, 2, 2]);
        let b = Tensor::zeros([1, 2, 2], (Kind::Float, Device::Cpu));
        let m = Tensor::from_slice(&[true, false]).view([1, 2]);
        assert_eq!(masked_mse(&a, &b, &m).double_value(&[0]), 1.0);
    }
}

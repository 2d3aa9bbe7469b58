//! A trained model on disk: `model.safetensors` (weights) + `config.json` (everything
//! needed to rebuild the network and undo the feature normalisation). Loading checks
//! every tensor's name and shape against the rebuilt model, so weights from another
//! model config are refused with the tensor that differs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use crate::config::ModelConfig;
use crate::model::{Dims, MotionModel};

pub const FORMAT: &str = "pipe.motion-model/1";

/// The `[N, Dt]` pooled vectors of the distinct training sentences, stored beside
/// the weights in `model.safetensors` (what `retrieval` in generation snaps to).
pub const TEXT_BANK: &str = "text_bank";

/// The training motions behind [`TEXT_BANK`] (what `retrieval_init` starts from),
/// written by `Dataset::train_motion_bank`: their normalised features end to end
/// `[ΣT, F]`, where each begins `[M + 1]`, and the (bank row, motion) pairs `[P, 2]`.
pub const MOTION_BANK: [&str; 3] = ["motion_bank", "motion_bank_offsets", "text_bank_motions"];

/// The training motions of the sentence bank, in memory (CPU).
#[derive(Debug)]
pub struct MotionBank {
    /// `[ΣT, F]` normalised features, row-major.
    features: Vec<f32>,
    width: usize,
    /// Motion `m` is frames `offsets[m]..offsets[m + 1]`.
    offsets: Vec<usize>,
    /// Per bank row (sentence): the motions it was paired with.
    pub motions_of: Vec<Vec<usize>>,
}

impl MotionBank {
    /// A bank from its parts, as the checkpoint stores them (checked there).
    pub fn new(
        features: Vec<f32>,
        width: usize,
        offsets: Vec<usize>,
        motions_of: Vec<Vec<usize>>,
    ) -> Self {
        MotionBank {
            features,
            width,
            offsets,
            motions_of,
        }
    }

    /// Features per frame.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Motion `m`'s features, `frames × F`.
    pub fn motion(&self, m: usize) -> &[f32] {
        &self.features[self.offsets[m] * self.width..self.offsets[m + 1] * self.width]
    }

    /// How many motions.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read and check the [`MOTION_BANK`] tensors (all three or none).
fn motion_bank(
    tensors: &BTreeMap<String, Tensor>,
    file: &Path,
    sentences: usize,
    width: i64,
) -> anyhow::Result<Option<MotionBank>> {
    let found: Vec<&Tensor> = MOTION_BANK.iter().filter_map(|k| tensors.get(*k)).collect();
    if found.is_empty() {
        return Ok(None);
    }
    let [f, o, l] = found.as_slice() else {
        bail!(
            "{}: has only some of the motion bank's tensors {MOTION_BANK:?}",
            file.display()
        );
    };
    let bad = |what: String| anyhow::anyhow!("{}: {what}", file.display());
    if f.dim() != 2 || f.size()[1] != width {
        return Err(bad(format!(
            "`{}` has shape {:?}, expected [frames, {width}]",
            MOTION_BANK[0],
            f.size()
        )));
    }
    let ints = |t: &Tensor, name: &str| -> anyhow::Result<Vec<i64>> {
        Vec::<i64>::try_from(t.reshape([-1]).to_kind(tch::Kind::Int64))
            .map_err(|e| bad(format!("`{name}`: {e}")))
    };
    let offsets = ints(o, MOTION_BANK[1])?;
    let frames = f.size()[0];
    if o.dim() != 1
        || offsets.first() != Some(&0)
        || offsets.last() != Some(&frames)
        || offsets.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(bad(format!(
            "`{}` must rise from 0 to the {frames} frames of `{}`, one step per motion",
            MOTION_BANK[1], MOTION_BANK[0]
        )));
    }
    let links = ints(l, MOTION_BANK[2])?;
    let motions = offsets.len() - 1;
    let mut motions_of = vec![Vec::new(); sentences];
    if l.dim() != 2 || l.size()[1] != 2 {
        return Err(bad(format!(
            "`{}` has shape {:?}, expected [pairs, 2]",
            MOTION_BANK[2],
            l.size()
        )));
    }
    for p in links.chunks_exact(2) {
        match (usize::try_from(p[0]), usize::try_from(p[1])) {
            (Ok(s), Ok(m)) if s < sentences && m < motions => motions_of[s].push(m),
            _ => {
                return Err(bad(format!(
                    "`{}` pairs sentence {} with motion {}: outside the {sentences} \
                     sentences and {motions} motions",
                    MOTION_BANK[2], p[0], p[1]
                )))
            }
        }
    }
    if let Some(s) = motions_of.iter().position(Vec::is_empty) {
        return Err(bad(format!(
            "`{}` gives bank sentence {s} no motion",
            MOTION_BANK[2]
        )));
    }
    let features = Vec::<f32>::try_from(f.reshape([-1]).to_kind(tch::Kind::Float))
        .map_err(|e| bad(format!("`{}`: {e}", MOTION_BANK[0])))?;
    Ok(Some(MotionBank::new(
        features,
        width as usize,
        offsets.into_iter().map(|x| x as usize).collect(),
        motions_of,
    )))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub format: String,
    pub model: ModelConfig,
    pub dims: Dims,
    /// Frame rate of the features.
    pub fps: f64,
    pub features_version: u32,
    pub features: Vec<String>,
    /// Normalisation: feature = (raw − mean) / std.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// The text encoder the model was trained with (prompts must use the same).
    pub encoder: String,
    pub encoder_digest: String,
    pub steps: u64,
    pub seed: u64,
    pub libtorch: String,
}

/// Named parameters in a stable (sorted) order.
pub fn named(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Copy `tensors` (by name) into the variables of `vs`; every variable must be there
/// with the same shape.
pub fn fill(
    vs: &nn::VarStore,
    tensors: &BTreeMap<String, Tensor>,
    file: &Path,
    prefix: &str,
) -> anyhow::Result<()> {
    for (name, mut var) in named(vs) {
        let key = format!("{prefix}{name}");
        let Some(t) = tensors.get(&key) else {
            bail!(
                "{}: no tensor `{key}` (a checkpoint of another model config?)",
                file.display()
            );
        };
        if t.size() != var.size() {
            bail!(
                "{}: tensor `{key}` has shape {:?}, the model config needs {:?} \
                 (a checkpoint of another model config?)",
                file.display(),
                t.size(),
                var.size()
            );
        }
        tch::no_grad(|| var.f_copy_(t))
            .with_context(|| format!("{}: copying `{key}`", file.display()))?;
    }
    Ok(())
}

pub fn read_tensors(file: &Path) -> anyhow::Result<BTreeMap<String, Tensor>> {
    read_tensors_where(file, |_| true)
}

/// The tensors of a safetensors file whose names `keep` accepts; the others are not
/// read (a model's weights are a third of a checkpoint that carries its motion bank).
pub fn read_tensors_where(
    file: &Path,
    keep: impl Fn(&str) -> bool,
) -> anyhow::Result<BTreeMap<String, Tensor>> {
    use std::os::unix::fs::FileExt;
    if !file.exists() {
        bail!("{}: no such file", file.display());
    }
    let bad = |why: String| {
        anyhow::anyhow!(
            "{}: not a readable safetensors file ({why})",
            file.display()
        )
    };
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let mut n = [0u8; 8];
    f.read_exact_at(&mut n, 0)
        .map_err(|e| bad(format!("no header: {e}")))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 || n + 8 > len {
        return Err(bad(format!("a header of {n} bytes in a file of {len}")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact_at(&mut header, 8)
        .map_err(|e| bad(format!("header: {e}")))?;
    // The header's schema and dtypes as the safetensors crate (tch's reader) has them.
    let header: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let data_start = 8 + n;
    let mut out = BTreeMap::new();
    for (name, info) in header.tensors() {
        if !keep(&name) {
            continue;
        }
        let kind =
            tch::Kind::try_from(info.dtype).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let (b, end) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        let bytes = info
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|k| k.checked_mul(info.dtype.size()));
        let past_file = data_start.checked_add(end).is_none_or(|e| e > len);
        if b > end || past_file || bytes != Some((end - b) as usize) {
            return Err(bad(format!(
                "tensor `{name}`: bytes {b}..{end} of a {}-byte data block for shape {:?} {:?}",
                len - data_start,
                info.shape,
                info.dtype
            )));
        }
        let shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        let mut data = vec![0u8; (end - b) as usize];
        f.read_exact_at(&mut data, data_start + b)
            .map_err(|err| bad(format!("tensor `{name}`: {err}")))?;
        let t = Tensor::f_from_data_size(&data, &shape, kind)
            .map_err(|err| bad(format!("tensor `{name}`: {err}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// A rebuilt model: its variables, the network, its card and, when the checkpoint
/// has them, the training-sentence bank ([`TEXT_BANK`]). Its motions
/// ([`MOTION_BANK`]) are read only when asked for: [`load_motion_bank`].
pub type Loaded = (nn::VarStore, MotionModel, ModelCard, Option<Tensor>);

/// Rebuild the model of the checkpoint folder `dir` on `device`.
pub fn load(dir: &Path, device: Device) -> anyhow::Result<Loaded> {
    load_files(
        &dir.join("model.safetensors"),
        &dir.join("config.json"),
        device,
    )
}

/// Rebuild the model from its weights and `config.json`.
pub fn load_files(weights: &Path, cfg_path: &Path, device: Device) -> anyhow::Result<Loaded> {
    let text =
        std::fs::read(cfg_path).with_context(|| format!("reading {}", cfg_path.display()))?;
    let card: ModelCard = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a model config", cfg_path.display()))?;
    if card.format != FORMAT {
        bail!(
            "{}: format `{}`, this pipe reads `{FORMAT}`",
            cfg_path.display(),
            card.format
        );
    }
    card.model
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
    let vs = nn::VarStore::new(device);
    // Not initialised: every variable is overwritten from the file next.
    let model = MotionModel::for_loading(&vs.root(), &card.model, card.dims);
    let tensors = read_tensors_where(weights, |name| !MOTION_BANK.contains(&name))?;
    fill(&vs, &tensors, weights, "")?;
    let bank = match tensors.get(TEXT_BANK) {
        Some(b) if b.dim() != 2 || b.size()[1] != card.dims.text || b.size()[0] == 0 => bail!(
            "{}: `{TEXT_BANK}` has shape {:?}, expected [sentences, {}]",
            weights.display(),
            b.size(),
            card.dims.text
        ),
        Some(b) => Some(b.to_device(device)),
        None => None,
    };
    Ok((vs, model, card, bank))
}

/// The training motions of the checkpoint `weights` for its `sentences` bank rows
/// (`None` where it has none: written before them).
pub fn load_motion_bank(
    weights: &Path,
    card: &ModelCard,
    sentences: usize,
) -> anyhow::Result<Option<MotionBank>> {
    let tensors = read_tensors_where(weights, |name| MOTION_BANK.contains(&name))?;
    motion_bank(&tensors, weights, sentences, card.dims.features)
}

/// Write `tensors` to `file` atomically (temp file + rename).
pub fn write_tensors(file: &Path, tensors: &[(String, Tensor)]) -> anyhow::Result<()> {
    let tmp = file.with_extension("safetensors.tmp");
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(Device::Cpu)))
        .collect();
    Tensor::write_safetensors(&cpu, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("renaming to {}", file.display()))?;
    Ok(())
}

/// The card of a `model` with 50 features and 8-d text, for tests.
#[cfg(test)]
pub(crate) fn test_card(model: ModelConfig) -> ModelCard {
    ModelCard {
        format: FORMAT.into(),
        model,
        dims: Dims {
            features: 50,
            text: 8,
        },
        fps: 20.0,
        features_version: 1,
        features: vec![],
        mean: vec![0.0; 50],
        std: vec![1.0; 50],
        encoder: "e".into(),
        encoder_digest: "d".into(),
        steps: 1,
        seed: 0,
        libtorch: "x".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(dir: &Path, model: ModelConfig) -> ModelCard {
        let vs = nn::VarStore::new(Device::Cpu);
        let card = test_card(model);
        let _m = MotionModel::new(&vs.root(), &card.model, card.dims);
        write_tensors(&dir.join("model.safetensors"), &named(&vs)).expect("write");
        write_card(dir, &card);
        card
    }

    fn write_card(dir: &Path, card: &ModelCard) {
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec(card).expect("json"),
        )
        .expect("write");
    }

    /// The whole error chain of a load that must fail.
    fn load_err(dir: &Path) -> String {
        format!("{:#}", load(dir, Device::Cpu).err().expect("must fail"))
    }

    fn small() -> ModelConfig {
        ModelConfig {
            layers: 1,
            d_model: 16,
            heads: 2,
            ff: 32,
            ..Default::default()
        }
    }

    #[test]
    fn a_saved_model_loads_back_identically() {
        let d = tempfile::tempdir().expect("tmp");
        let card = save(d.path(), small());
        let (vs, _m, back, bank) = load(d.path(), Device::Cpu).expect("load");
        assert!(bank.is_none());
        let w = d.path().join("model.safetensors");
        assert!(load_motion_bank(&w, &back, 1).expect("no bank").is_none());
        assert_eq!(back, card);
        let saved = read_tensors(&d.path().join("model.safetensors")).expect("read");
        for (name, t) in named(&vs) {
            assert!(saved[&name].equal(&t), "{name}");
        }
    }

    #[test]
    fn the_training_sentence_bank_loads_and_a_wrong_one_is_refused() {
        let d = tempfile::tempdir().expect("tmp");
        save(d.path(), small());
        let w = d.path().join("model.safetensors");
        let mut t: Vec<(String, Tensor)> = read_tensors(&w).expect("read").into_iter().collect();
        t.push((
            TEXT_BANK.into(),
            Tensor::ones([5, 8], (tch::Kind::Float, Device::Cpu)),
        ));
        write_tensors(&w, &t).expect("write");
        let bank = load(d.path(), Device::Cpu).expect("load").3.expect("bank");
        assert_eq!(bank.size(), vec![5, 8]);
        t.pop();
        t.push((
            TEXT_BANK.into(),
            Tensor::ones([5, 7], (tch::Kind::Float, Device::Cpu)),
        ));
        write_tensors(&w, &t).expect("write");
        let err = load_err(d.path());
        assert!(
            err.contains("`text_bank` has shape [5, 7], expected [sentences, 8]"),
            "{err}"
        );
    }

    #[test]
    fn the_bank_motions_load_and_broken_ones_are_refused() {
        let d = tempfile::tempdir().expect("tmp");
        save(d.path(), small());
        let w = d.path().join("model.safetensors");
        let base: Vec<(String, Tensor)> = read_tensors(&w).expect("read").into_iter().collect();
        let f32s = |v: &[f32], shape: &[i64]| Tensor::from_slice(v).view(shape);
        let i64s = |v: &[i64], shape: &[i64]| Tensor::from_slice(v).view(shape);
        // Two sentences, two motions (3 and 2 frames); sentence 1 describes both.
        let feats: Vec<f32> = (0..5 * 50).map(|i| i as f32).collect();
        let write = |offsets: &[i64], links: &[i64]| {
            let mut t: Vec<(String, Tensor)> = base
                .iter()
                .map(|(n, x)| (n.clone(), x.shallow_clone()))
                .collect();
            t.push((TEXT_BANK.into(), f32s(&[0.0; 16], &[2, 8])));
            t.push((MOTION_BANK[0].into(), f32s(&feats, &[5, 50])));
            t.push((MOTION_BANK[1].into(), i64s(offsets, &[-1])));
            t.push((MOTION_BANK[2].into(), i64s(links, &[-1, 2])));
            write_tensors(&w, &t).expect("write");
        };
        // The model loads without them; they are read when asked for.
        let motions_err = |d: &Path| {
            let (_vs, _m, card, bank) = load(d, Device::Cpu).expect("load");
            let rows = bank.expect("bank").size()[0] as usize;
            load_motion_bank(&d.join("model.safetensors"), &card, rows)
        };
        write(&[0, 3, 5], &[0, 0, 1, 0, 1, 1]);
        let mb = motions_err(d.path()).expect("load").expect("motions");
        assert_eq!(mb.motions_of, vec![vec![0], vec![0, 1]]);
        assert_eq!(mb.motion(1).len(), 2 * 50);
        assert_eq!(mb.motion(1)[0], 150.0);
        for (offsets, links, want) in [
            (
                &[0i64, 3, 4][..],
                &[0i64, 0, 1, 1][..],
                "must rise from 0 to the 5 frames",
            ),
            (&[0, 3, 3, 5], &[0, 0, 1, 1], "must rise from 0"),
            (&[0, 3, 5], &[0, 0, 1, 2], "pairs sentence 1 with motion 2"),
            (&[0, 3, 5], &[0, 0, 0, 1], "gives bank sentence 1 no motion"),
        ] {
            write(offsets, links);
            let err = format!("{:#}", motions_err(d.path()).expect_err("must fail"));
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn some_tensors_are_read_and_broken_files_are_refused() {
        let d = tempfile::tempdir().expect("tmp");
        save(d.path(), small());
        let w = d.path().join("model.safetensors");
        let all = read_tensors(&w).expect("read");
        let some = read_tensors_where(&w, |n| n.starts_with("layers")).expect("read");
        assert!(!some.is_empty() && some.len() < all.len());
        for (n, t) in &some {
            assert!(n.starts_with("layers"), "{n}");
            assert!(t.equal(&all[n]), "{n}");
        }
        let bytes = std::fs::read(&w).expect("read");
        let cases: [(&[u8], &str); 3] = [
            (&bytes[..4], "no header"),
            (&bytes[..bytes.len() - 1], "bytes "),
            (&[2, 0, 0, 0, 0, 0, 0, 0, b'{', b'x'], "header: "),
        ];
        for (cut, want) in cases {
            std::fs::write(&w, cut).expect("write");
            let err = format!("{:#}", read_tensors(&w).expect_err("must fail"));
            assert!(
                err.contains("model.safetensors: not a readable safetensors file")
                    && err.contains(want),
                "{err}"
            );
        }
    }

    #[test]
    fn weights_of_another_config_are_refused_by_name() {
        let d = tempfile::tempdir().expect("tmp");
        save(d.path(), small());
        // config.json of a wider model beside the small model's weights
        let mut card: ModelCard =
            serde_json::from_slice(&std::fs::read(d.path().join("config.json")).expect("read"))
                .expect("json");
        card.model.d_model = 32;
        write_card(d.path(), &card);
        let err = load_err(d.path());
        assert!(
            err.contains("model.safetensors: tensor `") && err.contains("another model config"),
            "{err}"
        );
        card.model.d_model = 16;
        card.model.layers = 2;
        write_card(d.path(), &card);
        let err = load_err(d.path());
        assert!(err.contains("no tensor `layers.1."), "{err}");
    }

    #[test]
    fn corrupt_or_missing_files_are_clear_errors() {
        let d = tempfile::tempdir().expect("tmp");
        save(d.path(), small());
        let w = d.path().join("model.safetensors");
        let bytes = std::fs::read(&w).expect("read");
        std::fs::write(&w, &bytes[..bytes.len() / 3]).expect("truncate");
        let err = load_err(d.path());
        assert!(
            err.contains("model.safetensors: not a readable safetensors file"),
            "{err}"
        );
        std::fs::remove_file(&w).expect("rm");
        let err = load_err(d.path());
        assert!(err.contains("model.safetensors: no such file"), "{err}");
        std::fs::write(d.path().join("config.json"), "{\"format\": 3}").expect("write");
        let err = load_err(d.path());
        assert!(err.contains("config.json: not a model config"), "{err}");
        let mut card = save(d.path(), small());
        card.model.layers = 0;
        write_card(d.path(), &card);
        let err = load_err(d.path());
        assert!(err.contains("model.layers must be at least 1"), "{err}");
    }
}

//! Prompt → motion files: the `generate:` config section, prompt encoding with the
//! model's own text encoder, sampling, and the files users open: per sample an `.npy`
//! (float32 `[frames, 50]`: root position x, y, z in mm (z up), root rotation x, y, z
//! in rad, the 44 KIT-ML joint angles in rad, canonical order), an MMM `.xml`, a
//! `.bvh` and a stick-figure `.png` contact sheet and `.gif` animation (the last
//! three can be turned off: `bvh: false`, `previews: false`); one
//! `generated.parquet` for all samples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Float64Builder, ListBuilder, StringBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, ModelCard};
use crate::config::TextConditioning;
use crate::data::derive_seed;
use crate::sample::{sample, text_gain, Request};
use pipe_kit::body::npy::WIDTH;
use pipe_kit::body::{BodyMotion, Skeleton};
use pipe_motion::features::{from_features, Start, N_FEATURES};
use pipe_text::encoder::Handed;

/// Motion length: seconds, or `auto` (the model's estimate from the text).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Seconds {
    #[default]
    Auto,
    Fixed(f64),
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Seconds::Auto => s.serialize_str("auto"),
            Seconds::Fixed(v) => s.serialize_f64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "auto" => Ok(Seconds::Auto),
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(Seconds::Fixed)
                .ok_or_else(|| serde::de::Error::custom("seconds: not a number")),
            other => Err(serde::de::Error::custom(format!(
                "seconds must be a number or `auto`, got {other}"
            ))),
        }
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Seconds::Auto);
        }
        s.parse::<f64>()
            .map(Seconds::Fixed)
            .map_err(|_| format!("--seconds must be a number or `auto`, got `{s}`"))
    }
}

/// Where retrieval measures which training sentences are nearest a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalSpace {
    /// The model's own text features (its projection of the sentence vector).
    #[default]
    Model,
    /// The motions the sentences predict: a ridge regression from sentence vectors
    /// onto summaries of the training motions they describe, fitted on the model's
    /// bank when first needed ([`crate::retrieval`]).
    Motion,
}

/// The `generate:` config section (and `pipe generate`'s options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateConfig {
    pub prompts: Vec<String>,
    pub seconds: Seconds,
    /// Samples per prompt (different seeds).
    pub count: usize,
    pub seed: u64,
    /// DDIM steps.
    pub steps: i64,
    /// Classifier-free guidance scale (1 = none).
    pub guidance: f64,
    /// DDIM η: 0 deterministic, 1 DDPM-like.
    pub eta: f64,
    /// η only on the steps with noise level t/T ≥ `eta_from` (0: every step).
    pub eta_from: f64,
    /// Guidance rescale φ in [0, 1] (0: off); see `sample::Request`.
    pub guidance_rescale: f64,
    /// Guidance scale of the root's horizontal velocity (absent: `guidance`); see
    /// `sample::Request`.
    pub velocity_guidance: Option<f64>,
    /// Guidance scale of the root height (absent: `guidance`); see `sample::Request`.
    pub height_guidance: Option<f64>,
    /// Retrieval: move each prompt's sentence vector towards its `retrieval` nearest
    /// training sentences (0: off); see [`snap`].
    pub retrieval: usize,
    /// How far (0: not at all, 1: all the way to their weighted mean; default 0.5,
    /// the best measured).
    pub retrieval_mix: f64,
    /// Where "nearest" is measured: `model`, the model's own text features, or
    /// `motion`, the motions the sentences predict ([`crate::retrieval`]).
    pub retrieval_space: RetrievalSpace,
    /// Retrieval-initialised sampling (0: off): start each sample not from pure
    /// noise but from a training motion of one of the `retrieval` nearest training
    /// sentences (drawn by similarity), noised to this level t/T, and denoise from
    /// there (SDEdit, Meng et al. 2022, with the starting motion found by the text,
    /// as in retrieval-augmented motion diffusion). The lower, the more of the
    /// retrieved motion's layout stays; see README.
    pub retrieval_init: f64,
    /// With `retrieval_init`: rank the retrieved training motions by how much the
    /// prompt helps the model itself denoise them ([`crate::sample::text_gain`], a
    /// diffusion model used as a classifier of its own condition) and start only from
    /// the better half, instead of from any of them by sentence similarity.
    pub retrieval_rank: bool,
    /// A negative prompt (empty: none): classifier-free guidance pushes away from
    /// the motion this sentence describes instead of from the model's unconditional
    /// one (as negative prompts in image diffusion). Encoded, and moved by
    /// `retrieval`, like the prompts.
    pub negative_prompt: String,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// CPU threads for libtorch and the text encoder (0: default).
    pub threads: i32,
    /// Subject height written into MMM files (m).
    pub height_m: f64,
    /// Write a `.bvh` per sample.
    pub bvh: bool,
    /// Write a stick-figure contact sheet (`.png`) and animation (`.gif`) per sample.
    pub previews: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            prompts: Vec::new(),
            seconds: Seconds::Auto,
            count: 1,
            seed: 0,
            steps: 50,
            guidance: 2.5,
            eta: 0.0,
            eta_from: 0.0,
            guidance_rescale: 0.0,
            velocity_guidance: None,
            height_guidance: None,
            retrieval: 0,
            retrieval_mix: 0.5,
            retrieval_space: RetrievalSpace::Model,
            retrieval_init: 0.0,
            retrieval_rank: false,
            negative_prompt: String::new(),
            device: "auto".into(),
            threads: 0,
            height_m: 1.75,
            bvh: true,
            previews: true,
        }
    }
}

impl GenerateConfig {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let g: GenerateConfig = pipe_stage_api::section(params, "generate")?;
        g.check(None).map(|_| g)
    }

    /// The rules; with the model's card, also the limits of that model.
    pub fn check(&self, card: Option<&ModelCard>) -> Result<(), String> {
        if let Some(i) = self.prompts.iter().position(|p| p.trim().is_empty()) {
            return Err(format!("prompt {} is empty", i + 1));
        }
        if self.count == 0 || self.count > 1000 {
            return Err(format!("count must be 1 to 1000, got {}", self.count));
        }
        for (k, v) in [
            ("guidance", Some(self.guidance)),
            ("velocity_guidance", self.velocity_guidance),
            ("height_guidance", self.height_guidance),
        ] {
            if let Some(v) = v.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err(format!("{k} must be 0 or more, got {v}"));
            }
        }
        for (k, v) in [
            ("eta", self.eta),
            ("eta_from", self.eta_from),
            ("guidance_rescale", self.guidance_rescale),
            ("retrieval_mix", self.retrieval_mix),
            ("retrieval_init", self.retrieval_init),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{k} must be in [0, 1], got {v}"));
            }
        }
        if self.retrieval > 1000 {
            return Err(format!(
                "retrieval must be 0 (off) to 1000 nearest sentences, got {}",
                self.retrieval
            ));
        }
        if self.retrieval_init > 0.0 && self.retrieval == 0 {
            return Err(
                "retrieval_init starts from the motions of the `retrieval` nearest training \
                 sentences: set retrieval to 1 or more"
                    .into(),
            );
        }
        if self.retrieval_rank && self.retrieval_init == 0.0 {
            return Err(
                "retrieval_rank ranks the motions retrieval_init starts from: set \
                 retrieval_init above 0 (e.g. 0.7)"
                    .into(),
            );
        }
        if self.steps < 1 {
            return Err(format!("steps must be at least 1, got {}", self.steps));
        }
        if !(self.height_m > 0.0 && self.height_m < 3.0) {
            return Err(format!(
                "height_m must be in (0, 3) m, got {}",
                self.height_m
            ));
        }
        if self.threads < 0 {
            return Err(format!("threads must be 0 or more, got {}", self.threads));
        }
        crate::device::parse(&self.device).map_err(|e| e.replace("train.device", "device"))?;
        if let Seconds::Fixed(s) = self.seconds {
            if !(s > 0.0 && s.is_finite()) {
                return Err(format!("seconds must be positive, got {s}"));
            }
        }
        if let Some(card) = card {
            // Settings that condition the model on a pooled sentence vector alone.
            let pooled_only = [
                (
                    !self.negative_prompt.trim().is_empty(),
                    "negative_prompt replaces the unconditional prediction by one",
                    "negative_prompt: \"\"",
                ),
                (
                    self.retrieval_rank,
                    "retrieval_rank scores motions",
                    "retrieval_rank: false",
                ),
            ];
            if card.model.text_conditioning.tokens() {
                if let Some((_, what, off)) = pooled_only.iter().find(|c| c.0) {
                    return Err(format!(
                        "{what} under the pooled sentence vector alone, and this model also \
                         reads the sentence's tokens: set {off}"
                    ));
                }
            }
            if self.steps > card.model.diffusion_steps {
                return Err(format!(
                    "steps must be at most the model's {} diffusion steps, got {}",
                    card.model.diffusion_steps, self.steps
                ));
            }
            let max_s = card.model.max_frames as f64 / card.fps;
            if let Seconds::Fixed(s) = self.seconds {
                if s > max_s + 1e-9 {
                    return Err(format!(
                        "seconds must be at most {max_s} (the model's longest motion), got {s}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One generated motion.
pub struct Generated {
    pub prompt_index: usize,
    pub prompt: String,
    pub sample: usize,
    pub seed: u64,
    pub fps: f64,
    /// `frames × 50` in the `.npy` layout.
    pub motion: Vec<f32>,
    /// Normalised model features `frames × 50` (diversity is measured on these).
    pub features: Vec<f64>,
    /// The same features in their own units (what the action criteria measure).
    pub raw: Vec<f64>,
    pub files: Vec<PathBuf>,
}

impl Generated {
    pub fn frames(&self) -> usize {
        self.motion.len() / WIDTH
    }

    /// The motion on the MMM body, for a subject `height_m` tall.
    pub fn body(&self, height_m: f64) -> Result<BodyMotion, String> {
        let v: Vec<f64> = self.motion.iter().map(|&x| x as f64).collect();
        pipe_kit::body::npy::motion_from_layout(self.frames(), WIDTH, &v, self.fps, height_m)
    }
}

/// A loaded model with its text encoder, ready to sample.
pub struct Generator {
    pub card: ModelCard,
    _vs: tch::nn::VarStore,
    model: crate::model::MotionModel,
    /// The text encoder, loaded when first needed where the prompts were handed over.
    encoder: Option<pipe_text::encoder::Encoder>,
    /// Where it is loaded from: its folder, ONNX Runtime's library, threads.
    encoder_from: (PathBuf, PathBuf, usize),
    /// The model's weights file (for messages, and the training motions it holds).
    weights: PathBuf,
    /// The prompts' vectors from the process that started this one (see [`Handed`]).
    handed: Option<Handed>,
    /// The training sentences' vectors (`None` in checkpoints written before it).
    bank: Option<Tensor>,
    /// Their motions (`None` in checkpoints written before them), read from the
    /// weights file when first needed (most sampling settings never do).
    motions: std::cell::OnceCell<Option<checkpoint::MotionBank>>,
    /// The sentence-to-motion projection of [`RetrievalSpace::Motion`], once fitted.
    motion_projection: Option<Tensor>,
    device: Device,
}

/// Retrieval conditioning: each row `v` of `pooled` `[P, Dt]` moves to
/// `(1 − mix)·v + mix·m`, where `m` is the mean of the `k` rows of `bank` `[N, Dt]`
/// whose keys are most cosine-similar to `v`'s (weighted by that similarity), then
/// back to `v`'s length. `keys` are `[P, D]` and `[N, D]`: the model's own text
/// features in generation, where sentences that ask for the same motion lie close
/// together. A phrasing the model never saw is so conditioned like the training
/// sentences that mean the same, which it has learnt to follow (see README).
pub fn snap(
    pooled: &Tensor,
    bank: &Tensor,
    keys: (&Tensor, &Tensor),
    k: usize,
    mix: f64,
) -> Tensor {
    let (w, idx) = nearest(keys, k);
    let k = idx.size()[1];
    let (p, dt) = (pooled.size()[0], pooled.size()[1]);
    let near = bank.index_select(0, &idx.reshape([-1])).view([p, k, dt]);
    let mean = (w.unsqueeze(-1) * near).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    let moved = pooled * (1.0 - mix) + mean * mix;
    let len = pooled.norm_scalaropt_dim(2.0, [1i64].as_slice(), true);
    unit(&moved) * len
}

/// Each row at length 1.
pub(crate) fn unit(t: &Tensor) -> Tensor {
    t / t
        .norm_scalaropt_dim(2.0, [1i64].as_slice(), true)
        .clamp_min(1e-12)
}

/// Each row of `keys.0` `[P, D]`: its `k` most cosine-similar rows of `keys.1`
/// `[N, D]` (all `N` when fewer) and their weights, the similarities (floored at a
/// small positive number) summing to 1: `([P, k] weights, [P, k] indices)`.
pub fn nearest(keys: (&Tensor, &Tensor), k: usize) -> (Tensor, Tensor) {
    let k = (k as i64).min(keys.1.size()[0]).max(1);
    let sim = unit(keys.0).matmul(&unit(keys.1).tr());
    let (top, idx) = sim.topk(k, 1, true, true);
    let w = top.clamp_min(1e-6);
    let w = &w / w.sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    (w, idx)
}

/// `features` (`frames × F`) resampled to `n` frames by linear interpolation (the
/// first and last frames kept).
pub fn resample(features: &[f32], width: usize, n: usize) -> Vec<f32> {
    let m = features.len() / width;
    if m == 0 || n == 0 {
        return vec![0.0; n * width];
    }
    let mut out = Vec::with_capacity(n * width);
    for i in 0..n {
        let pos = if n > 1 {
            i as f64 * (m - 1) as f64 / (n - 1) as f64
        } else {
            0.0
        };
        let a = (pos.floor() as usize).min(m - 1);
        let b = (a + 1).min(m - 1);
        let u = (pos - a as f64) as f32;
        let (ra, rb) = (
            &features[a * width..(a + 1) * width],
            &features[b * width..(b + 1) * width],
        );
        out.extend(ra.iter().zip(rb).map(|(x, y)| x + (y - x) * u));
    }
    out
}

impl Generator {
    /// Load the model folder (`model.safetensors` + `config.json`) and the encoder
    /// it was trained with (checked by digest).
    pub fn load(
        weights: &Path,
        config: &Path,
        encoder_dir: &Path,
        ort_lib: &Path,
        device: &str,
        threads: i32,
    ) -> anyhow::Result<Self> {
        Self::load_with(
            weights,
            config,
            encoder_dir,
            ort_lib,
            device,
            threads,
            || None,
        )
    }

    /// [`Generator::load`], with the prompts' vectors perhaps encoded already by the
    /// process that started this one (`handed`, asked for once the model is loaded).
    /// Where they are what this model's encoder gives (same folder, digest and
    /// threads, a pooled-only model), the encoder is not loaded unless other
    /// sentences need it.
    #[allow(clippy::too_many_arguments)]
    pub fn load_with(
        weights: &Path,
        config: &Path,
        encoder_dir: &Path,
        ort_lib: &Path,
        device: &str,
        threads: i32,
        handed: impl FnOnce() -> Option<Handed>,
    ) -> anyhow::Result<Self> {
        if threads > 0 {
            tch::set_num_threads(threads);
        }
        let device =
            crate::device::resolve(crate::device::parse(device).map_err(anyhow::Error::msg)?)?;
        // In turn: loading the encoder on a thread beside the model was slower
        // (0.28 vs 0.23 s for both, on 2 cores).
        let t0 = std::time::Instant::now();
        let (vs, model, card, bank) = checkpoint::load_files(weights, config, device)?;
        let t_model = t0.elapsed().as_secs_f64();
        let enc_threads = threads.max(1) as usize;
        let handed = handed().filter(|h| {
            let ok = card.model.text_conditioning == TextConditioning::Pooled
                && h.matches(encoder_dir, &card.encoder_digest, enc_threads);
            if !ok {
                tracing::debug!(
                    "the handed-over prompt vectors do not fit this model; encoding here"
                );
            }
            ok
        });
        let mut gen = Generator {
            card,
            _vs: vs,
            model,
            encoder: None,
            encoder_from: (
                encoder_dir.to_path_buf(),
                ort_lib.to_path_buf(),
                enc_threads,
            ),
            weights: weights.to_path_buf(),
            handed,
            bank,
            motions: Default::default(),
            motion_projection: None,
            device,
        };
        if gen.handed.is_none() {
            gen.encoder()?;
        }
        tracing::debug!(
            "model and encoder loaded in {:.3} s (model {t_model:.3} s{})",
            t0.elapsed().as_secs_f64(),
            if gen.handed.is_some() {
                "; the prompts were encoded by `pipe` while this process started"
            } else {
                ""
            }
        );
        Ok(gen)
    }

    /// The text encoder, loaded (and checked against the model's digest) on first use.
    fn encoder(&mut self) -> anyhow::Result<&mut pipe_text::encoder::Encoder> {
        if self.encoder.is_none() {
            let (dir, lib, threads) = &self.encoder_from;
            let encoder = pipe_text::encoder::Encoder::load(dir, lib, *threads)?;
            let card = &self.card;
            if !card.encoder_digest.is_empty() && encoder.digest != card.encoder_digest {
                bail!(
                    "the model {} was trained with the text encoder `{}` (digest {}…), but {} holds `{}` (digest {}…)",
                    self.weights.display(),
                    card.encoder,
                    &card.encoder_digest[..12.min(card.encoder_digest.len())],
                    dir.display(),
                    encoder.name,
                    &encoder.digest[..12]
                );
            }
            self.encoder = Some(encoder);
        }
        self.encoder
            .as_mut()
            .context("the encoder was loaded just before")
    }

    /// The training motions stored with the model (`None` in checkpoints before them),
    /// read on first use.
    pub fn train_motions(&self) -> anyhow::Result<Option<&checkpoint::MotionBank>> {
        if let Some(m) = self.motions.get() {
            return Ok(m.as_ref());
        }
        let loaded = match &self.bank {
            Some(b) => {
                let t0 = std::time::Instant::now();
                let m =
                    checkpoint::load_motion_bank(&self.weights, &self.card, b.size()[0] as usize)?;
                tracing::debug!(
                    "training motions read in {:.3} s",
                    t0.elapsed().as_secs_f64()
                );
                m
            }
            None => None,
        };
        Ok(self.motions.get_or_init(|| loaded).as_ref())
    }

    /// Pooled vectors of `sentences` with the model's encoder, in batches of 64.
    pub fn encode(&mut self, sentences: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(sentences.len());
        for chunk in sentences.chunks(64) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            out.extend(self.encoder()?.encode_batch(&refs, false)?.pooled);
        }
        Ok(out)
    }

    /// For each row `(prompt, sample)`: a training motion of one of the prompt's
    /// nearest training sentences (`near`: weights and bank rows `[P, k]`), the
    /// sentence drawn by its weight and the motion among that sentence's, seeded by
    /// the row's seed. With `rank` (the prompts' conditions `[P, Dt]` and a seed), only
    /// the better half of those motions by [`text_gain`] can be drawn (each by its
    /// sentence's weight shared among the sentence's motions). Normalised features,
    /// `frames × F`.
    fn retrieve(
        &self,
        near: &(Tensor, Tensor),
        rows: &[(usize, usize)],
        seeds: &[u64],
        rank: Option<(&Tensor, u64)>,
    ) -> anyhow::Result<Vec<&[f32]>> {
        let Some(bank) = self.train_motions()? else {
            bail!(
                "retrieval_init starts from training motions, which this model's checkpoint \
                 predates: retrain it (`pipe run train`) or set retrieval_init: 0"
            );
        };
        let k = near.1.size()[1] as usize;
        let w = Vec::<f32>::try_from(near.0.to_device(Device::Cpu).reshape([-1]))?;
        let idx = Vec::<i64>::try_from(near.1.to_device(Device::Cpu).reshape([-1]))?;
        let kept = match rank {
            Some((pooled, seed)) => Some(self.rank(bank, &w, &idx, k, rows, pooled, seed)?),
            None => None,
        };
        let mut out = Vec::with_capacity(rows.len());
        for (&(p, _), &seed) in rows.iter().zip(seeds) {
            let mut rng = crate::data::Rng::new(derive_seed(seed, 30, p as u64));
            let u = (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32;
            let m = match kept.as_ref().and_then(|kept| kept.get(&p)) {
                Some(c) => {
                    let total: f32 = c.iter().map(|x| x.0).sum();
                    c[draw(u * total, c.iter().map(|x| x.0), c.len())].1
                }
                None => {
                    let j = draw(u, w[p * k..(p + 1) * k].iter().copied(), k);
                    let motions = &bank.motions_of[idx[p * k + j] as usize];
                    motions[rng.below(motions.len() as u64) as usize]
                }
            };
            out.push(bank.motion(m));
        }
        Ok(out)
    }

    /// For each prompt of `rows`: the motions of its `k` nearest training sentences
    /// (at most [`RANK_PER_SENTENCE`] each, a sentence's weight shared among them),
    /// ranked by [`text_gain`] under the prompt's condition `pooled[p]`, the better
    /// half kept: `prompt → [(weight, motion)]`.
    #[allow(clippy::too_many_arguments)]
    fn rank(
        &self,
        bank: &checkpoint::MotionBank,
        w: &[f32],
        idx: &[i64],
        k: usize,
        rows: &[(usize, usize)],
        pooled: &Tensor,
        seed: u64,
    ) -> anyhow::Result<BTreeMap<usize, Vec<(f32, usize)>>> {
        let prompts: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.0).collect();
        // (prompt, weight, motion) of every candidate.
        let mut cands = Vec::new();
        for &p in &prompts {
            for j in 0..k {
                let ms = &bank.motions_of[idx[p * k + j] as usize];
                let ms = &ms[..ms.len().min(RANK_PER_SENTENCE)];
                for &m in ms {
                    cands.push((p, w[p * k + j] / ms.len() as f32, m));
                }
            }
        }
        let fpt = self.card.model.frames_per_token;
        let mut gains = Vec::with_capacity(cands.len());
        for chunk in cands.chunks(64) {
            let frames: Vec<i64> = chunk
                .iter()
                .map(|c| {
                    let n = (bank.motion(c.2).len() / N_FEATURES) as i64;
                    (n.min(self.card.model.max_frames) / fpt * fpt).max(fpt)
                })
                .collect();
            let t_max = frames.iter().copied().max().unwrap_or(fpt) as usize;
            let mut x = vec![0f32; chunk.len() * t_max * N_FEATURES];
            for (r, (c, &n)) in chunk.iter().zip(&frames).enumerate() {
                let m = bank.motion(c.2);
                // Its first `n` frames (fewer when shorter than one token: padded).
                let v = &m[..(n as usize * N_FEATURES).min(m.len())];
                x[r * t_max * N_FEATURES..][..v.len()].copy_from_slice(v);
            }
            let x0 =
                Tensor::from_slice(&x).view([chunk.len() as i64, t_max as i64, N_FEATURES as i64]);
            let sel = Tensor::from_slice(&chunk.iter().map(|c| c.0 as i64).collect::<Vec<_>>())
                .to_device(pooled.device());
            // The same noise for every candidate: their gains differ by the motion only.
            let noise_seeds = vec![derive_seed(seed, 31, 0); chunk.len()];
            gains.extend(text_gain(
                &self.model,
                &pooled.index_select(0, &sel),
                &x0,
                &frames,
                &noise_seeds,
                self.device,
            )?);
        }
        let mut kept: BTreeMap<usize, Vec<(f32, usize, f64)>> = BTreeMap::new();
        for (c, g) in cands.iter().zip(gains) {
            kept.entry(c.0).or_default().push((c.1, c.2, g));
        }
        Ok(kept
            .into_iter()
            .map(|(p, mut v)| {
                v.sort_by(|a, b| b.2.total_cmp(&a.2));
                v.truncate(v.len().div_ceil(2));
                (p, v.into_iter().map(|(w, m, _)| (w, m)).collect())
            })
            .collect())
    }

    /// The projection of [`RetrievalSpace::Motion`] (`[Dt, R]`), fitted on the
    /// model's banks the first time it is asked for.
    fn motion_projection(&mut self) -> anyhow::Result<Tensor> {
        if let Some(w) = &self.motion_projection {
            return Ok(w.shallow_clone());
        }
        let (Some(bank), Some(motions)) = (&self.bank, self.train_motions()?) else {
            bail!(
                "retrieval_space: motion reads the training motions, which this model's \
                 checkpoint predates: retrain it (`pipe run train`) or set \
                 retrieval_space: model"
            );
        };
        let t0 = std::time::Instant::now();
        let w = crate::retrieval::fit(bank, motions, crate::retrieval::RIDGE_LAMBDA)?;
        tracing::debug!(
            "retrieval projection fitted in {:.3} s",
            t0.elapsed().as_secs_f64()
        );
        self.motion_projection = Some(w.shallow_clone());
        Ok(w)
    }

    /// Rows of `pooled` `[P, Dt]` as retrieval compares them in `space`: the model's
    /// text features or the motions they predict (measured on the demo model: 79.7
    /// and 86.4 % of a held-out paraphrase's 10 nearest training sentences ask for
    /// its action; `retrieval_purity_heldout`, README).
    pub fn retrieval_keys(
        &mut self,
        pooled: &Tensor,
        space: RetrievalSpace,
    ) -> anyhow::Result<Tensor> {
        if !self.card.model.text_conditioning.pooled() {
            bail!("retrieval moves the pooled sentence vector, which a `tokens`-only model does not use: set retrieval: 0");
        }
        let pooled = pooled.to_device(self.device);
        match space {
            RetrievalSpace::Model => tch::no_grad(|| self.model.text_feature(&pooled))
                .context("a pooled-conditioned model has a text projection"),
            RetrievalSpace::Motion => Ok(pooled.matmul(&self.motion_projection()?)),
        }
    }

    /// Frames for `seconds`, a multiple of the model's frames per token.
    fn frames_for(&self, s: f64) -> i64 {
        let k = self.card.model.frames_per_token;
        (((s * self.card.fps) / k as f64).round() as i64 * k).clamp(k, self.card.model.max_frames)
    }

    /// Sample `cfg.count` motions for each prompt.
    pub fn generate(&mut self, cfg: &GenerateConfig) -> anyhow::Result<Vec<Generated>> {
        cfg.check(Some(&self.card)).map_err(anyhow::Error::msg)?;
        let mut prompts: Vec<&str> = cfg.prompts.iter().map(|s| s.trim()).collect();
        if prompts.is_empty() {
            bail!("no prompts");
        }
        // The negative prompt rides along as a last row through encoding and
        // retrieval, then is split off.
        let negative = cfg.negative_prompt.trim();
        if !negative.is_empty() {
            prompts.push(negative);
        }
        let tokens_wanted = self.card.model.text_conditioning.tokens();
        // `load_with` keeps handed vectors only for pooled-only models.
        let handed = self.handed.as_ref().and_then(|h| h.pooled(&prompts));
        let enc = match handed {
            Some(pooled) => pipe_text::encoder::Encoded {
                n_tokens: Vec::new(),
                pooled,
                tokens: None,
            },
            None => self.encoder()?.encode_batch(&prompts, tokens_wanted)?,
        };
        let dt = self.card.dims.text;
        if enc.pooled.first().map(|v| v.len() as i64) != Some(dt) {
            bail!(
                "the encoder gives {}-d vectors, the model needs {dt}",
                enc.pooled.first().map_or(0, |v| v.len())
            );
        }
        let mut pooled_p = Tensor::from_slice(&enc.pooled.concat())
            .view([prompts.len() as i64, dt])
            .to_device(self.device);
        let mut near = None;
        if cfg.retrieval > 0 {
            let Some(bank) = self.bank.as_ref().map(Tensor::shallow_clone) else {
                bail!(
                    "retrieval needs the training sentences' vectors, which this model's \
                     checkpoint predates: retrain it (`pipe run train`) or set retrieval: 0"
                );
            };
            let bank = &bank;
            let kp = self.retrieval_keys(&pooled_p, cfg.retrieval_space)?;
            let kb = self.retrieval_keys(bank, cfg.retrieval_space)?;
            near = Some(nearest((&kp, &kb), cfg.retrieval));
            pooled_p = snap(
                &pooled_p,
                bank,
                (&kp, &kb),
                cfg.retrieval,
                cfg.retrieval_mix,
            );
        }
        let negative_p = if negative.is_empty() {
            None
        } else {
            prompts.pop();
            let n = prompts.len() as i64;
            let neg = pooled_p.narrow(0, n, 1);
            pooled_p = pooled_p.narrow(0, 0, n);
            Some(neg)
        };
        let frames_p: Vec<i64> = match cfg.seconds {
            Seconds::Fixed(s) => vec![self.frames_for(s); prompts.len()],
            Seconds::Auto => self.model.predict_frames(&pooled_p),
        };
        // Rows: prompt-major, then sample.
        let mut rows = Vec::new();
        for p in 0..prompts.len() {
            for k in 0..cfg.count {
                rows.push((p, k));
            }
        }
        let idx = Tensor::from_slice(&rows.iter().map(|&(p, _)| p as i64).collect::<Vec<_>>())
            .to_device(self.device);
        let pooled = pooled_p.index_select(0, &idx);
        let negative_rows = negative_p.map(|v| v.expand([rows.len() as i64, dt], false));
        let token_t = enc.tokens.as_ref().filter(|_| tokens_wanted).map(|toks| {
            let l = toks.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let mut tk = vec![0f32; rows.len() * l * dt as usize];
            let mut tm = vec![false; rows.len() * l];
            for (r, &(p, _)) in rows.iter().enumerate() {
                for (j, v) in toks[p].iter().enumerate() {
                    tk[(r * l + j) * dt as usize..][..dt as usize].copy_from_slice(v);
                    tm[r * l + j] = true;
                }
            }
            let n = rows.len() as i64;
            (
                Tensor::from_slice(&tk)
                    .view([n, l as i64, dt])
                    .to_device(self.device),
                Tensor::from_slice(&tm)
                    .view([n, l as i64])
                    .to_device(self.device),
            )
        });
        let seeds: Vec<u64> = rows
            .iter()
            .map(|&(_, k)| derive_seed(cfg.seed, 20, k as u64))
            .collect();
        let mut frames: Vec<i64> = rows.iter().map(|&(p, _)| frames_p[p]).collect();
        let init = match (&near, cfg.retrieval_init > 0.0) {
            (Some(near), true) => {
                let rank = cfg.retrieval_rank.then_some((&pooled_p, cfg.seed));
                let picks = self.retrieve(near, &rows, &seeds, rank)?;
                if cfg.seconds == Seconds::Auto {
                    // The retrieved motion's own length, not the estimate's.
                    for (f, m) in frames.iter_mut().zip(&picks) {
                        let k = self.card.model.frames_per_token;
                        let n = (m.len() / N_FEATURES) as i64;
                        *f = (n / k * k).clamp(k, self.card.model.max_frames);
                    }
                }
                let t_max = frames.iter().copied().max().unwrap_or(1) as usize;
                let mut x = vec![0f32; rows.len() * t_max * N_FEATURES];
                for (r, m) in picks.iter().enumerate() {
                    let v = resample(m, N_FEATURES, frames[r] as usize);
                    x[r * t_max * N_FEATURES..][..v.len()].copy_from_slice(&v);
                }
                Some(
                    Tensor::from_slice(&x)
                        .view([rows.len() as i64, t_max as i64, N_FEATURES as i64])
                        .to_device(self.device),
                )
            }
            _ => None,
        };
        let req = Request {
            pooled: &pooled,
            tokens: token_t.as_ref().map(|(a, b)| (a, b)),
            frames: &frames,
            seeds: &seeds,
            steps: cfg.steps,
            guidance: cfg.guidance,
            eta: cfg.eta,
            eta_from: cfg.eta_from,
            guidance_rescale: cfg.guidance_rescale,
            velocity_guidance: cfg.velocity_guidance,
            height_guidance: cfg.height_guidance,
            init: init.as_ref().map(|x| (x, cfg.retrieval_init)),
            negative: negative_rows.as_ref(),
        };
        let x = sample(&self.model, &req, self.device)
            .to_device(Device::Cpu)
            .to_kind(Kind::Double);
        let t_max = x.size()[1] as usize;
        let flat = Vec::<f64>::try_from(x.reshape([-1])).context("reading samples back")?;
        let fps = self.card.fps;
        let mut out = Vec::new();
        for (r, &(p, k)) in rows.iter().enumerate() {
            let n = frames[r] as usize;
            let norm = &flat[r * t_max * N_FEATURES..(r * t_max + n) * N_FEATURES];
            let raw: Vec<f64> = norm
                .chunks_exact(N_FEATURES)
                .flat_map(|row| {
                    row.iter()
                        .zip(self.card.mean.iter().zip(&self.card.std))
                        .map(|(x, (m, s))| x * s + m)
                })
                .collect();
            let mmm = from_features(
                &raw,
                fps,
                Start {
                    x: 0.0,
                    y: 0.0,
                    heading: 0.0,
                },
            );
            let mut motion = Vec::with_capacity(n * WIDTH);
            for i in 0..n {
                motion.extend(mmm.root_position[i].iter().map(|&v| v as f32));
                motion.extend(mmm.root_rotation[i].iter().map(|&v| v as f32));
                motion.extend(mmm.joints[i * 44..(i + 1) * 44].iter().map(|&v| v as f32));
            }
            out.push(Generated {
                prompt_index: p,
                prompt: prompts[p].to_string(),
                sample: k,
                seed: seeds[r],
                fps,
                motion,
                features: norm.to_vec(),
                raw,
                files: Vec::new(),
            });
        }
        Ok(out)
    }
}

/// The index the cumulative `weights` (of `n`) first pass `u` at; the last one when
/// rounding leaves `u` beyond their sum.
fn draw(u: f32, weights: impl Iterator<Item = f32>, n: usize) -> usize {
    let mut acc = 0.0;
    let mut weights = weights;
    weights
        .position(|x| {
            acc += x;
            u < acc
        })
        .unwrap_or(n - 1)
}

/// At most this many motions of one retrieved sentence are ranked (a common sentence
/// such as "a person walks forward" can describe dozens).
pub const RANK_PER_SENTENCE: usize = 4;

/// A file-name-safe short form of a prompt.
pub fn slug(prompt: &str) -> String {
    let mut s = String::new();
    for c in prompt.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "prompt".into()
    } else {
        s
    }
}

/// Write each sample's `.npy` and `.xml` (and, as configured, `.bvh`, `.png`,
/// `.gif`) into `dir` and all of them into `parquet`; fills in `files`.
pub fn write_files(
    samples: &mut [Generated],
    dir: &Path,
    parquet: &Path,
    cfg: &GenerateConfig,
    height_m: f64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let skeleton = Skeleton::mmm();
    // Samples in parallel (the previews are most of the time: ~0.1 s each).
    samples
        .par_iter_mut()
        .try_for_each(|g| write_sample(g, dir, cfg, height_m, &skeleton))?;
    write_parquet(parquet, samples, cfg)
}

/// One sample's files (see [`write_files`]).
fn write_sample(
    g: &mut Generated,
    dir: &Path,
    cfg: &GenerateConfig,
    height_m: f64,
    skeleton: &Skeleton,
) -> anyhow::Result<()> {
    let stem = format!(
        "{:02}-{}-{}",
        g.prompt_index + 1,
        slug(&g.prompt),
        g.sample + 1
    );
    let npy = dir.join(format!("{stem}.npy"));
    Tensor::from_slice(&g.motion)
        .view([g.frames() as i64, WIDTH as i64])
        .write_npy(&npy)
        .with_context(|| format!("writing {}", npy.display()))?;
    let xml = dir.join(format!("{stem}.xml"));
    let mmm = to_mmm(g, height_m);
    pipe_kit::mmm::write_file(&xml, &mmm).with_context(|| format!("writing {}", xml.display()))?;
    g.files = vec![npy, xml];
    if cfg.bvh || cfg.previews {
        let body = g
            .body(height_m)
            .map_err(|e| anyhow::anyhow!("sample {stem}: {e}"))?;
        if cfg.bvh {
            let bvh = dir.join(format!("{stem}.bvh"));
            std::fs::write(&bvh, pipe_kit::body::bvh::to_string(skeleton, &body))
                .with_context(|| format!("writing {}", bvh.display()))?;
            g.files.push(bvh);
        }
        if cfg.previews {
            let (png, gif) = (
                dir.join(format!("{stem}.png")),
                dir.join(format!("{stem}.gif")),
            );
            // Into the temporary folder the caller publishes, like the other files.
            let t = std::time::Instant::now();
            let preview = pipe_view::Preview::new(skeleton, &body, &g.prompt);
            let sizes = pipe_view::Sizes::default();
            // The sheet on one core while the animation's frames take the other.
            let (sheet, anim) = rayon::join(
                || preview.contact_sheet(&sizes),
                || preview.animation(&sizes),
            );
            std::fs::write(&png, sheet?).with_context(|| format!("writing {}", png.display()))?;
            std::fs::write(&gif, anim?).with_context(|| format!("writing {}", gif.display()))?;
            g.files.extend([png, gif]);
            tracing::debug!("{stem}: previews in {:.3} s", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// An MMM motion (KIT-ML joint order) of a generated sample.
pub fn to_mmm(g: &Generated, height_m: f64) -> pipe_kit::mmm::Motion {
    let n = g.frames();
    let row = |i: usize| &g.motion[i * WIDTH..(i + 1) * WIDTH];
    pipe_kit::mmm::Motion {
        name: g.prompt.clone(),
        height_m: Some(height_m),
        mass_kg: None,
        joint_names: pipe_kit::joints::KIT_JOINTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        timesteps: (0..n).map(|i| i as f64 / g.fps).collect(),
        root_position: (0..n)
            .map(|i| [row(i)[0] as f64, row(i)[1] as f64, row(i)[2] as f64])
            .collect(),
        root_rotation: (0..n)
            .map(|i| [row(i)[3] as f64, row(i)[4] as f64, row(i)[5] as f64])
            .collect(),
        joint_position: (0..n)
            .flat_map(|i| row(i)[6..].iter().map(|&v| v as f64).collect::<Vec<_>>())
            .collect(),
        ..Default::default()
    }
}

fn write_parquet(path: &Path, samples: &[Generated], cfg: &GenerateConfig) -> anyhow::Result<()> {
    let mut prompt = StringBuilder::new();
    let mut pidx = UInt32Builder::new();
    let mut sidx = UInt32Builder::new();
    let mut seed = UInt64Builder::new();
    let mut fps = Float64Builder::new();
    let mut frames = UInt32Builder::new();
    let mut npy = StringBuilder::new();
    let mut xml = StringBuilder::new();
    let mut bvh = StringBuilder::new();
    let mut png = StringBuilder::new();
    let mut gif = StringBuilder::new();
    let mut motion = ListBuilder::new(FixedSizeListBuilder::new(
        Float32Builder::new(),
        WIDTH as i32,
    ));
    for g in samples {
        prompt.append_value(&g.prompt);
        pidx.append_value(g.prompt_index as u32);
        sidx.append_value(g.sample as u32);
        seed.append_value(g.seed);
        fps.append_value(g.fps);
        frames.append_value(g.frames() as u32);
        let name = |ext: &str| {
            g.files
                .iter()
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string())
        };
        npy.append_option(name("npy"));
        xml.append_option(name("xml"));
        bvh.append_option(name("bvh"));
        png.append_option(name("png"));
        gif.append_option(name("gif"));
        for row in g.motion.chunks_exact(WIDTH) {
            motion.values().values().append_slice(row);
            motion.values().append(true);
        }
        motion.append(true);
    }
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("prompt", Arc::new(prompt.finish())),
        ("prompt_index", Arc::new(pidx.finish())),
        ("sample", Arc::new(sidx.finish())),
        ("seed", Arc::new(seed.finish())),
        ("fps", Arc::new(fps.finish())),
        ("frames", Arc::new(frames.finish())),
        ("npy", Arc::new(npy.finish())),
        ("xml", Arc::new(xml.finish())),
        ("bvh", Arc::new(bvh.finish())),
        ("png", Arc::new(png.finish())),
        ("gif", Arc::new(gif.finish())),
        ("motion", Arc::new(motion.finish())),
    ];
    pipe_tabular::write_batch(
        path,
        RecordBatch::try_from_iter(cols)?,
        &[
            ("pipe.schema".into(), "motion.generated/1".into()),
            ("pipe.generate".into(), serde_json::to_string(cfg)?),
            (
                "pipe.motion_layout".into(),
                "root_position xyz (mm, z up), root_rotation xyz (rad), 44 joint angles (rad, KIT-ML order)".into(),
            ),
        ],
    )
}

/// `pipe generate`: everything into `dir` with nothing half-written left there on
/// failure (files are made in a temporary folder inside `dir`, then moved).
pub fn generate_into(
    gen: &mut Generator,
    cfg: &GenerateConfig,
    dir: &Path,
) -> anyhow::Result<Vec<Generated>> {
    let t0 = std::time::Instant::now();
    let mut samples = gen.generate(cfg)?;
    tracing::debug!("generate: sampled in {:.3} s", t0.elapsed().as_secs_f64());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".pipe-generate-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        write_files(
            &mut samples,
            &tmp,
            &tmp.join("generated.parquet"),
            cfg,
            cfg.height_m,
        )?;
        let mut moved = Vec::new();
        for name in std::fs::read_dir(&tmp)?.flatten().map(|e| e.file_name()) {
            let to = dir.join(&name);
            std::fs::rename(tmp.join(&name), &to)
                .with_context(|| format!("moving {}", to.display()))?;
            moved.push(to);
        }
        for g in &mut samples {
            g.files = g
                .files
                .iter()
                .map(|f| dir.join(f.file_name().unwrap_or_default()))
                .collect();
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    tracing::debug!(
        "generate: files written at {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    result.map(|_| samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[[f32; 3]]) -> Tensor {
        Tensor::from_slice(&v.concat()).view([v.len() as i64, 3])
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        (a - b).abs().max().double_value(&[]) < 1e-5
    }

    #[test]
    fn snap_moves_a_vector_to_its_nearest_training_sentences() {
        let s = 0.5f32.sqrt();
        let bank = rows(&[[1.0, 0.0, 0.0], [s, s, 0.0], [0.0, 0.0, 1.0]]);
        // Nearest to the first bank row, then the second; the third points away.
        let p = rows(&[[0.96, 0.28, 0.0]]);
        // mix 0: unchanged.
        assert!(close(&snap(&p, &bank, (&p, &bank), 2, 0.0), &p));
        // k 1, mix 1: the nearest sentence itself, at the prompt's length.
        assert!(close(
            &snap(&p, &bank, (&p, &bank), 1, 1.0),
            &rows(&[[1.0, 0.0, 0.0]])
        ));
        // k 2: between the two nearest, weighted by similarity (0.96 vs ~0.877),
        // never towards the third.
        let two = snap(&p, &bank, (&p, &bank), 2, 1.0);
        let v = Vec::<f32>::try_from(two.reshape([-1])).expect("vec");
        assert!(v[0] > v[1] && v[1] > 0.3 && v[2].abs() < 1e-6, "{v:?}");
        let len = two.norm().double_value(&[]);
        assert!((len - 1.0).abs() < 1e-5, "{len}");
        // k beyond the bank is the whole bank; a longer prompt keeps its length.
        let p3 = &p * 3.0;
        let all = snap(&p3, &bank, (&p3, &bank), 99, 0.5);
        assert!((all.norm().double_value(&[]) - 3.0).abs() < 1e-4);
        // Neighbours are chosen by the keys, not by the vectors themselves.
        let keys = rows(&[[0.0, 0.1, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let by_key = snap(&p, &bank, (&rows(&[[0.0, 0.0, 1.0]]), &keys), 1, 1.0);
        assert!(close(&by_key, &rows(&[[0.0, 0.0, 1.0]])));
    }

    #[test]
    fn resample_keeps_the_ends_and_interpolates_between() {
        // Three frames of two features.
        let m = [0.0f32, 10.0, 1.0, 20.0, 3.0, 40.0];
        assert_eq!(resample(&m, 2, 3), m.to_vec());
        assert_eq!(
            resample(&m, 2, 5),
            vec![0.0, 10.0, 0.5, 15.0, 1.0, 20.0, 2.0, 30.0, 3.0, 40.0]
        );
        assert_eq!(resample(&m, 2, 2), vec![0.0, 10.0, 3.0, 40.0]);
        assert_eq!(resample(&m, 2, 1), vec![0.0, 10.0]);
        assert_eq!(
            resample(&m[..2], 2, 3),
            vec![0.0, 10.0, 0.0, 10.0, 0.0, 10.0]
        );
    }

    #[test]
    fn sampler_settings_are_checked() {
        let bad = |c: GenerateConfig| c.check(None).err().unwrap_or_default();
        let base = GenerateConfig {
            prompts: vec!["a walk".into()],
            ..Default::default()
        };
        assert!(base.check(None).is_ok());
        assert!(bad(GenerateConfig {
            retrieval_mix: 1.5,
            ..base.clone()
        })
        .contains("retrieval_mix must be in [0, 1]"));
        assert!(bad(GenerateConfig {
            retrieval: 5000,
            ..base.clone()
        })
        .contains("retrieval must be 0 (off) to 1000"));
        assert!(bad(GenerateConfig {
            velocity_guidance: Some(-1.0),
            ..base.clone()
        })
        .contains("velocity_guidance must be 0 or more, got -1"));
        assert!(bad(GenerateConfig {
            height_guidance: Some(f64::NAN),
            ..base.clone()
        })
        .contains("height_guidance must be 0 or more, got NaN"));
        assert!(bad(GenerateConfig {
            eta_from: 2.0,
            ..base.clone()
        })
        .contains("eta_from must be in [0, 1], got 2"));
        assert!(bad(GenerateConfig {
            retrieval: 5,
            retrieval_init: 1.5,
            ..base.clone()
        })
        .contains("retrieval_init must be in [0, 1], got 1.5"));
        assert!(bad(GenerateConfig {
            retrieval_init: 0.5,
            ..base.clone()
        })
        .contains("set retrieval to 1 or more"));
        assert!(bad(GenerateConfig {
            retrieval: 5,
            retrieval_rank: true,
            ..base.clone()
        })
        .contains("set retrieval_init above 0"));
        // With the model's card: ranking needs a model conditioned on the pooled
        // vector alone.
        let ranked = GenerateConfig {
            retrieval: 5,
            retrieval_init: 0.7,
            retrieval_rank: true,
            ..base.clone()
        };
        let card = |tc| {
            checkpoint::test_card(crate::config::ModelConfig {
                text_conditioning: tc,
                ..Default::default()
            })
        };
        use crate::config::TextConditioning;
        assert!(ranked.check(Some(&card(TextConditioning::Pooled))).is_ok());
        for tc in [TextConditioning::Both, TextConditioning::Tokens] {
            assert!(ranked
                .check(Some(&card(tc)))
                .err()
                .unwrap_or_default()
                .contains("set retrieval_rank: false"));
        }
        // So does a negative prompt.
        let negative = GenerateConfig {
            negative_prompt: "a person stands still".into(),
            ..base.clone()
        };
        assert!(negative
            .check(Some(&card(TextConditioning::Pooled)))
            .is_ok());
        assert!(negative
            .check(Some(&card(TextConditioning::Tokens)))
            .err()
            .unwrap_or_default()
            .contains("set negative_prompt: \"\""));
    }
}

//! The `model` and `train` config sections (serde, `deny_unknown_fields`) and their
//! checks. `config.json` beside every checkpoint holds the [`ModelConfig`] plus the
//! data facts needed to rebuild the model ([`Checkpoint`](crate::checkpoint)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// MDM-style: predicts the clean motion x0 from a noised one, inside a diffusion
    /// process; sampled with DDIM and classifier-free guidance.
    Diffusion,
    /// The baseline: the same backbone maps the text straight to a motion (masked MSE).
    Regression,
}

/// How the text reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextConditioning {
    /// The pooled sentence vector as one extra token (MDM).
    Pooled,
    /// Per-token encoder states through cross-attention in every layer
    /// (needs `embed.tokens: true`).
    Tokens,
    /// Both.
    Both,
}

impl TextConditioning {
    pub fn pooled(self) -> bool {
        matches!(self, Self::Pooled | Self::Both)
    }
    pub fn tokens(self) -> bool {
        matches!(self, Self::Tokens | Self::Both)
    }
}

/// The network: everything needed to rebuild it (with the data dims of `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub text_conditioning: TextConditioning,
    /// Transformer encoder layers.
    pub layers: i64,
    /// Width of every token.
    pub d_model: i64,
    pub heads: i64,
    /// Hidden width of each feed-forward block.
    pub ff: i64,
    pub dropout: f64,
    /// Motion frames folded into one token (2 halves the sequence, and the cost).
    pub frames_per_token: i64,
    /// Longest motion the model handles, in frames (longer training clips are cropped).
    pub max_frames: i64,
    /// Diffusion steps of the noise schedule (cosine).
    pub diffusion_steps: i64,
    /// Also modulate every block by the condition (adaLN-Zero, DiT: Peebles & Xie
    /// 2023): per-layer shift, scale and gate of each sub-block computed from the
    /// timestep + text vector, the gates starting at zero.
    pub adaln: bool,
    /// Self-conditioning (Chen et al. 2023, "Analog Bits"): the network also reads
    /// its own previous x0 estimate (in training, for half of each batch, an
    /// estimate made without gradient first; in sampling, the previous step's).
    pub self_condition: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Diffusion,
            text_conditioning: TextConditioning::Pooled,
            layers: 4,
            d_model: 256,
            heads: 4,
            ff: 512,
            dropout: 0.1,
            frames_per_token: 2,
            max_frames: 200,
            diffusion_steps: 1000,
            adaln: false,
            self_condition: false,
        }
    }
}

impl ModelConfig {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let m: ModelConfig = pipe_stage_api::section(params, "model")?;
        m.check().map(|_| m)
    }

    /// The rules a config must follow; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("layers", self.layers),
            ("d_model", self.d_model),
            ("heads", self.heads),
            ("ff", self.ff),
            ("frames_per_token", self.frames_per_token),
            ("max_frames", self.max_frames),
            ("diffusion_steps", self.diffusion_steps),
        ];
        for (k, v) in positive {
            if v <= 0 {
                return Err(format!("model.{k} must be at least 1, got {v}"));
            }
        }
        if self.d_model % self.heads != 0 {
            return Err(format!(
                "model.d_model ({}) must be a multiple of model.heads ({})",
                self.d_model, self.heads
            ));
        }
        if self.d_model % 2 != 0 {
            return Err(format!("model.d_model must be even, got {}", self.d_model));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "model.dropout must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.max_frames % self.frames_per_token != 0 {
            return Err(format!(
                "model.max_frames ({}) must be a multiple of model.frames_per_token ({})",
                self.max_frames, self.frames_per_token
            ));
        }
        if self.diffusion_steps < 2 {
            return Err("model.diffusion_steps must be at least 2".into());
        }
        if self.self_condition && self.kind == ModelKind::Regression {
            return Err(
                "model.self_condition needs model.kind: diffusion (a regression model \
                 makes one estimate, there is no previous one to read)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How training runs. Identical config + seed → identical losses on the CPU.
/// The auxiliary text loss's kind (`train.text_aux`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextAux {
    Regress,
    Contrastive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: i64,
    /// Peak learning rate (AdamW), reached after `warmup_steps`, then cosine decay to
    /// `lr * min_lr_ratio`.
    pub lr: f64,
    pub min_lr_ratio: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Clip the global gradient norm to this (0: off).
    pub grad_clip: f64,
    pub seed: u64,
    /// `auto` (CUDA when there is one), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// CPU threads for libtorch (0: libtorch's default).
    pub threads: i32,
    /// Mixed precision on CUDA: libtorch autocast with its default reduced type,
    /// float16 (tch 0.26 cannot pick bfloat16), and dynamic loss scaling. Off by
    /// default: measured on an H200 with the demo model it learnt the same as float32
    /// but more slowly (2,344 vs 2,977 samples/s); without loss scaling it diverged.
    /// No effect on the CPU.
    pub autocast: bool,
    /// Probability of dropping the text (classifier-free guidance).
    pub cond_drop: f64,
    /// Gaussian noise of this norm added to each training sentence's pooled vector
    /// (then scaled back to the vector's own length): the model sees a neighbourhood
    /// of every sentence, not the point, for sentences it never saw (0: off).
    pub text_noise: f64,
    /// Probability that a training pair's sentence vector is replaced by a mix of it
    /// and another sentence of the same motion (the other's weight drawn uniformly
    /// from 0 to 1), scaled back to the vector's own length: the paraphrases of one
    /// motion then cover the space between them, where a new paraphrase may fall
    /// (0: off; a motion with one sentence keeps it).
    pub text_mix: f64,
    /// Weight of the frame-to-frame velocity loss (smoothness, less foot sliding).
    pub velocity_weight: f64,
    /// Weight of the integrated root-displacement loss (less drift).
    pub root_weight: f64,
    /// Weight of the motion-length estimator's loss (log frames from the text).
    pub length_weight: f64,
    /// Weight of an auxiliary loss on the text's part of the condition: a linear head
    /// (used in training only, not exported) predicts a summary of the paired motion
    /// — each normalised feature's mean and standard deviation over its frames — from
    /// it, so the text pathway learns what a sentence says about its motion directly,
    /// not only through denoising (0: off; needs pooled text conditioning).
    pub text_aux_weight: f64,
    /// What the auxiliary text loss asks: `regress` (predict the summary) or
    /// `contrastive` (InfoNCE: the text's and the motion summary's projections, 64-d,
    /// must pick each other out of the batch, as in text-motion retrieval models;
    /// discriminative, so words that tell no motion from another should not count).
    pub text_aux: TextAux,
    /// Write a resumable checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// Validation loss every this many steps (and at the end).
    pub eval_every: u64,
    /// Add the left-right mirror of every training motion, paired with its sentence
    /// with "left" and "right" swapped (when that sentence has an embedding; a
    /// sentence without left/right keeps its own).
    pub mirror: bool,
    /// Exponential moving average of the weights (e.g. 0.999; 0: off). The average,
    /// not the last weights, is validated at the end and exported. Its decay warms up
    /// as `min(ema, (1 + step) / (10 + step))`, so early weights are soon forgotten.
    pub ema: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 3000,
            batch_size: 64,
            lr: 2e-4,
            min_lr_ratio: 0.1,
            warmup_steps: 100,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            grad_clip: 1.0,
            seed: 0,
            device: "auto".into(),
            threads: 0,
            autocast: false,
            cond_drop: 0.1,
            text_noise: 0.0,
            text_mix: 0.0,
            velocity_weight: 0.0,
            root_weight: 0.0,
            length_weight: 0.1,
            text_aux_weight: 0.0,
            text_aux: TextAux::Regress,
            checkpoint_every: 200,
            eval_every: 250,
            mirror: false,
            ema: 0.0,
        }
    }
}

impl TrainConfig {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let t: TrainConfig = pipe_stage_api::section(params, "train")?;
        t.check().map(|_| t)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.steps == 0 {
            return Err("train.steps must be at least 1".into());
        }
        if self.batch_size <= 0 {
            return Err(format!(
                "train.batch_size must be at least 1, got {}",
                self.batch_size
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("train.lr must be positive, got {}", self.lr));
        }
        let unit = [
            ("min_lr_ratio", self.min_lr_ratio),
            ("cond_drop", self.cond_drop),
            ("text_mix", self.text_mix),
        ];
        for (k, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("train.{k} must be in [0, 1], got {v}"));
            }
        }
        for (k, v) in [
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("ema", self.ema),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(format!("train.{k} must be in [0, 1), got {v}"));
            }
        }
        let non_negative = [
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
            ("velocity_weight", self.velocity_weight),
            ("root_weight", self.root_weight),
            ("length_weight", self.length_weight),
            ("text_aux_weight", self.text_aux_weight),
            ("text_noise", self.text_noise),
        ];
        for (k, v) in non_negative {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("train.{k} must be zero or positive, got {v}"));
            }
        }
        if self.checkpoint_every == 0 || self.eval_every == 0 {
            return Err("train.checkpoint_every and train.eval_every must be at least 1".into());
        }
        if self.threads < 0 {
            return Err(format!(
                "train.threads must be 0 or more, got {}",
                self.threads
            ));
        }
        crate::device::parse(&self.device).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        model: serde_json::Value,
        train: serde_json::Value,
    ) -> BTreeMap<String, serde_json::Value> {
        [("model".to_string(), model), ("train".to_string(), train)].into()
    }

    #[test]
    fn bad_configs_name_the_key() {
        let cases = [
            (
                serde_json::json!({"layer": 2}),
                serde_json::json!({}),
                "unknown field `layer`",
            ),
            (
                serde_json::json!({"layers": 0}),
                serde_json::json!({}),
                "model.layers",
            ),
            (
                serde_json::json!({"heads": 3}),
                serde_json::json!({}),
                "model.heads",
            ),
            (
                serde_json::json!({"kind": "regression", "self_condition": true}),
                serde_json::json!({}),
                "model.self_condition needs model.kind: diffusion",
            ),
            (
                serde_json::json!({"kind": "gan"}),
                serde_json::json!({}),
                "unknown variant `gan`",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"lr": -1e-3}),
                "train.lr",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"text_aux": "contrast"}),
                "train.text_aux: unknown variant `contrast`, expected `regress` or `contrastive`",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"text_noise": -0.5}),
                "train.text_noise must be zero or positive",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"lr": 0}),
                "train.lr",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"device": "tpu"}),
                "train.device",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"cond_drop": 2}),
                "train.cond_drop",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"text_mix": 1.5}),
                "train.text_mix must be in [0, 1], got 1.5",
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"steps": 0}),
                "train.steps",
            ),
        ];
        for (m, t, want) in cases {
            let p = params(m.clone(), t.clone());
            let err = ModelConfig::from_params(&p)
                .and_then(|_| TrainConfig::from_params(&p))
                .expect_err(&format!("{m} {t} should fail"));
            assert!(err.contains(want), "{m} {t}: {err}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let p = params(serde_json::json!({}), serde_json::json!({}));
        assert_eq!(ModelConfig::from_params(&p), Ok(ModelConfig::default()));
        assert_eq!(TrainConfig::from_params(&p), Ok(TrainConfig::default()));
    }
}

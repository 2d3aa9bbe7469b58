//! The training loop: AdamW (our own, so its state is saved and restored exactly),
//! warm-up + cosine learning rate, gradient clipping, checkpoints into the stage's
//! scratch folder, and a resume that continues bit-identically: every step's
//! randomness (batch order, crops, timesteps, noise, dropout, text dropout) is a
//! function of (seed, step) alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::checkpoint::{self, ModelCard};
use crate::config::{ModelConfig, TextAux, TrainConfig};
use crate::data::{derive_seed, epoch_batches, masked_mse, Batch, Dataset, Rng};
use crate::diffusion::Schedule;
use crate::model::{Cond, Dims, MotionModel, LOG_FRAMES_OFFSET};

/// One row of `train_log.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub step: u64,
    pub loss: f64,
    pub reconstruction: f64,
    pub velocity: f64,
    pub root: f64,
    pub length: f64,
    /// The auxiliary text loss (0 when off).
    #[serde(default)]
    pub text_aux: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub samples_per_s: f64,
    pub wall_s: f64,
    /// Where the step's time went (s): batch assembly, forward + loss, backward,
    /// clipping + optimizer.
    pub data_s: f64,
    pub forward_s: f64,
    pub backward_s: f64,
    pub optimizer_s: f64,
    pub val_loss: Option<f64>,
}

/// Validation numbers (normalised feature units, masked).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// x0 reconstruction over a fixed grid of diffusion timesteps.
    pub loss: f64,
    /// From pure noise (t = T − 1): the motion from the text alone.
    pub loss_from_noise: f64,
    /// The trivial predictor: the mean pose (zero in normalised units).
    pub loss_mean_pose: f64,
    pub pairs: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeState {
    step: u64,
    fingerprint: String,
    wall_s: f64,
    log: Vec<LogRow>,
    #[serde(default)]
    scaler: Option<LossScale>,
}

/// Dynamic loss scaling for float16 autocast (what PyTorch's `GradScaler` does): the
/// loss is multiplied by `scale` before backward so small gradients survive float16;
/// a step whose gradients overflow is skipped and halves the scale, and every
/// [`LossScale::GROWTH_INTERVAL`] good steps in a row double it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    pub scale: f64,
    pub good_steps: u64,
    pub skipped: u64,
}

impl LossScale {
    const INITIAL: f64 = 65536.0;
    const GROWTH_INTERVAL: u64 = 2000;

    fn new() -> Self {
        LossScale {
            scale: Self::INITIAL,
            good_steps: 0,
            skipped: 0,
        }
    }

    /// Record a step's outcome; `Err` when the scale has fallen below 1 (the
    /// overflow is not a float16 range problem).
    fn update(&mut self, finite: bool) -> Result<(), f64> {
        if finite {
            self.good_steps += 1;
            if self.good_steps.is_multiple_of(Self::GROWTH_INTERVAL) {
                self.scale *= 2.0;
            }
            Ok(())
        } else {
            self.skipped += 1;
            self.good_steps = 0;
            self.scale /= 2.0;
            if self.scale < 1.0 {
                Err(self.scale)
            } else {
                Ok(())
            }
        }
    }
}

/// Names of training-only parameters (not exported).
pub const AUX_PREFIX: &str = "aux_text.";

/// Width of the contrastive text loss's projections.
const AUX_DIM: i64 = 64;

/// Temperature of the contrastive text loss.
const AUX_TEMPERATURE: f64 = 0.1;

/// Symmetric InfoNCE per row: `a` and `b` `[B, D]`, row i of each the pair; the
/// cross-entropy of picking `b[i]` for `a[i]` among all of `b`, and `a[i]` for `b[i]`
/// among all of `a`, by cosine similarity over [`AUX_TEMPERATURE`]: `[B]`.
pub fn info_nce(a: &Tensor, b: &Tensor) -> Tensor {
    use crate::generate::unit;
    let logits = unit(a).matmul(&unit(b).tr()) / AUX_TEMPERATURE;
    let rows = logits.log_softmax(1, Kind::Float).diagonal(0, 0, 1);
    let cols = logits.log_softmax(0, Kind::Float).diagonal(0, 0, 1);
    -(rows + cols) / 2.0
}

pub struct Trainer<'a> {
    pub data: &'a Dataset,
    pub cfg: ModelConfig,
    pub tcfg: TrainConfig,
    pub device: Device,
    pub vs: nn::VarStore,
    pub model: MotionModel,
    sched: Schedule,
    params: Vec<(String, Tensor)>,
    adam_m: Vec<Tensor>,
    adam_v: Vec<Tensor>,
    /// The auxiliary text head (`train.text_aux_weight` > 0), in `vs` under
    /// [`AUX_PREFIX`] so it is trained and checkpointed, but never exported.
    aux_head: Option<nn::Linear>,
    /// With `train.text_aux: contrastive`: the motion summary's projection.
    aux_motion: Option<nn::Linear>,
    /// The moving average of `params` (empty when `tcfg.ema` is 0).
    ema: Vec<Tensor>,
    /// Mean and std of the two planar velocity features (m/s), for the root loss.
    vel_mean: Tensor,
    vel_std: Tensor,
    pub log: Vec<LogRow>,
    pub step: u64,
    wall_before: f64,
    /// Present when training in float16 autocast on CUDA.
    pub scaler: Option<LossScale>,
    /// Per training motion, its sentences (`train.text_mix`).
    paraphrases: std::collections::HashMap<usize, Vec<usize>>,
}

/// What a finished run reports.
pub struct Outcome {
    pub steps: u64,
    pub validation: Option<Validation>,
    pub final_train_loss: f64,
    pub samples_per_s: f64,
    pub wall_s: f64,
    pub resumed_from: Option<u64>,
}

impl<'a> Trainer<'a> {
    pub fn new(data: &'a Dataset, cfg: ModelConfig, tcfg: TrainConfig, device: Device) -> Self {
        tch::manual_seed(derive_seed(tcfg.seed, 0, 0) as i64);
        let vs = nn::VarStore::new(device);
        let dims = Dims {
            features: pipe_motion::features::N_FEATURES as i64,
            text: data.text_dim as i64,
        };
        let model = MotionModel::new(&vs.root(), &cfg, dims);
        let aux_on = tcfg.text_aux_weight > 0.0 && cfg.text_conditioning.pooled();
        let contrastive = tcfg.text_aux == TextAux::Contrastive;
        let aux_head = aux_on.then(|| {
            nn::linear(
                vs.root() / AUX_PREFIX.trim_end_matches('.'),
                cfg.d_model,
                if contrastive {
                    AUX_DIM
                } else {
                    2 * dims.features
                },
                Default::default(),
            )
        });
        let aux_motion = (aux_on && contrastive).then(|| {
            nn::linear(
                vs.root() / AUX_PREFIX.trim_end_matches('.') / "motion",
                2 * dims.features,
                AUX_DIM,
                Default::default(),
            )
        });
        let params = checkpoint::named(&vs);
        let scaler = (tcfg.autocast && device.is_cuda()).then(LossScale::new);
        let zeros = |p: &Tensor| Tensor::zeros_like(p);
        let adam_m = params.iter().map(|(_, p)| zeros(p)).collect();
        let adam_v = params.iter().map(|(_, p)| zeros(p)).collect();
        let ema = if tcfg.ema > 0.0 {
            params.iter().map(|(_, p)| p.detach().copy()).collect()
        } else {
            Vec::new()
        };
        let s = &data.norm.stats;
        let f = |v: &[f64]| Tensor::from_slice(&[v[1] as f32, v[2] as f32]).to_device(device);
        Trainer {
            sched: Schedule::cosine(cfg.diffusion_steps, device),
            vel_mean: f(&s.mean),
            vel_std: f(&s.std),
            data,
            cfg,
            tcfg,
            device,
            vs,
            model,
            params,
            adam_m,
            adam_v,
            aux_head,
            aux_motion,
            ema,
            log: Vec::new(),
            step: 0,
            wall_before: 0.0,
            scaler,
            paraphrases: data.paraphrases(),
        }
    }

    pub fn parameter_count(&self) -> i64 {
        self.params.iter().map(|(_, p)| p.numel() as i64).sum()
    }

    /// What a checkpoint must match to be resumed: configs, data and model dims.
    fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(
            serde_json::to_string(&(&self.cfg, &self.tcfg))
                .unwrap_or_default()
                .as_bytes(),
        );
        h.update(self.data.text_dim.to_le_bytes().as_slice());
        h.update(self.data.motions.len().to_le_bytes().as_slice());
        h.update(self.data.sentences.len().to_le_bytes().as_slice());
        h.finalize().to_hex().to_string()
    }

    pub fn lr_at(&self, step: u64) -> f64 {
        let t = &self.tcfg;
        if step < t.warmup_steps {
            return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
        }
        let span = (t.steps.saturating_sub(t.warmup_steps)).max(1) as f64;
        let p = ((step - t.warmup_steps) as f64 / span).min(1.0);
        let min = t.lr * t.min_lr_ratio;
        min + (t.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }

    /// Per-sample loss terms `[B]` for one batch with the given timesteps, noise and
    /// text-keep mask. `self_cond`: the samples (`[B]` bool) whose prediction reads
    /// the model's own estimate, made first without gradient (self-conditioned
    /// models; the others read zeros).
    fn terms(
        &self,
        b: &Batch,
        t: &Tensor,
        noise: &Tensor,
        keep: &Tensor,
        train: bool,
        self_cond: Option<&Tensor>,
    ) -> [Tensor; 5] {
        let mask_f = b.mask.to_kind(Kind::Float).unsqueeze(2);
        let (x_in, t_in) = if self.model.is_regression() {
            (Tensor::zeros_like(&b.x0), Tensor::zeros_like(t))
        } else {
            (
                self.sched.q_sample(&b.x0, t, noise) * &mask_f,
                t.shallow_clone(),
            )
        };
        let cond = Cond {
            pooled: &b.pooled,
            tokens: b.tokens.as_ref().map(|(a, m)| (a, m)),
            keep,
        };
        let prev = self_cond.and_then(|chosen| self.estimate(b, &x_in, &t_in, keep, chosen, train));
        let pred = tch::autocast(self.scaler.is_some(), || {
            self.model
                .forward_sc(&x_in, &t_in, &cond, &b.mask, train, prev.as_ref())
        })
        .to_kind(Kind::Float);
        let rec = masked_mse(&pred, &b.x0, &b.mask);
        let n = b.x0.size()[1];
        let pair = b
            .mask
            .narrow(1, 1, n - 1)
            .logical_and(&b.mask.narrow(1, 0, n - 1));
        let diff = |x: &Tensor| x.narrow(1, 1, n - 1) - x.narrow(1, 0, n - 1);
        let vel = masked_mse(&diff(&pred), &diff(&b.x0), &pair);
        // Planar displacement in the body frame (m), integrated over real frames.
        let fps = self.data.norm.fps;
        let disp = |x: &Tensor| {
            ((x.narrow(2, 1, 2) * &self.vel_std + &self.vel_mean) * &mask_f / fps)
                .cumsum(1, Kind::Float)
        };
        let root = masked_mse(&disp(&pred), &disp(&b.x0), &b.mask);
        let target = b.frames.log() - LOG_FRAMES_OFFSET;
        let len = (self.model.length_t(&b.pooled) - target).square();
        let text = self
            .aux_head
            .as_ref()
            .and_then(|h| Some((h, self.model.text_feature(&b.pooled)?)));
        let aux = match text {
            Some((head, text)) => {
                // Each feature's mean and std over the real frames: `[B, 2F]`.
                let count = mask_f
                    .sum_dim_intlist(&[1i64][..], false, Kind::Float)
                    .clamp_min(1.0);
                let mean =
                    (&b.x0 * &mask_f).sum_dim_intlist(&[1i64][..], false, Kind::Float) / &count;
                let var = ((&b.x0 - mean.unsqueeze(1)).square() * &mask_f).sum_dim_intlist(
                    &[1i64][..],
                    false,
                    Kind::Float,
                ) / &count;
                let summary = Tensor::cat(&[mean, (var + 1e-6).sqrt()], 1);
                match &self.aux_motion {
                    Some(mh) => info_nce(&head.forward(&text), &mh.forward(&summary)),
                    None => (head.forward(&text) - summary).square().mean_dim(
                        &[1i64][..],
                        false,
                        Kind::Float,
                    ),
                }
            }
            None => Tensor::zeros_like(&len),
        };
        [rec, vel, root, len, aux]
    }

    /// Self-conditioning's first pass: the model's x0 estimate (no gradient) for the
    /// `chosen` samples (`[B]` bool), zeros for the rest; `None` when none is chosen.
    fn estimate(
        &self,
        b: &Batch,
        x_in: &Tensor,
        t_in: &Tensor,
        keep: &Tensor,
        chosen: &Tensor,
        train: bool,
    ) -> Option<Tensor> {
        let idx = chosen.nonzero().squeeze_dim(1);
        if idx.size()[0] == 0 {
            return None;
        }
        let pick = |x: &Tensor| x.index_select(0, &idx);
        let (pooled, keep_s, mask) = (pick(&b.pooled), pick(keep), pick(&b.mask));
        let tokens = b.tokens.as_ref().map(|(a, m)| (pick(a), pick(m)));
        let cond = Cond {
            pooled: &pooled,
            tokens: tokens.as_ref().map(|(a, m)| (a, m)),
            keep: &keep_s,
        };
        let est = tch::no_grad(|| {
            tch::autocast(self.scaler.is_some(), || {
                self.model
                    .forward_t(&pick(x_in), &pick(t_in), &cond, &mask, train)
            })
            .to_kind(Kind::Float)
                * mask.to_kind(Kind::Float).unsqueeze(2)
        });
        Some(x_in.zeros_like().index_copy(0, &idx, &est))
    }

    fn weighted(&self, terms: &[Tensor; 5]) -> Tensor {
        let t = &self.tcfg;
        terms[0].mean(Kind::Float)
            + terms[1].mean(Kind::Float) * t.velocity_weight
            + terms[2].mean(Kind::Float) * t.root_weight
            + terms[3].mean(Kind::Float) * t.length_weight
            + terms[4].mean(Kind::Float) * t.text_aux_weight
    }

    /// One optimisation step on the batch of step `self.step`.
    pub fn train_step(&mut self, pairs: &[(usize, usize)]) -> anyhow::Result<LogRow> {
        let t0 = Instant::now();
        let step = self.step;
        let seed = self.tcfg.seed;
        tch::manual_seed(derive_seed(seed, 2, step) as i64);
        let mut rng = Rng::new(derive_seed(seed, 3, step));
        let b = self.data.batch(
            pairs,
            self.cfg.max_frames as usize,
            self.cfg.frames_per_token as usize,
            &mut rng,
            self.device,
        );
        let n = pairs.len() as i64;
        let b = if self.tcfg.text_noise > 0.0 {
            let p = &b.pooled;
            let d = p.size()[1] as f64;
            let noisy = p + Tensor::randn(p.size(), (Kind::Float, self.device))
                * (self.tcfg.text_noise / d.sqrt());
            let scale = p.norm_scalaropt_dim(2, [1], true)
                / noisy.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            Batch {
                pooled: noisy * scale,
                ..b
            }
        } else {
            b
        };
        let b = if self.tcfg.text_mix > 0.0 {
            let v = self
                .data
                .mixed_pooled(pairs, &self.paraphrases, self.tcfg.text_mix, &mut rng);
            Batch {
                pooled: Tensor::from_slice(&v)
                    .view([n, self.data.text_dim as i64])
                    .to_device(self.device),
                ..b
            }
        } else {
            b
        };
        let t_data = t0.elapsed().as_secs_f64();
        let opts = (Kind::Float, self.device);
        let t = Tensor::randint(self.sched.steps(), [n], (Kind::Int64, self.device));
        let noise = Tensor::randn(b.x0.size(), opts);
        let keep = Tensor::rand([n], opts)
            .ge(self.tcfg.cond_drop)
            .to_kind(Kind::Float);
        // Self-conditioning: half of the batch reads the model's own first estimate
        // (drawn only then, so other models' random streams stay as they were).
        let chosen = self
            .cfg
            .self_condition
            .then(|| Tensor::rand([n], opts).lt(0.5));
        let terms = self.terms(&b, &t, &noise, &keep, true, chosen.as_ref());
        let loss = self.weighted(&terms);
        let loss_v = loss.double_value(&[]);
        if !loss_v.is_finite() {
            bail!("training diverged at step {step}: the loss is {loss_v}");
        }
        let t_fwd = t0.elapsed().as_secs_f64();
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
        match &self.scaler {
            Some(s) => (&loss * s.scale).backward(),
            None => loss.backward(),
        }
        let t_bwd = t0.elapsed().as_secs_f64();
        let lr = self.lr_at(step);
        let grad_norm = self.adamw(lr, step)?;
        self.update_ema(step);
        let secs = t0.elapsed().as_secs_f64();
        let mean = |x: &Tensor| x.mean(Kind::Float).double_value(&[]);
        let row = LogRow {
            step: step + 1,
            loss: loss_v,
            reconstruction: mean(&terms[0]),
            velocity: mean(&terms[1]),
            root: mean(&terms[2]),
            length: mean(&terms[3]),
            text_aux: mean(&terms[4]),
            lr,
            grad_norm,
            samples_per_s: n as f64 / secs.max(1e-9),
            wall_s: secs,
            data_s: t_data,
            forward_s: t_fwd - t_data,
            backward_s: t_bwd - t_fwd,
            optimizer_s: secs - t_bwd,
            val_loss: None,
        };
        self.step += 1;
        Ok(row)
    }

    /// Clip the global gradient norm, then AdamW (decoupled weight decay on matrices).
    /// Returns the norm before clipping.
    fn adamw(&mut self, lr: f64, step: u64) -> anyhow::Result<f64> {
        let t = &self.tcfg;
        let grads: Vec<Tensor> = self.params.iter().map(|(_, p)| p.grad()).collect();
        let sq: Vec<Tensor> = grads
            .iter()
            .filter(|g| g.defined())
            .map(|g| g.square().sum(Kind::Float))
            .collect();
        let unscale = self.scaler.map_or(1.0, |s| 1.0 / s.scale);
        let norm = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[])
            * unscale;
        let overflow = match self.scaler.as_mut().map(|s| s.update(norm.is_finite())) {
            // float16 overflow: skip this step with a smaller scale.
            Some(Ok(())) if !norm.is_finite() => return Ok(norm),
            Some(Err(scale)) => Some(scale),
            _ => None,
        };
        if !norm.is_finite() {
            let why = overflow.map_or(String::new(), |s| {
                format!(" even with the float16 loss scale down to {s}")
            });
            let bad: Vec<&str> = self
                .params
                .iter()
                .zip(&grads)
                .filter(|(_, g)| g.defined() && !finite(g))
                .map(|((n, _), _)| n.as_str())
                .collect();
            bail!(
                "training diverged at step {step}: the gradient norm is {norm}{why} \
                 (non-finite gradients in {} of {} tensors, first: {})",
                bad.len(),
                grads.len(),
                bad.iter().take(4).copied().collect::<Vec<_>>().join(", ")
            );
        }
        let scale = unscale
            * if t.grad_clip > 0.0 && norm > t.grad_clip {
                t.grad_clip / (norm + 1e-6)
            } else {
                1.0
            };
        let k = (step + 1) as i32;
        let (b1, b2) = (t.beta1, t.beta2);
        let c1 = 1.0 - b1.powi(k);
        let c2 = 1.0 - b2.powi(k);
        tch::no_grad(|| -> anyhow::Result<()> {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = &grads[i];
                if !g.defined() {
                    continue;
                }
                let g = g * scale;
                if t.weight_decay > 0.0 && p.dim() >= 2 {
                    let _ = p.f_mul_scalar_(1.0 - lr * t.weight_decay)?;
                }
                let m = &mut self.adam_m[i];
                let _ = m.f_mul_scalar_(b1)?;
                let _ = m.f_add_(&(&g * (1.0 - b1)))?;
                let v = &mut self.adam_v[i];
                let _ = v.f_mul_scalar_(b2)?;
                let _ = v.f_add_(&(g.square() * (1.0 - b2)))?;
                let denom = (&*v / c2).sqrt() + 1e-8;
                let upd = (&*m / c1) / denom * lr;
                let _ = p.f_sub_(&upd)?;
            }
            Ok(())
        })?;
        Ok(norm)
    }

    /// `ema ← d·ema + (1 − d)·params` with `d = min(ema, (1 + step) / (10 + step))`.
    fn update_ema(&mut self, step: u64) {
        if self.ema.is_empty() {
            return;
        }
        let d = self.tcfg.ema.min((1 + step) as f64 / (10 + step) as f64);
        tch::no_grad(|| {
            for (e, (_, p)) in self.ema.iter_mut().zip(&self.params) {
                let _ = e.lerp_(p, 1.0 - d);
            }
        });
    }

    /// Replace the weights by their moving average (the end of training).
    fn use_ema(&mut self) {
        let ema = std::mem::take(&mut self.ema);
        tch::no_grad(|| {
            for (e, (_, p)) in ema.iter().zip(self.params.iter_mut()) {
                p.copy_(e);
            }
        });
    }

    /// Validation over every pair of `split` with fixed timesteps and noise.
    pub fn validate(&self, split: &str) -> Option<Validation> {
        let pairs = self.data.split(split);
        if pairs.is_empty() {
            return None;
        }
        let bs = self.tcfg.batch_size as usize;
        let steps = self.sched.steps();
        let (mut sum, mut sum_noise, mut sum_mean) = (0.0, 0.0, 0.0);
        tch::no_grad(|| {
            for (ci, chunk) in pairs.chunks(bs).enumerate() {
                tch::manual_seed(derive_seed(self.tcfg.seed, 4, ci as u64) as i64);
                let mut rng = Rng::new(derive_seed(self.tcfg.seed, 5, ci as u64));
                let b = self.data.batch(
                    chunk,
                    self.cfg.max_frames as usize,
                    self.cfg.frames_per_token as usize,
                    &mut rng,
                    self.device,
                );
                let n = chunk.len() as i64;
                let grid: Vec<i64> = (0..n)
                    .map(|i| ((ci as i64 * bs as i64 + i) * 7919 + 17) % steps)
                    .collect();
                let t = Tensor::from_slice(&grid).to_device(self.device);
                let noise = Tensor::randn(b.x0.size(), (Kind::Float, self.device));
                let keep = Tensor::ones([n], (Kind::Float, self.device));
                let total = |x: &Tensor| x.sum(Kind::Float).double_value(&[]);
                sum += total(&self.terms(&b, &t, &noise, &keep, false, None)[0]);
                let t_max = Tensor::full([n], steps - 1, (Kind::Int64, self.device));
                sum_noise += total(&self.terms(&b, &t_max, &noise, &keep, false, None)[0]);
                sum_mean += total(&masked_mse(&Tensor::zeros_like(&b.x0), &b.x0, &b.mask));
            }
        });
        let n = pairs.len() as f64;
        Some(Validation {
            loss: sum / n,
            loss_from_noise: sum_noise / n,
            loss_mean_pose: sum_mean / n,
            pairs: pairs.len(),
        })
    }

    fn checkpoint_dir(scratch: &Path, step: u64) -> PathBuf {
        scratch.join(format!("ckpt-{step:09}"))
    }

    /// Save params + optimizer state + log into `scratch/ckpt-STEP`, atomically, and
    /// remove older checkpoints.
    pub fn save(&self, scratch: &Path, wall_s: f64) -> anyhow::Result<()> {
        let dir = Self::checkpoint_dir(scratch, self.step);
        let tmp = scratch.join(format!(".tmp-ckpt-{}", self.step));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut all = Vec::new();
        for (i, (name, p)) in self.params.iter().enumerate() {
            all.push((format!("param.{name}"), p.shallow_clone()));
            all.push((format!("adam_m.{name}"), self.adam_m[i].shallow_clone()));
            all.push((format!("adam_v.{name}"), self.adam_v[i].shallow_clone()));
            if let Some(e) = self.ema.get(i) {
                all.push((format!("ema.{name}"), e.shallow_clone()));
            }
        }
        checkpoint::write_tensors(&tmp.join("state.safetensors"), &all)?;
        let state = ResumeState {
            step: self.step,
            fingerprint: self.fingerprint(),
            wall_s,
            log: self.log.clone(),
            scaler: self.scaler,
        };
        std::fs::write(tmp.join("state.json"), serde_json::to_vec(&state)?)?;
        if let Ok(f) = std::fs::File::open(tmp.join("state.safetensors")) {
            let _ = f.sync_all();
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).with_context(|| format!("publishing {}", dir.display()))?;
        for old in list_checkpoints(scratch)? {
            if old.0 < self.step {
                let _ = std::fs::remove_dir_all(&old.1);
            }
        }
        Ok(())
    }

    /// Resume from the newest complete checkpoint in `scratch`, if any.
    pub fn resume(&mut self, scratch: &Path) -> anyhow::Result<Option<u64>> {
        let Some((step, dir)) = list_checkpoints(scratch)?.into_iter().last() else {
            return Ok(None);
        };
        let sj = dir.join("state.json");
        let state: ResumeState = serde_json::from_slice(
            &std::fs::read(&sj).with_context(|| format!("reading {}", sj.display()))?,
        )
        .with_context(|| {
            format!(
                "{}: corrupt checkpoint state (delete {} to start over)",
                sj.display(),
                dir.display()
            )
        })?;
        if state.step != step || state.fingerprint != self.fingerprint() {
            bail!(
                "{}: the checkpoint belongs to another configuration or data (delete {} to start over)",
                sj.display(),
                dir.display()
            );
        }
        let file = dir.join("state.safetensors");
        let tensors = checkpoint::read_tensors(&file).with_context(|| {
            format!(
                "corrupt checkpoint (delete {} to start over)",
                dir.display()
            )
        })?;
        checkpoint::fill(&self.vs, &tensors, &file, "param.")?;
        for (i, (name, _)) in self.params.iter().enumerate() {
            let mut slots = vec![
                ("adam_m.", &mut self.adam_m[i]),
                ("adam_v.", &mut self.adam_v[i]),
            ];
            if let Some(e) = self.ema.get_mut(i) {
                slots.push(("ema.", e));
            }
            for (prefix, dst) in slots {
                let key = format!("{prefix}{name}");
                let src = tensors
                    .get(&key)
                    .with_context(|| format!("{}: no tensor `{key}`", file.display()))?;
                if src.size() != dst.size() {
                    bail!("{}: tensor `{key}` has the wrong shape", file.display());
                }
                tch::no_grad(|| dst.f_copy_(src))?;
            }
        }
        self.step = state.step;
        self.log = state.log;
        if self.scaler.is_some() {
            self.scaler = Some(state.scaler.unwrap_or_else(LossScale::new));
        }
        self.wall_before = state.wall_s;
        Ok(Some(step))
    }

    /// Train to `tcfg.steps`, resuming from and checkpointing into `scratch`.
    /// `progress(step, total, message)` is called after every step.
    pub fn run(
        &mut self,
        scratch: &Path,
        progress: &mut dyn FnMut(u64, u64, &str),
    ) -> anyhow::Result<Outcome> {
        let resumed_from = self.resume(scratch)?;
        let total = self.tcfg.steps;
        let train = self.data.split("train").to_vec();
        let bs = self.tcfg.batch_size as usize;
        let per_epoch = train.len().div_ceil(bs) as u64;
        let mut epoch_cache: Option<(u64, Vec<Batchlist>)> = None;
        let t0 = Instant::now();
        let mut rate = 0.0;
        while self.step < total {
            let epoch = self.step / per_epoch;
            if epoch_cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
                epoch_cache = Some((
                    epoch,
                    epoch_batches(self.data, &train, bs, self.tcfg.seed, epoch),
                ));
            }
            let pairs = epoch_cache
                .as_ref()
                .and_then(|(_, b)| b.get((self.step % per_epoch) as usize))
                .context("internal: the epoch has fewer batches than expected")?;
            let mut row = match self.train_step(pairs) {
                Ok(r) => r,
                Err(e) => {
                    let last = list_checkpoints(scratch)?.into_iter().last();
                    return Err(match last {
                        Some((s, d)) => e.context(format!(
                            "the last good checkpoint (step {s}) is kept in {}",
                            d.display()
                        )),
                        None => e,
                    });
                }
            };
            rate = if rate == 0.0 {
                row.samples_per_s
            } else {
                0.9 * rate + 0.1 * row.samples_per_s
            };
            if self.step.is_multiple_of(self.tcfg.eval_every) && self.step < total {
                row.val_loss = self.validate("val").map(|v| v.loss);
            }
            let eta = (total - self.step) as f64 * bs as f64 / rate.max(1e-9);
            progress(
                self.step,
                total,
                &format!(
                    "loss {:.4} · {:.0} samples/s · ETA {}",
                    row.loss,
                    rate,
                    fmt_secs(eta)
                ),
            );
            self.log.push(row);
            if self.step.is_multiple_of(self.tcfg.checkpoint_every) && self.step < total {
                self.save(scratch, self.wall_before + t0.elapsed().as_secs_f64())?;
            }
        }
        let tail: Vec<f64> = self.log.iter().rev().take(50).map(|r| r.loss).collect();
        if !self.ema.is_empty() {
            self.use_ema();
        }
        let validation = self.validate("val");
        if let Some(last) = self.log.last_mut() {
            // The weights exported (the moving average, when on).
            last.val_loss = validation.as_ref().map(|v| v.loss);
        }
        Ok(Outcome {
            steps: self.step,
            validation,
            final_train_loss: tail.iter().sum::<f64>() / tail.len().max(1) as f64,
            samples_per_s: rate,
            wall_s: self.wall_before + t0.elapsed().as_secs_f64(),
            resumed_from,
        })
    }

    pub fn card(&self) -> ModelCard {
        let n = &self.data.norm;
        ModelCard {
            format: checkpoint::FORMAT.into(),
            model: self.cfg.clone(),
            dims: self.model.dims,
            fps: n.fps,
            features_version: n.features_version,
            features: n.features.clone(),
            mean: n.stats.mean.clone(),
            std: n.stats.std.clone(),
            encoder: self.data.encoder.0.clone(),
            encoder_digest: self.data.encoder.1.clone(),
            steps: self.step,
            seed: self.tcfg.seed,
            libtorch: crate::device::LIBTORCH_VERSION.into(),
        }
    }

    /// `model.safetensors` + `config.json` into `dir`.
    pub fn export(&self, dir: &Path) -> anyhow::Result<()> {
        let model: Vec<(String, Tensor)> = self
            .params
            .iter()
            .filter(|(n, _)| !n.starts_with(AUX_PREFIX))
            .map(|(n, p)| (n.clone(), p.shallow_clone()))
            .chain([(checkpoint::TEXT_BANK.to_string(), self.data.train_bank())])
            .chain(
                checkpoint::MOTION_BANK
                    .iter()
                    .map(|k| k.to_string())
                    .zip(self.data.train_motion_bank()),
            )
            .collect();
        checkpoint::write_tensors(&dir.join("model.safetensors"), &model)?;
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&self.card())?,
        )?;
        Ok(())
    }
}

/// The (motion, sentence) pairs of one batch.
type Batchlist = Vec<(usize, usize)>;

fn list_checkpoints(scratch: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(scratch) else {
        return Ok(v);
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(s) = name
            .strip_prefix("ckpt-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            v.push((s, e.path()));
        }
    }
    v.sort();
    Ok(v)
}

/// Whether every element of `t` is finite.
fn finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) != 0
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_motion::features::{FeatureStats, N_FEATURES};
    use pipe_motion::stats::Normalisation;

    /// A dataset with nothing in it but unit normalisation and `text` dims: enough
    /// to build a [`Trainer`] around hand-made batches.
    fn empty_data(text: usize) -> Dataset {
        Dataset {
            norm: Normalisation {
                features_version: 1,
                features: Vec::new(),
                fps: 20.0,
                split: "train".into(),
                motions: 0,
                stats: FeatureStats {
                    mean: vec![0.0; N_FEATURES],
                    std: vec![1.0; N_FEATURES],
                    frames: 0,
                },
            },
            motions: Vec::new(),
            sentences: Vec::new(),
            pooled: Vec::new(),
            tokens: None,
            text_dim: text,
            encoder: (String::new(), String::new()),
            pairs: std::collections::BTreeMap::new(),
            mirrored: (0, 0),
        }
    }

    /// InfoNCE: low when each row's pair is its most similar, ln(B) when all rows
    /// are alike, high when the pairs are crossed; symmetric in its two sides.
    #[test]
    fn info_nce_rewards_pairs_that_pick_each_other_out() {
        let a = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0]).view([3, 2]);
        let crossed = Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0, 0.0, -1.0]).view([3, 2]);
        let same = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
        let mean = |t: Tensor| t.mean(Kind::Float).double_value(&[]);
        let paired = mean(info_nce(&a, &a));
        let alike = mean(info_nce(&same, &same));
        let wrong = mean(info_nce(&a, &crossed));
        assert!(paired < 0.01, "{paired}");
        assert!((alike - 3f64.ln()).abs() < 1e-5, "{alike}");
        assert!(wrong > 5.0, "{wrong}");
        assert!((mean(info_nce(&crossed, &a)) - wrong).abs() < 1e-5);
        assert_eq!(info_nce(&a, &a).size(), [3]);
    }

    #[test]
    fn text_mix_mixes_only_paraphrases_of_one_motion_and_keeps_their_length() {
        let mut d = empty_data(2);
        // Motion 0 has sentences 0 and 1; motion 1 only sentence 2.
        d.pooled = vec![1.0, 0.0, 0.0, 1.0, 3.0, 4.0];
        d.pairs
            .insert("train".into(), vec![(0, 0), (0, 1), (1, 2), (0, 0)]);
        let para = d.paraphrases();
        assert_eq!(para[&0], vec![0, 1]);
        assert_eq!(para[&1], vec![2]);
        let mut rng = Rng::new(7);
        let pairs = [(0, 0), (1, 2)];
        assert_eq!(
            d.mixed_pooled(&pairs, &para, 0.0, &mut rng),
            vec![1.0, 0.0, 3.0, 4.0]
        );
        let mut mixed = 0;
        for _ in 0..50 {
            let v = d.mixed_pooled(&pairs, &para, 1.0, &mut rng);
            // Between sentences 0 and 1, at their (unit) length.
            assert!(v[0] >= 0.0 && v[1] >= 0.0, "{v:?}");
            assert!((v[0].hypot(v[1]) - 1.0).abs() < 1e-5, "{v:?}");
            mixed += usize::from(v[0] > 0.01 && v[1] > 0.01);
            // A motion with one sentence keeps it.
            assert_eq!(&v[2..], &[3.0, 4.0]);
        }
        assert!(mixed > 40, "{mixed}");
    }

    /// Self-conditioning's first pass: zeros for the rows not chosen, the model's
    /// own estimate for each chosen row (as if it were alone in the batch, padding
    /// zero), no gradient, and nothing at all when no row is chosen.
    #[test]
    fn the_self_conditioning_estimate_covers_only_the_chosen_rows_without_gradient() {
        let data = empty_data(8);
        let cfg = ModelConfig {
            layers: 1,
            d_model: 32,
            heads: 4,
            ff: 64,
            self_condition: true,
            diffusion_steps: 100,
            ..Default::default()
        };
        let tr = Trainer::new(&data, cfg, TrainConfig::default(), Device::Cpu);
        let f = N_FEATURES as i64;
        let opts = (Kind::Float, Device::Cpu);
        let mask = Tensor::from_slice(
            &[
                [true; 8],
                [true; 8],
                [true, true, true, true, false, false, false, false],
            ]
            .concat(),
        )
        .view([3, 8]);
        let mask_f = mask.to_kind(Kind::Float).unsqueeze(2);
        let b = Batch {
            x0: Tensor::randn([3, 8, f], opts) * &mask_f,
            mask: mask.shallow_clone(),
            pooled: Tensor::randn([3, 8], opts),
            tokens: None,
            frames: Tensor::from_slice(&[8f32, 8.0, 4.0]),
        };
        let x_in = Tensor::randn([3, 8, f], opts) * &mask_f;
        let t_in = Tensor::from_slice(&[10i64, 50, 90]);
        let keep = Tensor::ones([3], opts);
        let none = Tensor::from_slice(&[false, false, false]);
        assert!(tr.estimate(&b, &x_in, &t_in, &keep, &none, false).is_none());
        let chosen = Tensor::from_slice(&[false, true, true]);
        let est = tr
            .estimate(&b, &x_in, &t_in, &keep, &chosen, false)
            .expect("two rows chosen");
        assert_eq!(est.size(), [3, 8, f]);
        assert!(
            !est.requires_grad(),
            "the first pass is not trained through"
        );
        let abs_sum = |t: Tensor| t.abs().sum(Kind::Float).double_value(&[]);
        assert_eq!(abs_sum(est.get(0)), 0.0, "row 0 was not chosen");
        assert_eq!(
            abs_sum(est.get(2).narrow(0, 4, 4)),
            0.0,
            "padding stays zero"
        );
        for r in [1i64, 2] {
            let one = |x: &Tensor| x.narrow(0, r, 1);
            let (pooled, keep_r) = (one(&b.pooled), one(&keep));
            let cond = Cond {
                pooled: &pooled,
                tokens: None,
                keep: &keep_r,
            };
            let alone = tch::no_grad(|| {
                tr.model
                    .forward_t(&one(&x_in), &one(&t_in), &cond, &one(&mask), false)
                    * one(&mask_f)
            });
            assert!(abs_sum(alone.shallow_clone()) > 0.0);
            let diff = (est.narrow(0, r, 1) - alone).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "row {r}: {diff}");
        }
    }

    #[test]
    fn loss_scale_halves_on_overflow_grows_after_a_run_of_good_steps_and_gives_up_below_one() {
        let mut s = LossScale::new();
        assert_eq!(s.update(false), Ok(()));
        assert_eq!((s.scale, s.skipped), (32768.0, 1));
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            assert_eq!(s.update(true), Ok(()));
        }
        assert_eq!(s.scale, 32768.0);
        assert_eq!(s.update(true), Ok(()));
        assert_eq!(s.scale, 65536.0);
        // An overflow restarts the run of good steps.
        assert_eq!(s.update(false), Ok(()));
        assert_eq!((s.scale, s.good_steps), (32768.0, 0));
        let mut fails = 0;
        while s.update(false).is_ok() {
            fails += 1;
        }
        assert_eq!(fails, 15, "32768 halves 15 times down to 1, then gives up");
        assert!(s.scale < 1.0);
    }
}

//! Sampling a trained model: DDIM (Song et al. 2021; η = 0 by default, η = 1 over
//! all steps is DDPM) with classifier-free guidance, every prompt × sample batched
//! together, seeded per sample.

use tch::{Device, Kind, Tensor};

use crate::data::derive_seed;
use crate::diffusion::Schedule;
use crate::model::{Cond, MotionModel};
use pipe_motion::features::{ROOT_HEIGHT, ROOT_VELOCITY};

/// What to sample: one entry per output motion.
pub struct Request<'a> {
    /// `[N, Dt]` pooled text vectors (one row per output motion).
    pub pooled: &'a Tensor,
    /// `[N, L, Dt]` token states and `[N, L]` mask, for token-conditioned models.
    pub tokens: Option<(&'a Tensor, &'a Tensor)>,
    /// Frames of each motion (multiples of `frames_per_token`).
    pub frames: &'a [i64],
    /// Seed of each motion (its starting noise).
    pub seeds: &'a [u64],
    /// DDIM steps (≤ the model's diffusion steps).
    pub steps: i64,
    /// Classifier-free guidance scale (1 = plain conditional, 0 = unconditional).
    pub guidance: f64,
    /// Another guidance scale for the root's forward and rightward velocity
    /// ([`ROOT_VELOCITY`]); `None` = `guidance`. Guidance extrapolates a walk's
    /// conditional speed (≈ 1 m/s) away from the unconditional one into a run's.
    pub velocity_guidance: Option<f64>,
    /// Another guidance scale for the root height ([`ROOT_HEIGHT`]); `None` =
    /// `guidance`. The unconditional prediction averages in the squats and sit-downs,
    /// so guidance lifts every standing action's root: kicks rose 10–17 cm and read
    /// as jumps.
    pub height_guidance: Option<f64>,
    /// DDIM η (0 = deterministic DDIM, 1 = DDPM-like).
    pub eta: f64,
    /// Where η applies: only to the steps whose noise level t/T is at least this
    /// (0 = every step). The steps below it are deterministic. Karras et al. 2022
    /// ("Elucidating the design space…", §4) likewise add noise only inside a
    /// range of noise levels.
    pub eta_from: f64,
    /// Guidance rescale φ (Lin et al. 2024, "Common diffusion noise schedules and
    /// sample steps are flawed", §3.4): the guided x0 prediction is scaled to the
    /// standard deviation of the conditional one, then mixed with the unscaled one,
    /// `φ · rescaled + (1 − φ) · guided`. 0 = plain guidance. Counters the
    /// over-amplified amplitudes (strides, speeds) of large guidance scales.
    pub guidance_rescale: f64,
    /// Start from these motions (`[N, T, F]`, normalised, T the longest request)
    /// noised to level `t/T` = the given fraction, instead of from pure noise at
    /// the last step (SDEdit, Meng et al. 2022); the DDIM steps above it are skipped.
    pub init: Option<(&'a Tensor, f64)>,
    /// `[N, Dt]` pooled vectors of a negative prompt: guidance then extrapolates
    /// from the prediction under this text, not from the unconditional one, through
    /// the conditional one (away from what it describes). `None`: plain
    /// classifier-free guidance. Pooled-conditioned models only.
    pub negative: Option<&'a Tensor>,
}

/// The descending timesteps of a `steps`-step sampler over a `total`-step schedule.
pub fn timesteps(total: i64, steps: i64) -> Vec<i64> {
    if steps <= 1 {
        return vec![total - 1];
    }
    let mut v: Vec<i64> = (0..steps)
        .map(|i| ((i as f64) * (total - 1) as f64 / (steps - 1) as f64).round() as i64)
        .collect();
    v.dedup();
    v.reverse();
    v
}

/// `[N, t_max]` bool: true on each motion's first `frames[i]` frames.
fn frame_mask(frames: &[i64], t_max: i64, device: Device) -> Tensor {
    let v: Vec<bool> = frames
        .iter()
        .flat_map(|&fr| (0..t_max).map(move |i| i < fr))
        .collect();
    Tensor::from_slice(&v)
        .view([frames.len() as i64, t_max])
        .to_device(device)
}

/// `[N, T, F]` normalised features (T = the longest request, padded frames zero).
pub fn sample(model: &MotionModel, req: &Request, device: Device) -> Tensor {
    let n = req.frames.len() as i64;
    let t_max = req.frames.iter().copied().max().unwrap_or(1);
    let f = model.dims.features;
    let mask = frame_mask(req.frames, t_max, device);
    let mask_f = mask.to_kind(Kind::Float).unsqueeze(2);
    let noise_for = |purpose: u64, salt: u64| -> Tensor {
        let per: Vec<Tensor> = req
            .seeds
            .iter()
            .map(|&s| {
                tch::manual_seed(derive_seed(s, purpose, salt) as i64);
                Tensor::randn([t_max, f], (Kind::Float, Device::Cpu))
            })
            .collect();
        Tensor::stack(&per, 0).to_device(device)
    };
    tch::no_grad(|| {
        let ones = Tensor::ones([n], (Kind::Float, device));
        let cond = Cond {
            pooled: req.pooled,
            tokens: req.tokens,
            keep: &ones,
        };
        if model.is_regression() {
            let x = Tensor::zeros([n, t_max, f], (Kind::Float, device));
            let t = Tensor::zeros([n], (Kind::Int64, device));
            return model.forward_t(&x, &t, &cond, &mask, false) * &mask_f;
        }
        let sched = Schedule::cosine(model.cfg.diffusion_steps, device);
        let per_feature =
            guidance_weights(f, req.guidance, req.velocity_guidance, req.height_guidance)
                .map(|w| Tensor::from_slice(&w).to_device(device));
        let guided = req.guidance != 1.0 || per_feature.is_some();
        let (pooled2, tokens2, keep2, mask2) = if guided {
            // The second half: the negative prompt, or the text dropped.
            let away = if req.negative.is_some() { 1.0 } else { 0.0 };
            let keep = Tensor::cat(
                &[
                    Tensor::ones([n], (Kind::Float, device)),
                    Tensor::full([n], away, (Kind::Float, device)),
                ],
                0,
            );
            let tokens = req
                .tokens
                .map(|(t, m)| (Tensor::cat(&[t, t], 0), Tensor::cat(&[m, m], 0)));
            (
                Tensor::cat(&[req.pooled, req.negative.unwrap_or(req.pooled)], 0),
                tokens,
                keep,
                Tensor::cat(&[&mask, &mask], 0),
            )
        } else {
            (
                req.pooled.shallow_clone(),
                req.tokens
                    .map(|(t, m)| (t.shallow_clone(), m.shallow_clone())),
                ones.shallow_clone(),
                mask.shallow_clone(),
            )
        };
        // Self-conditioned models read each row's previous estimate (zeros at first).
        let prev: std::cell::RefCell<Option<Tensor>> = Default::default();
        let mask2_f = mask2.to_kind(Kind::Float).unsqueeze(2);
        // Conditional and unconditional passes in one batch of 2N.
        let predict = |x: &Tensor, t: i64| -> Tensor {
            let xin = if guided {
                Tensor::cat(&[x, x], 0)
            } else {
                x.shallow_clone()
            };
            let tt = Tensor::full([xin.size()[0]], t, (Kind::Int64, device));
            let c = Cond {
                pooled: &pooled2,
                tokens: tokens2.as_ref().map(|(a, b)| (a, b)),
                keep: &keep2,
            };
            // float32 on every device: autocast's float16 measured no faster for this
            // model size on an H200, and a float32-trained model may overflow it.
            let out = model.forward_sc(&xin, &tt, &c, &mask2, false, prev.borrow().as_ref());
            if model.cfg.self_condition {
                // Each row its own: the conditional rows their conditional estimate,
                // the unconditional (or negative) rows theirs.
                prev.replace(Some(&out * &mask2_f));
            }
            if guided {
                let (cnd, unc) = (out.narrow(0, 0, n), out.narrow(0, n, n));
                let g = match &per_feature {
                    Some(w) => &unc + (&cnd - &unc) * w,
                    None => &unc + (&cnd - &unc) * req.guidance,
                };
                if req.guidance_rescale > 0.0 {
                    rescale(&g, &cnd, &mask_f, req.guidance_rescale)
                } else {
                    g
                }
            } else {
                out
            }
        };
        let mut ts = timesteps(sched.steps(), req.steps);
        let x_t = match req.init {
            Some((x0, level)) => {
                let t0 = (level * (sched.steps() - 1) as f64).round() as i64;
                ts.retain(|&t| t <= t0);
                // At least the last step, which returns the denoised motion.
                if ts.is_empty() {
                    ts.push(0);
                }
                let ab = sched.alpha_bar[ts[0] as usize];
                x0 * ab.sqrt() + noise_for(10, 0) * (1.0 - ab).sqrt()
            }
            None => noise_for(10, 0),
        };
        ddim(
            &sched,
            &predict,
            x_t,
            &mask_f,
            &ts,
            (req.eta, req.eta_from),
            &|i| noise_for(11, i),
        )
    })
}

/// Noise levels t/T at which [`text_gain`] compares the model's conditional and
/// unconditional predictions: the middle of the schedule, where the motion's layout
/// is being decided (at the noisiest end both predictions are close to the data
/// mean, at the cleanest both copy the input).
pub const GAIN_LEVELS: [f64; 4] = [0.3, 0.5, 0.7, 0.9];

/// How much the condition helps the model denoise each of the motions `x0`
/// (`[N, T, F]` normalised, `frames[i]` real frames each): the masked mean squared
/// error of the unconditional x0 prediction minus the conditional one's, averaged
/// over [`GAIN_LEVELS`], the same noise (from `seeds[i]`) for both. A diffusion model
/// used as a classifier of its own condition (Li et al. 2023, "Your diffusion model
/// is secretly a zero-shot classifier"): the higher, the better the motion fits the
/// text, as the model has learnt it — no labels needed. Returns `[N]`.
pub fn text_gain(
    model: &MotionModel,
    pooled: &Tensor,
    x0: &Tensor,
    frames: &[i64],
    seeds: &[u64],
    device: Device,
) -> Result<Vec<f64>, tch::TchError> {
    let n = frames.len() as i64;
    if n == 0 || model.is_regression() {
        return Ok(vec![0.0; frames.len()]);
    }
    let t_max = x0.size()[1];
    let f = x0.size()[2];
    let sched = Schedule::cosine(model.cfg.diffusion_steps, device);
    let last = (sched.steps() - 1) as f64;
    let mask = frame_mask(frames, t_max, device);
    let l = GAIN_LEVELS.len() as i64;
    // Rows: level-major copies of the N motions, then the same again without text.
    let t: Vec<i64> = GAIN_LEVELS
        .iter()
        .flat_map(|&lv| std::iter::repeat_n((lv * last).round() as i64, n as usize))
        .collect();
    let t = Tensor::from_slice(&t).to_device(device);
    // Drawn at one length for every batch (libtorch's draws depend on the size), so
    // a motion's gain does not depend on how long the others in its batch are.
    let len = t_max.max(model.cfg.max_frames);
    let noise: Vec<Tensor> = GAIN_LEVELS
        .iter()
        .enumerate()
        .flat_map(|(j, _)| {
            seeds.iter().map(move |&s| {
                tch::manual_seed(derive_seed(s, 12, j as u64) as i64);
                Tensor::randn([len, f], (Kind::Float, Device::Cpu)).narrow(0, 0, t_max)
            })
        })
        .collect();
    let noise = Tensor::stack(&noise, 0).to_device(device);
    tch::no_grad(|| {
        let x0 = x0.to_device(device).repeat([l, 1, 1]);
        let mask = mask.repeat([l, 1]);
        let mask_f = mask.to_kind(Kind::Float).unsqueeze(2);
        let x_t = sched.q_sample(&x0, &t, &noise) * &mask_f;
        let both = |x: &Tensor| Tensor::cat(&[x, x], 0);
        let pooled = both(&pooled.to_device(device).repeat([l, 1]));
        let keep = Tensor::cat(
            &[
                Tensor::ones([n * l], (Kind::Float, device)),
                Tensor::zeros([n * l], (Kind::Float, device)),
            ],
            0,
        );
        let c = Cond {
            pooled: &pooled,
            tokens: None,
            keep: &keep,
        };
        let pred = model.forward_t(&both(&x_t), &both(&t), &c, &both(&mask), false);
        let err = crate::data::masked_mse(&pred, &both(&x0), &both(&mask));
        let (cond, unc) = (err.narrow(0, 0, n * l), err.narrow(0, n * l, n * l));
        let gain = (unc - cond).view([l, n]).mean_dim(0, false, Kind::Float);
        Vec::<f64>::try_from(gain.to_kind(Kind::Double).to_device(Device::Cpu))
    })
}

/// Per-feature guidance scales (`[F]`) when the root velocity or the root height has
/// its own, else `None`.
pub fn guidance_weights(
    features: i64,
    guidance: f64,
    velocity: Option<f64>,
    height: Option<f64>,
) -> Option<Vec<f32>> {
    let own = |s: Option<f64>| s.filter(|&s| s != guidance);
    let (velocity, height) = (own(velocity), own(height));
    if velocity.is_none() && height.is_none() {
        return None;
    }
    let n = features.max(0) as usize;
    let mut w = vec![guidance as f32; n];
    for k in ROOT_VELOCITY.filter(|&k| k < n) {
        w[k] = velocity.unwrap_or(guidance) as f32;
    }
    if ROOT_HEIGHT < n {
        w[ROOT_HEIGHT] = height.unwrap_or(guidance) as f32;
    }
    Some(w)
}

/// `φ · guided · std(cond) / std(guided) + (1 − φ) · guided`, the standard deviations
/// taken per motion over its real frames and all features.
pub fn rescale(guided: &Tensor, cond: &Tensor, mask_f: &Tensor, phi: f64) -> Tensor {
    let count = (mask_f.sum_dim_intlist(&[1i64, 2][..], true, Kind::Float)
        * guided.size()[2] as f64)
        .clamp_min(2.0);
    let std = |x: &Tensor| {
        let xm = x * mask_f;
        let mean = xm.sum_dim_intlist(&[1i64, 2][..], true, Kind::Float) / &count;
        (((x - &mean) * mask_f)
            .square()
            .sum_dim_intlist(&[1i64, 2][..], true, Kind::Float)
            / (&count - 1.0))
            .sqrt()
    };
    let ratio = std(cond) / std(guided).clamp_min(1e-8);
    guided * (ratio * phi + (1.0 - phi))
}

/// DDIM over the descending timesteps `ts` from `x_t` (`[N, T, F]`, noised to
/// `ts[0]`; standard normal when that is the last step) with an x0 predictor; padded
/// frames (`mask_f` 0) stay zero. `(η, from)`: stochasticity, applied to the steps
/// whose t/(T − 1) ≥ `from`. Returns the final x0 estimate.
pub fn ddim(
    sched: &Schedule,
    predict: &dyn Fn(&Tensor, i64) -> Tensor,
    x_t: Tensor,
    mask_f: &Tensor,
    ts: &[i64],
    (eta, eta_from): (f64, f64),
    noise: &dyn Fn(u64) -> Tensor,
) -> Tensor {
    let last = (sched.steps() - 1).max(1) as f64;
    let mut x = x_t * mask_f;
    let mut x0 = x.zeros_like();
    for (i, &t) in ts.iter().enumerate() {
        x0 = predict(&x, t) * mask_f;
        let Some(&t_prev) = ts.get(i + 1) else {
            break;
        };
        let ab = sched.alpha_bar[t as usize];
        let ab_prev = sched.alpha_bar[t_prev as usize];
        let eps = (&x - &x0 * ab.sqrt()) / (1.0 - ab).sqrt();
        let eta = if t as f64 / last >= eta_from {
            eta
        } else {
            0.0
        };
        let sigma =
            eta * ((1.0 - ab_prev) / (1.0 - ab)).sqrt() * (1.0 - ab / ab_prev).max(0.0).sqrt();
        let dir = (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt();
        x = &x0 * ab_prev.sqrt() + eps * dir;
        if sigma > 0.0 {
            x += noise(i as u64) * sigma;
        }
        x *= mask_f;
    }
    x0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the exact x0 predictor of a Gaussian N(mu, s^2), DDIM (and DDPM) must
    /// return samples of that Gaussian.
    #[test]
    fn ddim_samples_a_known_gaussian() {
        let sched = Schedule::cosine(1000, Device::Cpu);
        let (mu, s2) = (1.5f64, 0.25f64);
        let predict = |x: &Tensor, t: i64| -> Tensor {
            let ab = sched.alpha_bar[t as usize];
            let gain = s2 * ab.sqrt() / (s2 * ab + 1.0 - ab);
            (x - ab.sqrt() * mu) * gain + mu
        };
        // Noise from a generator of this test's own: libtorch's global one is shared
        // with the tests running beside this one, whose `manual_seed` calls made the
        // 1,000-step run reuse noise (variance 0.28 instead of 0.25, once).
        let rng = std::cell::RefCell::new(pipe_kit::synth::Rng::new(1));
        let gauss = || -> Tensor {
            let mut r = rng.borrow_mut();
            let v: Vec<f32> = (0..4000 * 2 * 3)
                .map(|_| {
                    let (u1, u2) = (r.f().max(1e-12), r.f());
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
                })
                .collect();
            Tensor::from_slice(&v).view([4000, 2, 3])
        };
        // Deterministic, ancestral, and ancestral only above half the noise (then
        // deterministic): each is a sampler of the same distribution.
        for (steps, eta, tol) in [
            (50, (0.0, 0.0), 0.03),
            (10, (0.0, 0.0), 0.1),
            (1000, (1.0, 0.0), 0.03),
            (1000, (1.0, 0.5), 0.03),
        ] {
            let x_t = gauss();
            let mask = Tensor::ones([4000, 2, 1], (Kind::Float, Device::Cpu));
            let noise = |_| gauss();
            let ts = timesteps(1000, steps);
            let x = ddim(&sched, &predict, x_t, &mask, &ts, eta, &noise);
            let m = x.mean(Kind::Float).double_value(&[]);
            let v = x.var(true).double_value(&[]);
            assert!((m - mu).abs() < tol, "{steps} steps, {eta:?}: mean {m}");
            assert!((v - s2).abs() < tol, "{steps} steps, {eta:?}: var {v}");
        }
    }

    #[test]
    fn eta_from_adds_noise_only_on_the_noisier_steps() {
        let sched = Schedule::cosine(1000, Device::Cpu);
        let predict = |x: &Tensor, _t: i64| x * 0.5;
        // 10 steps: t = 999, 888, …, 111, 0; noise goes into the 9 transitions.
        for (from, want) in [
            (0.0, (0..9).collect::<Vec<u64>>()),
            (0.5, vec![0, 1, 2, 3, 4]), // t = 999 … 555
            (1.0, vec![0]),
        ] {
            let drawn = std::cell::RefCell::new(Vec::new());
            let noise = |i: u64| {
                drawn.borrow_mut().push(i);
                Tensor::zeros([1, 2, 3], (Kind::Float, Device::Cpu))
            };
            let x_t = Tensor::ones([1, 2, 3], (Kind::Float, Device::Cpu));
            let mask = Tensor::ones([1, 2, 1], (Kind::Float, Device::Cpu));
            let _ = ddim(
                &sched,
                &predict,
                x_t,
                &mask,
                &timesteps(1000, 10),
                (1.0, from),
                &noise,
            );
            assert_eq!(drawn.into_inner(), want, "eta_from {from}");
        }
    }

    #[test]
    fn rescale_matches_the_conditional_spread_on_real_frames_only() {
        let cond = Tensor::from_slice(&[1.0f32, -1.0, 1.0, -1.0, 0.0, 0.0]).view([1, 6, 1]);
        // Guidance tripled the spread; the last two frames are padding (garbage there).
        let guided = Tensor::from_slice(&[3.0f32, -3.0, 3.0, -3.0, 50.0, -50.0]).view([1, 6, 1]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0]).view([1, 6, 1]);
        let full = rescale(&guided, &cond, &mask, 1.0);
        let v = Vec::<f32>::try_from(full.reshape([-1])).expect("floats");
        for (a, b) in v[..4].iter().zip([1.0, -1.0, 1.0, -1.0]) {
            assert!((a - b).abs() < 1e-5, "{v:?}");
        }
        let none = rescale(&guided, &cond, &mask, 0.0);
        assert!(none.allclose(&guided, 1e-6, 1e-6, false));
        let half = Vec::<f32>::try_from(rescale(&guided, &cond, &mask, 0.5).reshape([-1]))
            .expect("floats");
        assert!((half[0] - 2.0).abs() < 1e-5, "{half:?}");
    }

    #[test]
    fn velocity_and_height_guidance_weight_only_their_features() {
        assert_eq!(guidance_weights(50, 2.5, None, None), None);
        assert_eq!(guidance_weights(50, 2.5, Some(2.5), Some(2.5)), None);
        let w = guidance_weights(50, 2.5, Some(1.5), None).expect("weights");
        assert_eq!(w.len(), 50);
        assert_eq!(&w[..4], &[2.5, 1.5, 1.5, 2.5]);
        assert!(w[3..].iter().all(|&x| x == 2.5));
        let w = guidance_weights(50, 2.5, None, Some(1.0)).expect("weights");
        assert_eq!(&w[..4], &[1.0, 2.5, 2.5, 2.5]);
        assert!(w[1..].iter().all(|&x| x == 2.5));
        let w = guidance_weights(50, 2.5, Some(1.5), Some(1.0)).expect("weights");
        assert_eq!(&w[..4], &[1.0, 1.5, 1.5, 2.5]);
        assert!(w[3..].iter().all(|&x| x == 2.5));
    }

    /// A small untrained model (5 features, 8-d text), seeded; its variables too.
    fn tiny_model(diffusion_steps: i64) -> (tch::nn::VarStore, MotionModel) {
        tiny_model_with(diffusion_steps, false)
    }

    fn tiny_model_with(
        diffusion_steps: i64,
        self_condition: bool,
    ) -> (tch::nn::VarStore, MotionModel) {
        use crate::config::ModelConfig;
        use crate::model::Dims;
        tch::manual_seed(0);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            layers: 2,
            d_model: 32,
            heads: 4,
            ff: 64,
            diffusion_steps,
            self_condition,
            ..Default::default()
        };
        let dims = Dims {
            features: 5,
            text: 8,
        };
        let model = MotionModel::new(&vs.root(), &cfg, dims);
        (vs, model)
    }

    #[test]
    fn text_gain_measures_what_the_text_changes_and_ignores_padding() {
        let (vs, model) = tiny_model(crate::config::ModelConfig::default().diffusion_steps);
        let x0 = Tensor::randn([3, 6, 5], (Kind::Float, Device::Cpu));
        let pooled = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
        let (frames, seeds) = ([6, 4, 6], [1, 2, 3]);
        let gain = |p: &Tensor, x: &Tensor, fr: &[i64], sd: &[u64]| {
            text_gain(&model, p, x, fr, sd, Device::Cpu).expect("gains")
        };
        let g = gain(&pooled, &x0, &frames, &seeds);
        assert_eq!(g.len(), 3);
        assert!(g.iter().all(|v| v.is_finite() && v.abs() > 1e-6), "{g:?}");
        // Seeded: the same again.
        assert_eq!(g, gain(&pooled, &x0, &frames, &seeds));
        // The middle motion alone, without the padding its batch gave it: the same.
        let alone = gain(
            &pooled.narrow(0, 1, 1),
            &x0.narrow(0, 1, 1).narrow(1, 0, 4),
            &[4],
            &[2],
        );
        assert!((alone[0] - g[1]).abs() < 1e-5, "{alone:?} vs {g:?}");
        // A model whose text projection is zero ignores the text: no gain anywhere.
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.starts_with("text_proj") {
                    let _ = v.fill_(0.0);
                }
            }
        });
        let none = gain(&pooled, &x0, &frames, &seeds);
        assert!(none.iter().all(|v| v.abs() < 1e-7), "{none:?}");
    }

    /// Two motions (6 and 4 frames, seeds 1 and 2), 10 deterministic DDIM steps.
    fn two_motions<'a>(
        pooled: &'a Tensor,
        guidance: f64,
        negative: Option<&'a Tensor>,
    ) -> Request<'a> {
        Request {
            pooled,
            tokens: None,
            frames: &[6, 4],
            seeds: &[1, 2],
            steps: 10,
            guidance,
            velocity_guidance: None,
            height_guidance: None,
            eta: 0.0,
            eta_from: 0.0,
            guidance_rescale: 0.0,
            init: None,
            negative,
        }
    }

    #[test]
    fn a_negative_prompt_is_what_guidance_pushes_away_from() {
        let (_vs, model) = tiny_model(100);
        let pooled = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
        let other = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
        let run = |guidance: f64, negative: Option<&Tensor>| {
            sample(
                &model,
                &two_motions(&pooled, guidance, negative),
                Device::Cpu,
            )
        };
        let plain = run(1.0, None);
        let guided = run(3.0, None);
        assert!(!guided.allclose(&plain, 1e-4, 1e-4, false));
        // Pushing away from the prompt itself cancels guidance: the conditional motion.
        let cancelled = run(3.0, Some(&pooled));
        assert!(cancelled.allclose(&plain, 1e-4, 1e-4, false));
        // Away from another sentence: neither of those, and seeded.
        let away = run(3.0, Some(&other));
        assert!(!away.allclose(&plain, 1e-4, 1e-4, false));
        assert!(!away.allclose(&guided, 1e-4, 1e-4, false));
        assert!(away.equal(&run(3.0, Some(&other))));
    }

    /// A self-conditioned model is sampled with each step reading the previous
    /// step's estimate: with the weights that read it zeroed, the motion is what
    /// zeros give; with them set, it changes (the first step reads zeros in both, so
    /// the change comes from the later steps), and stays seeded.
    #[test]
    fn self_conditioned_sampling_feeds_each_estimate_to_the_next_step() {
        let (vs, model) = tiny_model_with(100, true);
        let pooled = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
        let run = || sample(&model, &two_motions(&pooled, 2.0, None), Device::Cpu);
        // in_proj reads [x_t(5), prev(5)] for each of the token's 2 frames. (Random
        // weights: a constant one would add the same to every channel, which the
        // LayerNorms remove.)
        let set_prev_weights = |scale: f64| {
            tch::no_grad(|| {
                let w = &vs.variables()["in_proj.weight"];
                for frame in 0..2 {
                    let mut cols = w.narrow(1, frame * 10 + 5, 5);
                    cols.copy_(&(Tensor::randn(cols.size(), (Kind::Float, Device::Cpu)) * scale));
                }
            })
        };
        set_prev_weights(0.0);
        let ignoring = run();
        set_prev_weights(0.3);
        let reading = run();
        assert!(
            !reading.allclose(&ignoring, 1e-4, 1e-4, false),
            "the previous estimate was never read"
        );
        assert!(reading.equal(&run()));
        // Padded frames stay zero.
        let pad = reading.get(1).narrow(0, 4, 2).abs().max().double_value(&[]);
        assert_eq!(pad, 0.0);
    }

    #[test]
    fn timesteps_descend_from_the_noisiest() {
        assert_eq!(timesteps(1000, 1), vec![999]);
        assert_eq!(timesteps(1000, 2), vec![999, 0]);
        let t = timesteps(1000, 50);
        assert_eq!(t.len(), 50);
        assert_eq!((t[0], t[49]), (999, 0));
        assert!(t.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(timesteps(10, 10), (0..10).rev().collect::<Vec<_>>());
    }
}

//! The network: a Transformer encoder over motion tokens, conditioned on text
//! (MDM, Tevet et al. 2023, with pre-LayerNorm blocks).
//!
//! ```text
//! x_t [B, T, F] ─► fold k frames per token ─► Linear ─┐
//! cond token = MLP(sinusoid(t)) + Linear(pooled text) ┤ (+ sinusoidal positions)
//!                                                     ▼
//!   layers × [self-attention (key-padding mask) → cross-attention to text tokens
//!             (when configured) → feed-forward]; with `adaln`, the condition also
//!             shifts, scales and gates the self-attention and feed-forward
//!             sub-blocks of every layer (adaLN-Zero, DiT)
//!                                                     ▼
//!   LayerNorm → Linear → unfold ─► x0_hat [B, T, F]
//! ```
//! A small separate head estimates the motion length (log frames) from the pooled
//! sentence vector.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::config::{ModelConfig, ModelKind};

/// The data dimensions the model is built for (saved in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dims {
    /// Motion features per frame.
    pub features: i64,
    /// Width of the text encoder's vectors.
    pub text: i64,
}

/// The text side of a batch.
pub struct Cond<'a> {
    /// `[B, Dt]` pooled sentence vectors.
    pub pooled: &'a Tensor,
    /// `[B, L, Dt]` per-token states and `[B, L]` bool mask (true = real token).
    pub tokens: Option<(&'a Tensor, &'a Tensor)>,
    /// `[B]` float, 1 = keep the text, 0 = drop it (classifier-free guidance).
    pub keep: &'a Tensor,
}

struct Attention {
    q: nn::Linear,
    kv: nn::Linear,
    out: nn::Linear,
    heads: i64,
    dropout: f64,
}

impl Attention {
    fn new(p: nn::Path, d: i64, heads: i64, dropout: f64, init: Init) -> Self {
        Attention {
            q: init.linear(&p / "q", d, d),
            kv: init.linear(&p / "kv", d, 2 * d),
            out: init.linear(&p / "out", d, d),
            heads,
            dropout,
        }
    }

    /// `x [B, N, d]` attends to `ctx [B, S, d]`; `keep [B, S]` bool masks keys.
    fn forward_t(&self, x: &Tensor, ctx: &Tensor, keep: &Tensor, train: bool) -> Tensor {
        let (b, n, d) = x.size3().expect("attention input is [B, N, d]");
        let s = ctx.size()[1];
        let h = self.heads;
        let dh = d / h;
        let q = self.q.forward(x).view([b, n, h, dh]).transpose(1, 2);
        let kv = self
            .kv
            .forward(ctx)
            .view([b, s, 2, h, dh])
            .permute([2, 0, 3, 1, 4]);
        let (k, v) = (kv.get(0), kv.get(1));
        let mask = keep.view([b, 1, 1, s]);
        let p = if train { self.dropout } else { 0.0 };
        let y =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&mask), p, false, None, false);
        self.out
            .forward(&y.transpose(1, 2).contiguous().view([b, n, d]))
    }
}

struct Layer {
    ln_self: nn::LayerNorm,
    self_attn: Attention,
    cross: Option<(nn::LayerNorm, Attention)>,
    ln_ff: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    /// adaLN-Zero: condition → shift, scale, gate of the self-attention and the
    /// feed-forward sub-blocks (zero-initialised: every block starts as identity).
    ada: Option<nn::Linear>,
    dropout: f64,
}

/// How a new model's weights start: drawn as for training, or left at zero where
/// they are about to be overwritten by a checkpoint's (drawing them took ~25 ms of a
/// ~0.9 s `pipe generate`).
#[derive(Clone, Copy)]
enum Init {
    Fresh,
    Overwritten,
}

impl Init {
    fn linear(self, p: nn::Path, i: i64, o: i64) -> nn::Linear {
        match self {
            Init::Fresh => nn::linear(p, i, o, Default::default()),
            Init::Overwritten => zero_linear(p, i, o),
        }
    }
}

fn zero_linear(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    let z = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, i, o, z)
}

impl Layer {
    fn new(p: nn::Path, c: &ModelConfig, init: Init) -> Self {
        let d = c.d_model;
        let cross = c.text_conditioning.tokens().then(|| {
            (
                nn::layer_norm(&p / "ln_cross", vec![d], Default::default()),
                Attention::new(&p / "cross_attn", d, c.heads, c.dropout, init),
            )
        });
        Layer {
            ln_self: nn::layer_norm(&p / "ln_self", vec![d], Default::default()),
            self_attn: Attention::new(&p / "self_attn", d, c.heads, c.dropout, init),
            cross,
            ln_ff: nn::layer_norm(&p / "ln_ff", vec![d], Default::default()),
            ff1: init.linear(&p / "ff1", d, c.ff),
            ff2: init.linear(&p / "ff2", c.ff, d),
            ada: c.adaln.then(|| zero_linear(&p / "ada", d, 6 * d)),
            dropout: c.dropout,
        }
    }

    /// `cond [B, d]` is used by adaLN layers only.
    fn forward_t(
        &self,
        x: &Tensor,
        keep: &Tensor,
        memory: Option<(&Tensor, &Tensor)>,
        cond: &Tensor,
        train: bool,
    ) -> Tensor {
        // Shift, scale and gate per sub-block: identity (0, 0, 1) without adaLN.
        let m = self
            .ada
            .as_ref()
            .map(|a| a.forward(&cond.silu()).unsqueeze(1).chunk(6, 2));
        let modulate = |h: Tensor, i: usize| match &m {
            Some(m) => h * (&m[3 * i + 1] + 1.0) + &m[3 * i],
            None => h,
        };
        let gate = |h: Tensor, i: usize| match &m {
            Some(m) => h * &m[3 * i + 2],
            None => h,
        };
        let h = modulate(self.ln_self.forward(x), 0);
        let x = x + gate(
            self.self_attn
                .forward_t(&h, &h, keep, train)
                .dropout(self.dropout, train),
            0,
        );
        let x = match (&self.cross, memory) {
            (Some((ln, attn)), Some((mem, mem_keep))) => {
                let h = ln.forward(&x);
                &x + attn
                    .forward_t(&h, mem, mem_keep, train)
                    .dropout(self.dropout, train)
            }
            _ => x,
        };
        let h = self.ff2.forward(
            &self
                .ff1
                .forward(&modulate(self.ln_ff.forward(&x), 1))
                .gelu("none"),
        );
        &x + gate(h.dropout(self.dropout, train), 1)
    }
}

/// Sinusoidal features of `[N]` positions or timesteps → `[N, d]`.
pub fn sinusoid(pos: &Tensor, d: i64) -> Tensor {
    let half = d / 2;
    let freqs = (Tensor::arange(half, (Kind::Float, pos.device()))
        * (-(10000f64.ln()) / half as f64))
        .exp();
    let args = pos.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0);
    Tensor::cat(&[args.sin(), args.cos()], 1)
}

/// Offset subtracted from ln(frames) for the length head's target (ln 90 ≈ 4.5).
pub const LOG_FRAMES_OFFSET: f64 = 4.5;

pub struct MotionModel {
    pub cfg: ModelConfig,
    pub dims: Dims,
    in_proj: nn::Linear,
    time1: nn::Linear,
    time2: nn::Linear,
    text_proj: Option<nn::Linear>,
    text_norm: nn::LayerNorm,
    mem_proj: Option<nn::Linear>,
    null_token: Option<Tensor>,
    layers: Vec<Layer>,
    ln_out: nn::LayerNorm,
    out_proj: nn::Linear,
    len1: nn::Linear,
    len2: nn::Linear,
}

impl MotionModel {
    /// A new model, its weights drawn for training.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, dims: Dims) -> Self {
        Self::build(p, cfg, dims, Init::Fresh)
    }

    /// A model whose every variable is about to be overwritten (a checkpoint's
    /// weights): the same variables, not drawn.
    pub fn for_loading(p: &nn::Path, cfg: &ModelConfig, dims: Dims) -> Self {
        Self::build(p, cfg, dims, Init::Overwritten)
    }

    fn build(p: &nn::Path, cfg: &ModelConfig, dims: Dims, init: Init) -> Self {
        let d = cfg.d_model;
        let k = cfg.frames_per_token;
        let tc = cfg.text_conditioning;
        MotionModel {
            in_proj: init.linear(
                p / "in_proj",
                dims.features * k * if cfg.self_condition { 2 } else { 1 },
                d,
            ),
            time1: init.linear(p / "time1", d, d),
            time2: init.linear(p / "time2", d, d),
            text_proj: tc
                .pooled()
                .then(|| init.linear(p / "text_proj", dims.text, d)),
            text_norm: nn::layer_norm(p / "text_norm", vec![d], Default::default()),
            mem_proj: tc
                .tokens()
                .then(|| init.linear(p / "mem_proj", dims.text, d)),
            null_token: tc
                .tokens()
                .then(|| p.randn("null_token", &[1, 1, d], 0.0, 0.02)),
            layers: (0..cfg.layers)
                .map(|i| Layer::new(p / "layers" / i, cfg, init))
                .collect(),
            ln_out: nn::layer_norm(p / "ln_out", vec![d], Default::default()),
            out_proj: init.linear(p / "out_proj", d, dims.features * k),
            len1: init.linear(p / "len1", dims.text, 128),
            len2: init.linear(p / "len2", 128, 1),
            cfg: cfg.clone(),
            dims,
        }
    }

    /// `x_t [B, T, F]` (T a multiple of `frames_per_token`), `t [B]` int64 timesteps,
    /// `mask [B, T]` bool (true = real frame) → `x0_hat [B, T, F]`. Padded frames of the
    /// output are meaningless; losses mask them. A self-conditioned model reads no
    /// previous estimate here (zeros: the first step of sampling); see [`Self::forward_sc`].
    pub fn forward_t(
        &self,
        x_t: &Tensor,
        t: &Tensor,
        cond: &Cond,
        mask: &Tensor,
        train: bool,
    ) -> Tensor {
        self.forward_sc(x_t, t, cond, mask, train, None)
    }

    /// [`Self::forward_t`] with self-conditioning (Chen et al. 2023, "Analog Bits",
    /// §3.2): `prev [B, T, F]` is the model's own previous x0 estimate for this
    /// motion, read beside `x_t` (`None` = zeros). Ignored unless
    /// `model.self_condition` is set.
    pub fn forward_sc(
        &self,
        x_t: &Tensor,
        t: &Tensor,
        cond: &Cond,
        mask: &Tensor,
        train: bool,
        prev: Option<&Tensor>,
    ) -> Tensor {
        let (b, frames, f) = x_t.size3().expect("x_t is [B, T, F]");
        let k = self.cfg.frames_per_token;
        let n = frames / k;
        let d = self.cfg.d_model;
        let dev = x_t.device();
        // A self-conditioned model reads [x_t, prev] per frame: 2F values.
        let input = if self.cfg.self_condition {
            let prev = prev.map_or_else(|| x_t.zeros_like(), |p| p.shallow_clone());
            Tensor::cat(&[x_t, &prev], 2)
        } else {
            x_t.shallow_clone()
        };
        let x = self.in_proj.forward(&input.reshape([b, n, -1]));
        let mut c = self
            .time2
            .forward(&self.time1.forward(&sinusoid(t, d)).silu());
        if let Some(text) = self.text_feature(cond.pooled) {
            c += text * cond.keep.unsqueeze(1);
        }
        let pos = sinusoid(&Tensor::arange(n + 1, (Kind::Int64, dev)), d).unsqueeze(0);
        // The condition is its own token (MDM) and is also added to every motion token,
        // so no layer has to discover it through attention first.
        let x = x + c.unsqueeze(1);
        let mut h = Tensor::cat(&[c.unsqueeze(1), x], 1) + pos;
        let token_keep = mask.view([b, n, k]).any_dim(2, false);
        let keep = Tensor::cat(&[Tensor::ones([b, 1], (Kind::Bool, dev)), token_keep], 1);
        let memory = match (&self.mem_proj, &self.null_token, cond.tokens) {
            (Some(mp), Some(null), Some((tok, tok_mask))) => {
                let m = mp.forward(tok) * cond.keep.view([b, 1, 1]);
                let m = Tensor::cat(&[null.expand([b, 1, d], false), m], 1);
                let kept = tok_mask.logical_and(&cond.keep.gt(0.5).unsqueeze(1));
                let mk = Tensor::cat(&[Tensor::ones([b, 1], (Kind::Bool, dev)), kept], 1);
                Some((m, mk))
            }
            _ => None,
        };
        for layer in &self.layers {
            h = layer.forward_t(&h, &keep, memory.as_ref().map(|(m, k)| (m, k)), &c, train);
        }
        let out = self
            .out_proj
            .forward(&self.ln_out.forward(&h.narrow(1, 1, n)));
        out.reshape([b, frames, f])
    }

    /// `[B, Dt]` pooled text → `[B, d_model]`, the text's part of the condition
    /// (`None` without pooled conditioning).
    pub fn text_feature(&self, pooled: &Tensor) -> Option<Tensor> {
        self.text_proj.as_ref().map(|tp| {
            // Sentence vectors are unit-length (components ~ 1/√Dt): rescale so the
            // text weighs as much as the timestep from the first step on.
            let scaled = pooled * (self.dims.text as f64).sqrt();
            self.text_norm.forward(&tp.forward(&scaled))
        })
    }

    /// `[B, Dt]` pooled text → `[B]` predicted ln(frames) − [`LOG_FRAMES_OFFSET`].
    pub fn length_t(&self, pooled: &Tensor) -> Tensor {
        self.len2
            .forward(&self.len1.forward(pooled).silu())
            .squeeze_dim(1)
    }

    /// Frames predicted for each text, clamped to `[k, max_frames]`.
    pub fn predict_frames(&self, pooled: &Tensor) -> Vec<i64> {
        let k = self.cfg.frames_per_token;
        let v = tch::no_grad(|| (self.length_t(pooled) + LOG_FRAMES_OFFSET).exp());
        Vec::<f64>::try_from(v.to_kind(Kind::Double).to_device(tch::Device::Cpu))
            .unwrap_or_default()
            .into_iter()
            .map(|f| ((f / k as f64).round() as i64 * k).clamp(k, self.cfg.max_frames))
            .collect()
    }

    pub fn is_regression(&self) -> bool {
        self.cfg.kind == ModelKind::Regression
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TextConditioning;
    use tch::Device;

    fn build(tc: TextConditioning) -> (nn::VarStore, MotionModel) {
        build_with(tc, false)
    }

    fn build_with(tc: TextConditioning, adaln: bool) -> (nn::VarStore, MotionModel) {
        build_cfg(ModelConfig {
            text_conditioning: tc,
            adaln,
            ..small()
        })
    }

    /// 2 layers, d = 32.
    fn small() -> ModelConfig {
        ModelConfig {
            layers: 2,
            d_model: 32,
            heads: 4,
            ff: 64,
            ..Default::default()
        }
    }

    /// Seeded, 5 features, 8-d text.
    fn build_cfg(cfg: ModelConfig) -> (nn::VarStore, MotionModel) {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = MotionModel::new(
            &vs.root(),
            &cfg,
            Dims {
                features: 5,
                text: 8,
            },
        );
        (vs, m)
    }

    #[test]
    fn shapes_and_padding_do_not_leak() {
        for (tc, adaln) in [
            (TextConditioning::Pooled, false),
            (TextConditioning::Tokens, false),
            (TextConditioning::Both, false),
            (TextConditioning::Pooled, true),
            (TextConditioning::Both, true),
        ] {
            let (_vs, m) = build_with(tc, adaln);
            let x = Tensor::randn([2, 8, 5], (Kind::Float, Device::Cpu));
            let t = Tensor::from_slice(&[3i64, 500]);
            let pooled = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
            let tok = Tensor::randn([2, 3, 8], (Kind::Float, Device::Cpu));
            let tok_mask = Tensor::from_slice(&[true, true, true, true, false, false]).view([2, 3]);
            let keep = Tensor::from_slice(&[1f32, 0.0]);
            let cond = Cond {
                pooled: &pooled,
                tokens: Some((&tok, &tok_mask)),
                keep: &keep,
            };
            let mut mask = vec![true; 16];
            for v in &mut mask[12..] {
                *v = false; // sample 1 has 4 real frames
            }
            let mask = Tensor::from_slice(&mask).view([2, 8]);
            let y = m.forward_t(&x, &t, &cond, &mask, false);
            assert_eq!(y.size(), vec![2, 8, 5]);
            // Changing padded frames of sample 1 changes none of its real outputs.
            let x2 = x.copy();
            let _ = x2.get(1).narrow(0, 4, 4).fill_(1000.0);
            let y2 = m.forward_t(&x2, &t, &cond, &mask, false);
            let diff = (y.get(1).narrow(0, 0, 4) - y2.get(1).narrow(0, 0, 4))
                .abs()
                .max();
            assert!(
                diff.double_value(&[]) < 1e-5,
                "{tc:?}: padding leaked: {diff}"
            );
        }
    }

    /// adaLN-Zero's gates start at zero, so a fresh model's blocks are identities: a
    /// token's output depends on its own frames only. Once a gate opens, frames mix.
    #[test]
    fn adaln_blocks_start_as_identity() {
        let (vs, m) = build_with(TextConditioning::Pooled, true);
        let x = Tensor::randn([1, 8, 5], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[100i64]);
        let pooled = Tensor::randn([1, 8], (Kind::Float, Device::Cpu));
        let keep = Tensor::from_slice(&[1f32]);
        let cond = Cond {
            pooled: &pooled,
            tokens: None,
            keep: &keep,
        };
        let mask = Tensor::ones([1, 8], (Kind::Bool, Device::Cpu));
        let x2 = x.copy();
        let _ = x2.get(0).narrow(0, 0, 2).fill_(5.0); // the first token's frames
        let last = |x: &Tensor| {
            m.forward_t(x, &t, &cond, &mask, false)
                .get(0)
                .narrow(0, 6, 2)
        };
        let same = (last(&x) - last(&x2)).abs().max().double_value(&[]);
        assert!(same < 1e-6, "a fresh adaLN model mixed frames: {same}");
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.contains("ada") {
                    let _ = v.fill_(0.05);
                }
            }
        });
        let mixed = (last(&x) - last(&x2)).abs().max().double_value(&[]);
        assert!(mixed > 1e-4, "open gates should mix frames: {mixed}");
    }

    /// A self-conditioned model reads its previous estimate (none = zeros); any
    /// other model ignores it.
    #[test]
    fn only_a_self_conditioned_model_reads_its_previous_estimate() {
        for self_condition in [false, true] {
            let (_vs, m) = build_cfg(ModelConfig {
                self_condition,
                ..small()
            });
            let x = Tensor::randn([2, 4, 5], (Kind::Float, Device::Cpu));
            let t = Tensor::from_slice(&[3i64, 500]);
            let pooled = Tensor::randn([2, 8], (Kind::Float, Device::Cpu));
            let keep = Tensor::from_slice(&[1f32, 1.0]);
            let cond = Cond {
                pooled: &pooled,
                tokens: None,
                keep: &keep,
            };
            let mask = Tensor::ones([2, 4], (Kind::Bool, Device::Cpu));
            let run = |prev: Option<&Tensor>| m.forward_sc(&x, &t, &cond, &mask, false, prev);
            let none = run(None);
            assert!(none.equal(&run(Some(&x.zeros_like()))));
            assert!(none.equal(&m.forward_t(&x, &t, &cond, &mask, false)));
            let prev = Tensor::randn([2, 4, 5], (Kind::Float, Device::Cpu));
            let read = !run(Some(&prev)).allclose(&none, 1e-5, 1e-5, false);
            assert_eq!(read, self_condition);
        }
    }

    #[test]
    fn dropped_text_is_ignored() {
        let (_vs, m) = build(TextConditioning::Both);
        let x = Tensor::randn([1, 4, 5], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[10i64]);
        let mask = Tensor::ones([1, 4], (Kind::Bool, Device::Cpu));
        let keep = Tensor::from_slice(&[0f32]);
        let tok_mask = Tensor::ones([1, 2], (Kind::Bool, Device::Cpu));
        let run = |p: &Tensor, tok: &Tensor| {
            let cond = Cond {
                pooled: p,
                tokens: Some((tok, &tok_mask)),
                keep: &keep,
            };
            m.forward_t(&x, &t, &cond, &mask, false)
        };
        let a = run(
            &Tensor::zeros([1, 8], (Kind::Float, Device::Cpu)),
            &Tensor::zeros([1, 2, 8], (Kind::Float, Device::Cpu)),
        );
        let b = run(
            &Tensor::ones([1, 8], (Kind::Float, Device::Cpu)),
            &Tensor::ones([1, 2, 8], (Kind::Float, Device::Cpu)),
        );
        assert!((a - b).abs().max().double_value(&[]) < 1e-6);
    }
}

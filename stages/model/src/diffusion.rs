//! The cosine noise schedule (Nichol & Dhariwal 2021) and the forward process
//! q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I).

use tch::{Device, Tensor};

pub struct Schedule {
    /// ᾱ_t for t = 0 … T−1 (t = 0 is the least noisy step).
    pub alpha_bar: Vec<f64>,
    sqrt_ab: Tensor,
    sqrt_1m_ab: Tensor,
}

impl Schedule {
    pub fn cosine(steps: i64, device: Device) -> Self {
        let s = 0.008;
        let f = |t: f64| {
            ((t / steps as f64 + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        let mut alpha_bar = Vec::with_capacity(steps as usize);
        let mut ab = 1.0;
        for i in 0..steps {
            let beta = (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(0.999);
            ab *= 1.0 - beta;
            alpha_bar.push(ab);
        }
        let to = |v: Vec<f64>| {
            Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).to_device(device)
        };
        Schedule {
            sqrt_ab: to(alpha_bar.iter().map(|a| a.sqrt()).collect()),
            sqrt_1m_ab: to(alpha_bar.iter().map(|a| (1.0 - a).sqrt()).collect()),
            alpha_bar,
        }
    }

    pub fn steps(&self) -> i64 {
        self.alpha_bar.len() as i64
    }

    /// Noise `x0 [B, T, F]` to timesteps `t [B]` with `noise` of the same shape.
    pub fn q_sample(&self, x0: &Tensor, t: &Tensor, noise: &Tensor) -> Tensor {
        let a = self.sqrt_ab.index_select(0, t).view([-1, 1, 1]);
        let b = self.sqrt_1m_ab.index_select(0, t).view([-1, 1, 1]);
        x0 * a.to_kind(x0.kind()) + noise * b.to_kind(x0.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn cosine_schedule_goes_from_clean_to_noise() {
        let s = Schedule::cosine(1000, Device::Cpu);
        assert!(s.alpha_bar[0] > 0.9999);
        assert!(s.alpha_bar[999] < 1e-4);
        assert!(s.alpha_bar.windows(2).all(|w| w[1] < w[0]));
        let x0 = Tensor::ones([2, 3, 4], (Kind::Float, Device::Cpu));
        let n = Tensor::zeros([2, 3, 4], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[0i64, 999]);
        let x = s.q_sample(&x0, &t, &n);
        assert!((x.get(0).mean(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-3);
        assert!(x.get(1).mean(Kind::Float).double_value(&[]) < 0.01);
    }
}

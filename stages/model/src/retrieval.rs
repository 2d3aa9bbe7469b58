//! Retrieval measured by motion: which training sentences are "near" a prompt,
//! judged by the motions they describe rather than by how they are worded.
//!
//! A ridge regression maps a sentence vector onto a summary of the motion it
//! describes ([`summary`]: per feature mean, spread, minimum and maximum, and the
//! length), fitted on the training bank's sentence–motion pairs ([`fit`]). Two
//! sentences are then near when they predict similar motions: a word that changes
//! the wording but not the motion ("a man" / "someone", "in this clip") moves the
//! prediction little, because it predicted nothing in training. It needs no labels,
//! only the pairs the model was trained on, so it applies to KIT-ML as it does to
//! the synthetic data.

use tch::{Device, Kind, Tensor};

use crate::checkpoint::MotionBank;

/// Ridge strength on unit-length sentence vectors (measured on the demo model,
/// README: 0.3 and 1 alike, 3 worse).
pub const RIDGE_LAMBDA: f64 = 1.0;

/// Per feature of `m` (`frames × width`, normalised features): mean, standard
/// deviation, minimum and maximum over the frames, then ln(frames): `4 · width + 1`
/// numbers. An empty motion gives zeros.
pub fn summary(m: &[f32], width: usize) -> Vec<f64> {
    let n = m.len() / width.max(1);
    let mut out = vec![0.0; 4 * width + 1];
    if n == 0 {
        return out;
    }
    for j in 0..width {
        let col = m.iter().skip(j).step_by(width).map(|&x| x as f64);
        let (mut s, mut s2, mut lo, mut hi) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for x in col {
            s += x;
            s2 += x * x;
            lo = lo.min(x);
            hi = hi.max(x);
        }
        let mean = s / n as f64;
        out[j] = mean;
        out[width + j] = (s2 / n as f64 - mean * mean).max(0.0).sqrt();
        out[2 * width + j] = lo;
        out[3 * width + j] = hi;
    }
    out[4 * width] = (n as f64).ln();
    out
}

/// The projection `[Dt, 4·F + 1]` of sentence vectors onto motion summaries: ridge
/// regression (strength `lambda`) from the bank's sentence vectors `bank` `[S, Dt]`
/// onto the summaries of the motions each sentence describes (`motions.motions_of`,
/// one row per pair), each summary column standardised over the bank's motions.
/// Fitted on the CPU (single precision: with λ ≥ 0.01 on unit vectors the system is
/// well conditioned); returned on `bank`'s device.
pub fn fit(bank: &Tensor, motions: &MotionBank, lambda: f64) -> anyhow::Result<Tensor> {
    let (s, dt) = (bank.size()[0], bank.size()[1]);
    anyhow::ensure!(
        s as usize == motions.motions_of.len(),
        "the motion bank pairs {} sentences, the text bank has {s}",
        motions.motions_of.len()
    );
    let width = motions.width();
    let r = 4 * width + 1;
    let mut z: Vec<f64> = (0..motions.len())
        .flat_map(|m| summary(motions.motion(m), width))
        .collect();
    // Standardise every column over the motions (a constant column becomes 0).
    let count = motions.len().max(1) as f64;
    for j in 0..r {
        let mean = z.iter().skip(j).step_by(r).sum::<f64>() / count;
        let var = z
            .iter()
            .skip(j)
            .step_by(r)
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / count;
        let sd = var.sqrt() + 1e-6;
        for x in z.iter_mut().skip(j).step_by(r) {
            *x = (*x - mean) / sd;
        }
    }
    let (rows, targets): (Vec<i64>, Vec<i64>) = motions
        .motions_of
        .iter()
        .enumerate()
        .flat_map(|(i, ms)| ms.iter().map(move |&m| (i as i64, m as i64)))
        .unzip();
    let x = bank
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .index_select(0, &Tensor::from_slice(&rows));
    let z: Vec<f32> = z.into_iter().map(|v| v as f32).collect();
    let y = Tensor::from_slice(&z)
        .view([motions.len() as i64, r as i64])
        .index_select(0, &Tensor::from_slice(&targets));
    let xt = x.tr();
    let a = xt.matmul(&x) + Tensor::eye(dt, (Kind::Float, Device::Cpu)) * lambda;
    let w = Tensor::f_linalg_solve(&a, &xt.matmul(&y), true)?;
    Ok(w.to_device(bank.device()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_mean_spread_range_and_length() {
        // Two features over four frames.
        let m = [1.0, 10.0, 3.0, 10.0, 1.0, 10.0, 3.0, 10.0];
        let s = summary(&m, 2);
        assert_eq!(s.len(), 9);
        let expect = [2.0, 10.0, 1.0, 0.0, 1.0, 10.0, 3.0, 10.0, 4f64.ln()];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{s:?}");
        }
        assert_eq!(summary(&[], 2), vec![0.0; 9]);
    }

    /// Sentences of two motions (a still one and a moving one), worded in two
    /// styles. The wording direction is the larger part of every vector, so raw
    /// similarity finds the sentences of the prompt's style; the fitted
    /// projection finds those of its motion.
    #[test]
    fn neighbours_by_motion_ignore_wording_that_predicts_no_motion() {
        let width = 2;
        let still = vec![0.0f32; 10 * width];
        let moving: Vec<f32> = (0..10).flat_map(|i| [i as f32, 1.0]).collect();
        let motions = MotionBank::new(
            [still, moving].concat(),
            width,
            vec![0, 10, 20],
            // Sentences 0, 1: still; 2, 3: moving.
            vec![vec![0], vec![0], vec![1], vec![1]],
        );
        // Dims: 0 = style A, 1 = style B, 2 = "still", 3 = "moving".
        let v = |style: usize, motion: usize| {
            let mut x = [0f32; 4];
            x[style] = 0.9;
            x[2 + motion] = 0.3;
            x
        };
        let bank = Tensor::from_slice(&[v(0, 0), v(1, 0), v(0, 1), v(1, 1)].concat()).view([4, 4]);
        let w = fit(&bank, &motions, 0.01).expect("fit");
        assert_eq!(w.size(), [4, 9]);
        // A prompt in style A asking for the moving motion.
        let prompt = Tensor::from_slice(&v(0, 1)).view([1, 4]);
        let raw = crate::generate::nearest((&prompt, &bank), 2).1;
        let by_motion = crate::generate::nearest((&prompt.matmul(&w), &bank.matmul(&w)), 2).1;
        let idx = |t: Tensor| {
            let mut v = Vec::<i64>::try_from(t.reshape([-1])).expect("indices");
            v.sort();
            v
        };
        assert_eq!(idx(raw), [0, 2], "raw similarity follows the wording");
        assert_eq!(idx(by_motion), [2, 3], "the projection follows the motion");
    }

    #[test]
    fn a_bank_that_does_not_match_its_motions_is_an_error() {
        let motions = MotionBank::new(vec![0.0; 4], 2, vec![0, 2], vec![vec![0]]);
        let bank = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let err = fit(&bank, &motions, 1.0).expect_err("mismatch").to_string();
        assert!(
            err.contains("pairs 1 sentences, the text bank has 3"),
            "{err}"
        );
    }
}

//! The per-frame motion features the model learns, and their exact inverse.
//!
//! Invariant to absolute position and heading (the DESIGN's "Motion data"): per frame
//!
//! | index | feature | unit |
//! |---|---|---|
//! | 0 | root height (`RootPosition` z) | m |
//! | 1 | forward root velocity in the body's heading frame | m/s |
//! | 2 | rightward root velocity in the body's heading frame | m/s |
//! | 3 | heading angular velocity (`RootRotation` z, unwrapped) | rad/s |
//! | 4, 5 | root rotation x, y (pitch/roll) | rad |
//! | 6 … 49 | the 44 joint angles, canonical KIT-ML order | rad |
//!
//! Velocities of frame t are those from t to t + 1 (the last frame has none: zero).
//! KIT-ML conventions: z up, mm, the subject faces its local +y axis, so heading h
//! faces the world direction (−sin h, cos h) and its right is (cos h, sin h).
//! [`from_features`] integrates them back from a start position and heading.

use std::f64::consts::{PI, TAU};

pub const N_JOINTS: usize = 44;
pub const N_ROOT: usize = 6;
pub const N_FEATURES: usize = N_ROOT + N_JOINTS;
/// The root height (index 0 above).
pub const ROOT_HEIGHT: usize = 0;
/// The forward and rightward root velocity (indices 1 and 2 above).
pub const ROOT_VELOCITY: std::ops::Range<usize> = 1..3;
/// Bump when the definition above changes (it is part of the stage key).
pub const FEATURES_VERSION: u32 = 1;

pub fn feature_names(joint_names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "root_height",
        "root_vel_forward",
        "root_vel_right",
        "heading_vel",
        "root_rot_x",
        "root_rot_y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(
        joint_names
            .iter()
            .map(|j| j.trim_end_matches("_joint").to_string()),
    );
    v
}

/// Where a motion starts: what the features leave out.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Start {
    /// mm
    pub x: f64,
    /// mm
    pub y: f64,
    /// rad
    pub heading: f64,
}

fn wrap(a: f64) -> f64 {
    let mut a = (a + PI).rem_euclid(TAU) - PI;
    if a <= -PI {
        a += TAU;
    }
    a
}

/// A motion in MMM terms: root position (mm), root rotation (rad), joints (rad, T × 44).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mmm {
    pub root_position: Vec<[f64; 3]>,
    pub root_rotation: Vec<[f64; 3]>,
    pub joints: Vec<f64>,
}

impl Mmm {
    pub fn frames(&self) -> usize {
        self.root_position.len()
    }
}

/// Features (T × 50, row-major) and the start they need for the inverse.
pub fn to_features(m: &Mmm, fps: f64) -> (Vec<f64>, Start) {
    let t = m.frames();
    let mut out = vec![0.0; t * N_FEATURES];
    for i in 0..t {
        let f = &mut out[i * N_FEATURES..(i + 1) * N_FEATURES];
        let p = m.root_position[i];
        let r = m.root_rotation[i];
        f[0] = p[2] / 1000.0;
        if i + 1 < t {
            let q = m.root_position[i + 1];
            let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
            let h = r[2];
            f[1] = (dx * -h.sin() + dy * h.cos()) / 1000.0 * fps;
            f[2] = (dx * h.cos() + dy * h.sin()) / 1000.0 * fps;
            f[3] = wrap(m.root_rotation[i + 1][2] - h) * fps;
        }
        f[4] = r[0];
        f[5] = r[1];
        f[N_ROOT..].copy_from_slice(&m.joints[i * N_JOINTS..(i + 1) * N_JOINTS]);
    }
    let start = match (m.root_position.first(), m.root_rotation.first()) {
        (Some(p), Some(r)) => Start {
            x: p[0],
            y: p[1],
            heading: r[2],
        },
        _ => Start {
            x: 0.0,
            y: 0.0,
            heading: 0.0,
        },
    };
    (out, start)
}

/// Integrate features back into an MMM motion from `start`.
pub fn from_features(features: &[f64], fps: f64, start: Start) -> Mmm {
    let t = features.len() / N_FEATURES;
    let mut m = Mmm {
        root_position: Vec::with_capacity(t),
        root_rotation: Vec::with_capacity(t),
        joints: Vec::with_capacity(t * N_JOINTS),
    };
    let (mut x, mut y, mut h) = (start.x, start.y, start.heading);
    for i in 0..t {
        let f = &features[i * N_FEATURES..(i + 1) * N_FEATURES];
        m.root_position.push([x, y, f[0] * 1000.0]);
        m.root_rotation.push([f[4], f[5], h]);
        m.joints.extend_from_slice(&f[N_ROOT..]);
        let (fw, rt) = (f[1] * 1000.0 / fps, f[2] * 1000.0 / fps);
        x += fw * -h.sin() + rt * h.cos();
        y += fw * h.cos() + rt * h.sin();
        h += f[3] / fps;
    }
    m
}

/// Per-feature mean and standard deviation over the frames a mask keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureStats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub frames: u64,
}

/// Accumulates sums in f64 over masked frames; padded frames never contribute.
#[derive(Debug, Clone)]
pub struct StatsAccumulator {
    sum: Vec<f64>,
    sumsq: Vec<f64>,
    shift: Option<Vec<f64>>,
    n: u64,
}

impl Default for StatsAccumulator {
    fn default() -> Self {
        StatsAccumulator {
            sum: vec![0.0; N_FEATURES],
            sumsq: vec![0.0; N_FEATURES],
            shift: None,
            n: 0,
        }
    }
}

impl StatsAccumulator {
    /// Add the frames of a `[frames, N_FEATURES]` block for which `mask` is true.
    pub fn add(&mut self, features: &[f64], mask: &[bool]) {
        for (row, keep) in features.chunks_exact(N_FEATURES).zip(mask) {
            if !*keep {
                continue;
            }
            // Shifted sums (by the first frame seen) keep the variance numerically sound.
            let shift = self.shift.get_or_insert_with(|| row.to_vec());
            for k in 0..N_FEATURES {
                let d = row[k] - shift[k];
                self.sum[k] += d;
                self.sumsq[k] += d * d;
            }
            self.n += 1;
        }
    }

    /// Mean and std; a std below `floor` (constant features, e.g. a missing joint) is
    /// raised to `floor` so normalising never divides by ~0.
    pub fn finish(&self, floor: f64) -> FeatureStats {
        let n = self.n.max(1) as f64;
        let zero = vec![0.0; N_FEATURES];
        let shift = self.shift.as_ref().unwrap_or(&zero);
        let mean: Vec<f64> = (0..N_FEATURES)
            .map(|k| shift[k] + self.sum[k] / n)
            .collect();
        let std: Vec<f64> = (0..N_FEATURES)
            .map(|k| {
                let m = self.sum[k] / n;
                ((self.sumsq[k] / n - m * m).max(0.0)).sqrt().max(floor)
            })
            .collect();
        FeatureStats {
            mean,
            std,
            frames: self.n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_in_range() {
        for a in [-7.0, -PI, -1.0, 0.0, 1.0, PI, 7.0, 100.0] {
            let w = wrap(a);
            assert!(w > -PI - 1e-12 && w <= PI + 1e-12, "{a} -> {w}");
            assert!(((a - w) / TAU - ((a - w) / TAU).round()).abs() < 1e-9);
        }
    }

    #[test]
    fn padding_changes_nothing() {
        let real: Vec<f64> = (0..3 * N_FEATURES)
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let mut a = StatsAccumulator::default();
        a.add(&real, &[true; 3]);
        // Same frames in a padded batch: garbage in the padded rows, masked out.
        let mut padded = real.clone();
        padded.extend((0..2 * N_FEATURES).map(|i| 1e6 + i as f64));
        let mut b = StatsAccumulator::default();
        b.add(&padded, &[true, true, true, false, false]);
        assert_eq!(a.finish(1e-3), b.finish(1e-3));
        let s = a.finish(1e-3);
        assert_eq!(s.frames, 3);
        let m0 = (real[0] + real[N_FEATURES] + real[2 * N_FEATURES]) / 3.0;
        assert!((s.mean[0] - m0).abs() < 1e-12);
    }

    #[test]
    fn constant_features_get_the_floor() {
        let rows = vec![1.0; 4 * N_FEATURES];
        let mut a = StatsAccumulator::default();
        a.add(&rows, &[true; 4]);
        let s = a.finish(0.01);
        assert!(s.std.iter().all(|&x| x == 0.01));
        assert!(s.mean.iter().all(|&x| (x - 1.0).abs() < 1e-12));
    }
}

//! From a parsed MMM motion to the canonical form stored in `motions.parquet`:
//! joints in the canonical KIT-ML order, frames resampled to the target rate.

use crate::joints::{self, KIT_JOINTS};
use crate::mmm::Motion;

/// A motion in canonical form (f64 until written).
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    pub fps: f64,
    pub frames: usize,
    pub root_position: Vec<[f64; 3]>,
    pub root_rotation: Vec<[f64; 3]>,
    /// frames × 44, canonical joint order.
    pub joint_position: Vec<f64>,
    pub joint_velocity: Option<Vec<f64>>,
    pub joint_acceleration: Option<Vec<f64>>,
    pub missing_joints: Vec<String>,
}

/// Reorder joint columns into the canonical order (missing ones 0.0).
fn reorder(data: &[f64], width: usize, map: &[Option<usize>]) -> Vec<f64> {
    let frames = data.len() / width.max(1);
    let mut out = vec![0.0; frames * map.len()];
    for f in 0..frames {
        for (c, src) in map.iter().enumerate() {
            if let Some(s) = src {
                out[f * map.len() + c] = data[f * width + s];
            }
        }
    }
    out
}

/// Make an angle sequence continuous (no jumps of 2π), so interpolation between
/// frames on either side of ±π is right.
fn unwrap(vals: &mut [f64]) {
    use std::f64::consts::{PI, TAU};
    for i in 1..vals.len() {
        let mut d = vals[i] - vals[i - 1];
        while d > PI {
            vals[i] -= TAU;
            d -= TAU;
        }
        while d < -PI {
            vals[i] += TAU;
            d += TAU;
        }
    }
}

/// Linear resampling of `width` channels at times `t0 + k / fps`.
pub fn resample(times: &[f64], data: &[f64], width: usize, fps: f64) -> Vec<f64> {
    let n = times.len();
    if n == 0 || width == 0 {
        return Vec::new();
    }
    let t0 = times[0];
    let dur = times[n - 1] - t0;
    let count = (dur * fps + 1e-9).floor() as usize + 1;
    let mut out = Vec::with_capacity(count * width);
    let mut i = 0;
    for k in 0..count {
        let t = t0 + k as f64 / fps;
        while i + 1 < n - 1 && times[i + 1] <= t {
            i += 1;
        }
        let (a, b) = if n == 1 { (0, 0) } else { (i, i + 1) };
        let span = times[b] - times[a];
        let w = if span > 0.0 {
            ((t - times[a]) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        for c in 0..width {
            let x0 = data[a * width + c];
            let x1 = data[b * width + c];
            out.push(x0 + (x1 - x0) * w);
        }
    }
    out
}

/// The file's native rate from its timesteps (median frame interval).
pub fn native_fps(times: &[f64]) -> Option<f64> {
    if times.len() < 2 {
        return None;
    }
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_by(f64::total_cmp);
    let med = d[d.len() / 2];
    (med > 0.0).then(|| 1.0 / med)
}

/// The motion in canonical form at `fps`. Takes the motion: a file already in the
/// canonical joint order at the target rate (all of KIT-ML at 100 Hz) moves into it
/// without a copy.
pub fn canonicalize(m: Motion, fps: f64) -> Result<Canonical, String> {
    let map = joints::mapping(&m.joint_names)?;
    let missing: Vec<String> = KIT_JOINTS
        .iter()
        .zip(&map)
        .filter(|(_, s)| s.is_none())
        .map(|(j, _)| j.to_string())
        .collect();
    let w = m.joint_names.len();
    let identity = w == map.len() && map.iter().enumerate().all(|(c, s)| *s == Some(c));
    let order = |v: Vec<f64>| if identity { v } else { reorder(&v, w, &map) };
    let jp = order(m.joint_position);
    let jv = m.joint_velocity.map(order);
    let ja = m.joint_acceleration.map(order);
    let same_rate = native_fps(&m.timesteps).is_none_or(|n| (n - fps).abs() < 1e-6 * fps);
    let j = KIT_JOINTS.len();
    if same_rate {
        return Ok(Canonical {
            fps,
            frames: m.timesteps.len(),
            root_position: m.root_position,
            root_rotation: m.root_rotation,
            joint_position: jp,
            joint_velocity: jv,
            joint_acceleration: ja,
            missing_joints: missing,
        });
    }
    let rp = m.root_position.as_flattened();
    let mut rr: Vec<f64> = Vec::with_capacity(m.timesteps.len() * 3);
    let mut cols: [Vec<f64>; 3] = Default::default();
    for r in &m.root_rotation {
        for (c, v) in r.iter().enumerate() {
            cols[c].push(*v);
        }
    }
    for c in cols.iter_mut() {
        unwrap(c);
    }
    for ((a, b), c) in cols[0].iter().zip(&cols[1]).zip(&cols[2]) {
        rr.extend([*a, *b, *c]);
    }
    let t = &m.timesteps;
    let rp2 = resample(t, rp, 3, fps);
    let rr2 = resample(t, &rr, 3, fps);
    let triples = |v: Vec<f64>| {
        v.chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect::<Vec<_>>()
    };
    let jp2 = resample(t, &jp, j, fps);
    let frames = jp2.len() / j;
    Ok(Canonical {
        fps,
        frames,
        root_position: triples(rp2),
        root_rotation: triples(rr2),
        joint_position: jp2,
        joint_velocity: jv.map(|v| resample(t, &v, j, fps)),
        joint_acceleration: ja.map(|v| resample(t, &v, j, fps)),
        missing_joints: missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_hits_exact_times_for_non_integer_ratios() {
        // 100 Hz ramp x = t, resampled to 30 Hz: x(k/30) = k/30 exactly (linear data).
        let times: Vec<f64> = (0..101).map(|i| i as f64 / 100.0).collect();
        let data = times.clone();
        let out = resample(&times, &data, 1, 30.0);
        assert_eq!(out.len(), 31);
        for (k, v) in out.iter().enumerate() {
            assert!((v - k as f64 / 30.0).abs() < 1e-12, "{k}: {v}");
        }
        let out = resample(&times, &data, 1, 12.5);
        assert_eq!(out.len(), 13);
        assert!((out[12] - 0.96).abs() < 1e-12);
    }

    #[test]
    fn headings_are_interpolated_across_pi() {
        let times = vec![0.0, 0.01];
        let mut v = vec![3.1, -3.1];
        unwrap(&mut v);
        assert!((v[1] - (-3.1 + std::f64::consts::TAU)).abs() < 1e-12);
        let out = resample(&times, &v, 1, 200.0);
        assert!((out[1] - std::f64::consts::PI).abs() < 0.05, "{out:?}");
    }
}

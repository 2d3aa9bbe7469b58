//! Measurable criteria for the actions of the synthetic demo data: from a motion's
//! per-frame features (raw units, `motion.stats` layout) to a few measurements and
//! the action they indicate. Checked on real synthetic motions (≥ 95% labelled
//! right, a unit test) before they judge generated ones.
//!
//! | action | criterion (first rule that fires, in this order) |
//! |---|---|
//! | turn_left / turn_right | heading change > 0.9 rad (left: positive) while the body-frame forward speed stays below 0.5 m/s |
//! | run | peak forward speed > 1.9 m/s, or > 1.2 m/s with elbows bent (mean flexion > 0.9 rad) |
//! | walk_forward | peak forward speed > 0.45 m/s |
//! | walk_backward | peak backward speed > 0.25 m/s |
//! | jump | root rises > 0.09 m above its standing height |
//! | sit_down | the root ends > 0.2 m below where it started |
//! | squat | the root dips > 0.15 m below its start and comes back |
//! | kick | one hip flexes > 0.7 rad more than the other |
//! | raise_arms | both shoulders flex above 1.5 rad at once |
//! | wave_left / wave_right | one upper arm abducted > 0.8 rad and rotating back and forth (std > 0.12 rad): the more active side |
//! | idle | none of the above |
//!
//! Speeds are smoothed over 0.5 s; heights are relative to the motion's first frames,
//! so the subject's height does not matter.

use pipe_motion::features::{N_FEATURES, N_ROOT};
use serde::Serialize;

pub const ACTIONS: [&str; 13] = [
    "walk_forward",
    "walk_backward",
    "run",
    "turn_left",
    "turn_right",
    "jump",
    "squat",
    "wave_left",
    "wave_right",
    "raise_arms",
    "kick",
    "idle",
    "sit_down",
];

/// Actions done on the spot (their drift should be zero).
pub const IN_PLACE: [&str; 8] = [
    "jump",
    "squat",
    "wave_left",
    "wave_right",
    "raise_arms",
    "kick",
    "idle",
    "sit_down",
];

/// Pairs a model must not confuse.
pub const OPPOSITES: [(&str, &str); 3] = [
    ("walk_forward", "walk_backward"),
    ("turn_left", "turn_right"),
    ("wave_left", "wave_right"),
];

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measures {
    pub seconds: f64,
    /// Body-frame forward displacement (m).
    pub forward_m: f64,
    pub peak_forward_speed: f64,
    pub peak_backward_speed: f64,
    /// Total heading change (rad, positive = to the left).
    pub heading_change: f64,
    pub rise_m: f64,
    pub dip_m: f64,
    /// End height relative to start (m).
    pub end_drop_m: f64,
    pub hip_asymmetry: f64,
    pub both_shoulders_up: f64,
    pub elbow_flexion: f64,
    pub left_arm_wave: f64,
    pub right_arm_wave: f64,
    /// Planar root travel per second (m/s): drift, for actions done in place.
    pub drift_m_per_s: f64,
    /// Mean absolute joint angular velocity (rad/s): how much the body moves.
    pub energy: f64,
}

fn joint(name: &str) -> usize {
    N_ROOT
        + pipe_kit::joints::index(&format!("{name}_joint"))
            .expect("criteria use KIT-ML joint names")
}

fn std(v: &[f64]) -> f64 {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
}

fn smooth(v: &[f64], w: usize) -> Vec<f64> {
    let w = w.max(1);
    (0..v.len())
        .map(|i| {
            let lo = i.saturating_sub(w / 2);
            let hi = (i + w / 2 + 1).min(v.len());
            v[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect()
}

/// Measurements of a `frames × 50` raw feature block at `fps`.
pub fn measure(features: &[f64], fps: f64) -> Measures {
    let t = features.len() / N_FEATURES;
    let col = |k: usize| -> Vec<f64> { (0..t).map(|i| features[i * N_FEATURES + k]).collect() };
    // The last frame's velocities are zero by definition: leave it out.
    let body = t.saturating_sub(1).max(1);
    let fwd = col(1);
    let fwd = &fwd[..body.min(fwd.len())];
    let sm = smooth(fwd, (fps * 0.5).round() as usize);
    let z = col(0);
    let start =
        z[..(t / 10).clamp(1, t.max(1))].iter().sum::<f64>() / (t / 10).clamp(1, t.max(1)) as f64;
    let end = z[t - (t / 10).clamp(1, t)..].iter().sum::<f64>() / (t / 10).clamp(1, t) as f64;
    let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let zmin = z.iter().cloned().fold(f64::INFINITY, f64::min);
    let (lh, rh) = (col(joint("LHx")), col(joint("RHx")));
    let (ls, rs) = (col(joint("LSx")), col(joint("RSx")));
    let (le, re) = (col(joint("LEx")), col(joint("REx")));
    let (lsy, rsy) = (col(joint("LSy")), col(joint("RSy")));
    let (lsz, rsz) = (col(joint("LSz")), col(joint("RSz")));
    let max_of = |v: Vec<f64>| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
    let raised =
        |y: &[f64], sign: f64| y.iter().map(|v| v * sign).fold(f64::NEG_INFINITY, f64::max);
    let wave = |y: &[f64], zz: &[f64], sign: f64| if raised(y, sign) > 0.8 { std(zz) } else { 0.0 };
    let seconds = t as f64 / fps;
    let forward_m = fwd.iter().sum::<f64>() / fps;
    // Planar travel in the world (heading integrated), for drift.
    let (mut x, mut y, mut h) = (0.0, 0.0, 0.0);
    let heading_vel = col(3);
    let right = col(2);
    for i in 0..body.min(t) {
        x += (fwd[i.min(fwd.len() - 1)] * -f64::sin(h) + right[i] * h.cos()) / fps;
        y += (fwd[i.min(fwd.len() - 1)] * h.cos() + right[i] * h.sin()) / fps;
        h += heading_vel[i] / fps;
    }
    let energy = if t > 1 {
        let mut s = 0.0;
        for i in 0..t - 1 {
            for k in N_ROOT..N_FEATURES {
                s += (features[(i + 1) * N_FEATURES + k] - features[i * N_FEATURES + k]).abs();
            }
        }
        s * fps / ((t - 1) * (N_FEATURES - N_ROOT)) as f64
    } else {
        0.0
    };
    Measures {
        seconds,
        forward_m,
        peak_forward_speed: sm.iter().cloned().fold(0.0, f64::max),
        peak_backward_speed: -sm.iter().cloned().fold(0.0, f64::min),
        heading_change: heading_vel[..body.min(t)].iter().sum::<f64>() / fps,
        rise_m: zmax - start,
        dip_m: start - zmin,
        end_drop_m: start - end,
        hip_asymmetry: max_of(lh.iter().zip(&rh).map(|(a, b)| (a - b).abs()).collect()),
        both_shoulders_up: max_of(ls.iter().zip(&rs).map(|(a, b)| a.min(*b)).collect()),
        elbow_flexion: le.iter().chain(&re).sum::<f64>() / (2 * t).max(1) as f64,
        left_arm_wave: wave(&lsy, &lsz, 1.0),
        right_arm_wave: wave(&rsy, &rsz, -1.0),
        drift_m_per_s: (x * x + y * y).sqrt() / seconds.max(1e-9),
        energy,
    }
}

/// The action the measurements indicate (see the module table).
pub fn classify(m: &Measures) -> &'static str {
    if m.heading_change.abs() > 0.9 && m.peak_forward_speed < 0.5 {
        return if m.heading_change > 0.0 {
            "turn_left"
        } else {
            "turn_right"
        };
    }
    if m.peak_forward_speed > 1.9 || (m.peak_forward_speed > 1.2 && m.elbow_flexion > 0.9) {
        return "run";
    }
    if m.peak_forward_speed > 0.45 {
        return "walk_forward";
    }
    if m.peak_backward_speed > 0.25 {
        return "walk_backward";
    }
    if m.rise_m > 0.09 {
        return "jump";
    }
    if m.end_drop_m > 0.2 {
        return "sit_down";
    }
    if m.dip_m > 0.15 {
        return "squat";
    }
    if m.hip_asymmetry > 0.7 {
        return "kick";
    }
    if m.both_shoulders_up > 1.5 {
        return "raise_arms";
    }
    if m.left_arm_wave.max(m.right_arm_wave) > 0.12 {
        return if m.left_arm_wave > m.right_arm_wave {
            "wave_left"
        } else {
            "wave_right"
        };
    }
    "idle"
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_kit::synth::{generate, Action, Rng};
    use pipe_motion::features::{to_features, Mmm};

    /// The criteria label the synthetic generator's own motions right: every action,
    /// 30 random variations each (subject height, duration, speed, amplitude, side).
    #[test]
    fn criteria_label_real_synthetic_motions() {
        let fps = 20.0;
        let mut wrong = Vec::new();
        let mut n = 0;
        for (ai, a) in Action::ALL.iter().enumerate() {
            for s in 0..30u64 {
                let mut rng = Rng::new(1000 * ai as u64 + s);
                let h = rng.range(1.55, 1.95);
                let secs = rng.range(2.0, 6.0);
                let g = generate(*a, h, secs, fps, &mut rng);
                let mmm = Mmm {
                    root_position: g.root_position,
                    root_rotation: g.root_rotation,
                    joints: g.joints,
                };
                let (f, _) = to_features(&mmm, fps);
                let m = measure(&f, fps);
                let got = classify(&m);
                n += 1;
                if got != a.name() {
                    wrong.push(format!("{} -> {got}: {m:?}", a.name()));
                }
            }
        }
        let acc = 1.0 - wrong.len() as f64 / n as f64;
        assert!(acc >= 0.97, "accuracy {acc:.3}:\n{}", wrong.join("\n"));
        assert_eq!(ACTIONS.len(), Action::ALL.len());
        for a in Action::ALL {
            assert!(ACTIONS.contains(&a.name().as_str()));
        }
    }

    /// Mirroring (pipe_kit::body::mirror) turns a left wave into a right wave and a
    /// left turn into a right turn, and leaves every other action what it was, as the
    /// criteria see it.
    #[test]
    fn mirrored_motions_do_the_mirrored_action() {
        use pipe_kit::body::{mirror::mirror, BodyMotion, Skeleton};
        let sk = Skeleton::mmm();
        let fps = 20.0;
        let (mut n, mut right) = (0, 0);
        let mut wrong = Vec::new();
        for (ai, a) in Action::ALL.iter().enumerate() {
            let want = match a.name().as_str() {
                "wave_left" => "wave_right".to_string(),
                "wave_right" => "wave_left".to_string(),
                "turn_left" => "turn_right".to_string(),
                "turn_right" => "turn_left".to_string(),
                other => other.to_string(),
            };
            for s in 0..10u64 {
                let mut rng = Rng::new(5000 + 100 * ai as u64 + s);
                let g = generate(*a, 1.75, 4.0, fps, &mut rng);
                let body = BodyMotion {
                    fps,
                    height_m: 1.75,
                    root_position: g.root_position,
                    root_rotation: g.root_rotation,
                    joints: g.joints,
                };
                let m = mirror(&sk, &body);
                let mmm = Mmm {
                    root_position: m.root_position,
                    root_rotation: m.root_rotation,
                    joints: m.joints,
                };
                let (f, _) = to_features(&mmm, fps);
                let got = classify(&measure(&f, fps));
                n += 1;
                if got == want {
                    right += 1;
                } else {
                    wrong.push(format!("{} mirrored -> {got}, want {want}", a.name()));
                }
            }
        }
        let acc = right as f64 / n as f64;
        assert!(acc >= 0.97, "accuracy {acc:.3}:\n{}", wrong.join("\n"));
        for w in &wrong {
            assert!(!w.starts_with("wave"), "{w}");
        }
    }
}

//! Procedural motions in KIT-ML conventions (worked out from the real walk 00001):
//! 100 Hz, root position in mm with z up, `RootRotation` z = heading, and a subject
//! facing the body's local +y axis, i.e. the world direction (−sin h, cos h) for
//! heading h (00001 walks towards −x with h ≈ 1.64 rad). Joint angle signs follow
//! the MMM model: hip/shoulder/elbow flexion positive about x, knee flexion negative,
//! left-arm abduction positive about y, right-arm abduction negative. Root height
//! follows the supporting leg (thigh 0.245 H, shank 0.246 H, ankle 0.039 H), so the
//! feet stay near the floor; angles stay within the model's joint limits.

use std::f64::consts::{PI, TAU};

use super::Action;
use crate::joints::{index, KIT_JOINTS, LIMITS};

/// A small deterministic generator (SplitMix64): no dependency, stable across versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.f() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

/// Joint index by short name (`LHx`); the names are constants of this file.
fn j(short: &str) -> usize {
    index(&format!("{short}_joint")).expect("joint names used by the generator are KIT-ML joints")
}

/// Smooth 0→1 ramp over [a, b].
fn ramp(t: f64, a: f64, b: f64) -> f64 {
    if t <= a {
        0.0
    } else if t >= b {
        1.0
    } else {
        let x = (t - a) / (b - a);
        x * x * (3.0 - 2.0 * x)
    }
}

/// A bump 0→1→0 over [a, b].
fn bump(t: f64, a: f64, b: f64) -> f64 {
    if t <= a || t >= b {
        0.0
    } else {
        (PI * (t - a) / (b - a)).sin().powi(2)
    }
}

pub struct Generated {
    pub root_position: Vec<[f64; 3]>,
    pub root_rotation: Vec<[f64; 3]>,
    /// frames × 44 (canonical order)
    pub joints: Vec<f64>,
    /// What an annotator watching it could say about it.
    pub facts: Facts,
}

/// The visible particulars of one generated motion that its sentences may mention
/// ("twice", "with the left leg", "slowly", "high"): annotators describe what they
/// see, so a sentence never contradicts them. `None`: the action has no such thing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Facts {
    /// Repetitions of a repeated action (jump, squat, kick, raise arms): 1–3.
    pub reps: Option<usize>,
    /// Which leg kicks.
    pub kick_left: Option<bool>,
    /// Locomotion speed within the action's range: 0 the slowest, 1 the fastest.
    pub pace: Option<f64>,
    /// Size of a jump, squat, kick or arm raise within the action's range (0–1).
    pub size: Option<f64>,
    /// Total heading change of a turn (rad, positive).
    pub turn: Option<f64>,
}

/// Generate `seconds` of `action` at `fps` for a subject of height `h` (m).
pub fn generate(action: Action, h: f64, seconds: f64, fps: f64, rng: &mut Rng) -> Generated {
    let n = (seconds * fps).round() as usize + 1;
    let nj = KIT_JOINTS.len();
    let thigh = 245.0 * h;
    let shank = 246.0 * h;
    let ankle = 39.0 * h;
    let mut heading = rng.range(-PI, PI);
    let mut x = rng.range(-1500.0, 1500.0);
    let mut y = rng.range(-1500.0, 1500.0);
    let lean = rng.range(-0.08, 0.0);
    // Per-motion style.
    let speed_scale = rng.range(0.8, 1.2);
    let amp = rng.range(0.8, 1.2);
    let phase0 = rng.range(0.0, TAU);
    let reps = 1 + rng.below(3); // jumps, squats, kicks, raises
    let kick_left = rng.f() < 0.5;
    let turn_total = rng.range(PI / 2.0, PI)
        * if action == Action::TurnRight {
            -1.0
        } else {
            1.0
        };
    let wave_freq = rng.range(1.5, 2.5);
    let wave_raise = rng.range(1.2, 1.9);
    let sit_end = rng.range(0.45, 0.65) * seconds;
    // Slow random sway so no two motions are identical.
    let sway: Vec<(f64, f64)> = (0..nj)
        .map(|_| (rng.range(0.0, 0.04), rng.range(0.0, TAU)))
        .collect();

    let (v_fwd, cadence) = match action {
        Action::WalkForward => (
            rng.range(900.0, 1500.0) * speed_scale,
            rng.range(0.85, 1.05),
        ),
        Action::WalkBackward => (-rng.range(450.0, 800.0) * speed_scale, rng.range(0.7, 0.9)),
        Action::Run => (rng.range(2500.0, 3800.0) * speed_scale, rng.range(1.3, 1.6)),
        Action::TurnLeft | Action::TurnRight => (0.0, rng.range(0.7, 0.9)),
        _ => (0.0, 0.0),
    };
    let facts = {
        // Where |v| lies between the slowest (lo × 0.8) and fastest (hi × 1.2) speed.
        let pace = |lo: f64, hi: f64| Some((v_fwd.abs() - 0.8 * lo) / (1.2 * hi - 0.8 * lo));
        let repeated = matches!(
            action,
            Action::Jump | Action::Squat | Action::Kick | Action::RaiseArms
        );
        Facts {
            reps: repeated.then_some(reps),
            kick_left: (action == Action::Kick).then_some(kick_left),
            pace: match action {
                Action::WalkForward => pace(900.0, 1500.0),
                Action::WalkBackward => pace(450.0, 800.0),
                Action::Run => pace(2500.0, 3800.0),
                _ => None,
            },
            size: repeated.then_some((amp - 0.8) / 0.4),
            turn: matches!(action, Action::TurnLeft | Action::TurnRight)
                .then_some(turn_total.abs()),
        }
    };

    let mut rp = Vec::with_capacity(n);
    let mut rr = Vec::with_capacity(n);
    let mut jp = vec![0.0; n * nj];
    let dt = 1.0 / fps;
    for f in 0..n {
        let t = f as f64 * dt;
        let q = &mut jp[f * nj..(f + 1) * nj];
        // Neutral pose: arms slightly out and bent, slight knee bend.
        q[j("LSy")] = 0.15;
        q[j("RSy")] = -0.15;
        q[j("LEx")] = 0.3;
        q[j("REx")] = 0.3;
        q[j("LKx")] = -0.05;
        q[j("RKx")] = -0.05;
        for (k, (a, ph)) in sway.iter().enumerate() {
            q[k] += a * 0.25 * (0.4 * TAU * t + ph).sin();
        }
        let mut lift = 0.0; // extra root height (flight)
        let mut omega = 0.0; // heading rate
        let mut v = v_fwd;
        let ramp_in = ramp(t, 0.0, 0.6) * (1.0 - ramp(t, seconds - 0.6, seconds));
        match action {
            Action::WalkForward
            | Action::WalkBackward
            | Action::Run
            | Action::TurnLeft
            | Action::TurnRight => {
                let phi = TAU * cadence * t + phase0;
                let (ah, ak, asw) = match action {
                    Action::Run => (0.6 * amp, 1.3 * amp, 0.6 * amp),
                    Action::TurnLeft | Action::TurnRight => (0.15 * amp, 0.4 * amp, 0.08),
                    Action::WalkBackward => (0.3 * amp, 0.7 * amp, 0.15),
                    _ => (0.4 * amp, 0.9 * amp, 0.3 * amp),
                };
                let g = ramp_in;
                let dir = if action == Action::WalkBackward {
                    -1.0
                } else {
                    1.0
                };
                q[j("LHx")] += g * (ah * phi.sin() + 0.1);
                q[j("RHx")] += g * (ah * (phi + PI).sin() + 0.1);
                q[j("LKx")] -= g * ak * (phi + dir * 0.9).sin().max(0.0);
                q[j("RKx")] -= g * ak * (phi + PI + dir * 0.9).sin().max(0.0);
                q[j("LAx")] += g * 0.15 * (phi - 0.5).sin();
                q[j("RAx")] += g * 0.15 * (phi + PI - 0.5).sin();
                q[j("LSx")] += g * asw * (phi + PI).sin();
                q[j("RSx")] += g * asw * phi.sin();
                if action == Action::Run {
                    q[j("LEx")] += 1.0;
                    q[j("REx")] += 1.0;
                    q[j("BTx")] += 0.15;
                    lift = g * 40.0 * h * (2.0 * phi).sin().max(0.0);
                }
                v *= g;
                if matches!(action, Action::TurnLeft | Action::TurnRight) {
                    // Bell-shaped turn rate integrating to `turn_total` over the motion.
                    let w = bump(t, 0.2, seconds - 0.2);
                    omega = turn_total * w * 2.0 / (seconds - 0.4).max(0.1);
                }
            }
            Action::Jump => {
                let per = seconds / reps as f64;
                let tl = t % per;
                let c = per * 0.5;
                let crouch = bump(tl, c - 0.45, c - 0.05) + bump(tl, c + 0.35, c + 0.75);
                q[j("LHx")] += 0.8 * crouch;
                q[j("RHx")] += 0.8 * crouch;
                q[j("LKx")] -= 1.3 * crouch;
                q[j("RKx")] -= 1.3 * crouch;
                q[j("LAx")] += 0.3 * crouch;
                q[j("RAx")] += 0.3 * crouch;
                let arms = bump(tl, c - 0.4, c + 0.4);
                q[j("LSx")] += 1.8 * arms * amp;
                q[j("RSx")] += 1.8 * arms * amp;
                let flight = if tl > c - 0.05 && tl < c + 0.35 {
                    let u = (tl - (c - 0.05)) / 0.4;
                    4.0 * u * (1.0 - u)
                } else {
                    0.0
                };
                lift = flight * rng_free_height(h, amp);
            }
            Action::Squat => {
                let per = seconds / reps as f64;
                let tl = t % per;
                let s = bump(tl, 0.15 * per, 0.9 * per) * amp.min(1.1);
                q[j("LHx")] += 1.4 * s;
                q[j("RHx")] += 1.4 * s;
                q[j("LKx")] -= 1.9 * s;
                q[j("RKx")] -= 1.9 * s;
                q[j("LAx")] += 0.45 * s;
                q[j("RAx")] += 0.45 * s;
                q[j("LSx")] += 1.2 * s;
                q[j("RSx")] += 1.2 * s;
                q[j("BTx")] += 0.3 * s;
            }
            Action::WaveLeft | Action::WaveRight => {
                let up = ramp_in;
                let osc = up * 0.5 * amp * (TAU * wave_freq * t).sin();
                if action == Action::WaveLeft {
                    q[j("LSy")] += up * wave_raise;
                    q[j("LEx")] += up * 1.1;
                    q[j("LSz")] += osc.clamp(-1.2, 1.0);
                } else {
                    q[j("RSy")] -= up * wave_raise;
                    q[j("REx")] += up * 1.1;
                    q[j("RSz")] += osc.clamp(-1.0, 1.2);
                }
            }
            Action::RaiseArms => {
                let per = seconds / reps as f64;
                let tl = t % per;
                let r = ramp(tl, 0.1 * per, 0.4 * per) * (1.0 - ramp(tl, 0.65 * per, 0.95 * per));
                q[j("LSx")] += 2.7 * r * amp.min(1.1);
                q[j("RSx")] += 2.7 * r * amp.min(1.1);
                q[j("LEx")] -= 0.25 * r;
                q[j("REx")] -= 0.25 * r;
            }
            Action::Kick => {
                let per = seconds / reps as f64;
                let tl = t % per;
                let c = per * 0.5;
                let wind = bump(tl, c - 0.5, c);
                let strike = bump(tl, c - 0.15, c + 0.35);
                let (hx, kx) = if kick_left {
                    (j("LHx"), j("LKx"))
                } else {
                    (j("RHx"), j("RKx"))
                };
                q[hx] += 1.3 * strike * amp.min(1.2) - 0.2 * wind;
                q[kx] -= 1.2 * wind;
                q[kx] = q[kx].min(-0.02);
                q[j("BTx")] -= 0.15 * strike;
                q[j("LSy")] += 0.3 * strike;
                q[j("RSy")] -= 0.3 * strike;
            }
            Action::Idle => {
                q[j("BPy")] += 0.03 * (0.3 * TAU * t + phase0).sin();
            }
            Action::SitDown => {
                let s = ramp(t, 0.3, sit_end);
                q[j("LHx")] += 1.45 * s;
                q[j("RHx")] += 1.45 * s;
                q[j("LKx")] -= 1.5 * s;
                q[j("RKx")] -= 1.5 * s;
                q[j("BTx")] += 0.25 * bump(t, 0.3, sit_end + 0.5);
                q[j("LSx")] += 0.5 * bump(t, 0.3, sit_end + 0.5);
                q[j("RSx")] += 0.5 * bump(t, 0.3, sit_end + 0.5);
            }
        }
        for (v, (lo, hi)) in q.iter_mut().zip(LIMITS) {
            *v = v.clamp(lo, hi);
        }
        // Root height from the supporting (longer) leg; a seated subject rests on a seat.
        let leg = |hx: f64, kx: f64| thigh * hx.cos() + shank * (hx + kx).cos();
        let support = leg(q[j("LHx")], q[j("LKx")]).max(leg(q[j("RHx")], q[j("RKx")]));
        let mut z = ankle + support + lift;
        if action == Action::SitDown {
            let seat = 0.26 * h * 1000.0 + 80.0;
            z = z.max(seat);
        }
        heading += omega * dt;
        let (fx, fy) = (-heading.sin(), heading.cos());
        x += v * fx * dt;
        y += v * fy * dt;
        rp.push([x, y, z]);
        rr.push([
            lean + 0.02 * (TAU * cadence.max(0.3) * t).sin(),
            0.0,
            heading,
        ]);
    }
    Generated {
        root_position: rp,
        root_rotation: rr,
        joints: jp,
        facts,
    }
}

/// Jump height (mm) for a subject: 0.2–0.35 m scaled by style.
fn rng_free_height(h: f64, amp: f64) -> f64 {
    (150.0 + 100.0 * amp) * (h / 1.75)
}

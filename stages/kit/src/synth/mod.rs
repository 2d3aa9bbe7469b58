//! `kit.synth`: writes a KIT-ML-layout folder (`NNNNN_mmm.xml`,
//! `NNNNN_annotations.json`, `NNNNN_meta.json`) of procedurally generated motions of
//! 13 actions, deterministic by seed, in the conventions of real KIT-ML data, with
//! 1–3 sentences each from large paraphrase pools (a few motions have none).
//! `heldout.json` lists, per action, paraphrases that never appear in the data
//! (for measuring generalisation to unseen wording); each motion's action is in its
//! meta file under `synthetic.action`.

mod actions;
mod text;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use pipe_stage_api::{StageContext, StageKind};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use actions::{generate, Facts, Generated, Rng};
pub use text::all_sentences;

use crate::joints::KIT_JOINTS;
use crate::mmm::{self, Motion};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    WalkForward,
    WalkBackward,
    Run,
    TurnLeft,
    TurnRight,
    Jump,
    Squat,
    WaveLeft,
    WaveRight,
    RaiseArms,
    Kick,
    Idle,
    SitDown,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::WalkForward,
        Action::WalkBackward,
        Action::Run,
        Action::TurnLeft,
        Action::TurnRight,
        Action::Jump,
        Action::Squat,
        Action::WaveLeft,
        Action::WaveRight,
        Action::RaiseArms,
        Action::Kick,
        Action::Idle,
        Action::SitDown,
    ];

    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Duration range (s) that suits the action.
    fn seconds(self) -> (f64, f64) {
        match self {
            Action::Jump | Action::Kick | Action::Squat => (2.0, 5.0),
            Action::TurnLeft | Action::TurnRight | Action::WaveLeft | Action::WaveRight => {
                (2.0, 5.0)
            }
            Action::RaiseArms | Action::SitDown | Action::Idle => (2.5, 6.0),
            Action::Run => (2.0, 5.0),
            Action::WalkForward | Action::WalkBackward => (3.0, 10.0),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SynthParams {
    /// Number of motions.
    pub count: usize,
    pub seed: u64,
    /// Fraction of motions written with an empty sentence list (as in KIT-ML).
    pub no_text_fraction: f64,
    /// Frame rate of the written files (KIT-ML: 100 Hz).
    pub fps: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            count: 260,
            seed: 0,
            no_text_fraction: 0.03,
            fps: 100.0,
        }
    }
}

impl SynthParams {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let p: SynthParams = pipe_stage_api::section(params, "synth")?;
        if p.count == 0 || p.count > 99_999 {
            return Err(format!("synth.count must be in 1..=99999, got {}", p.count));
        }
        if !(0.0..=1.0).contains(&p.no_text_fraction) {
            return Err(format!(
                "synth.no_text_fraction must be in [0, 1], got {}",
                p.no_text_fraction
            ));
        }
        if !(p.fps >= 1.0 && p.fps <= 1000.0) {
            return Err(format!("synth.fps must be in [1, 1000], got {}", p.fps));
        }
        Ok(p)
    }
}

/// The action of motion `i` (balanced over actions, order shuffled by seed).
pub fn action_of(i: usize, seed: u64) -> Action {
    let mut rng = Rng::new(
        seed.wrapping_mul(31)
            .wrapping_add((i / Action::ALL.len()) as u64),
    );
    let mut order = Action::ALL;
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k + 1));
    }
    order[i % Action::ALL.len()]
}

/// `v` rounded to a multiple of `step` (1e-6, 0.01, 0.5, …), as the nearest double to
/// that decimal, so it prints short ("0.001456", like KIT's files) rather than as
/// "0.0014559999999999998", which `(v / step).round() * step` gave for many values
/// (files 7 % larger, and such numbers are slower to parse than KIT's).
fn round_to(v: f64, step: f64) -> f64 {
    let per_unit = (1.0 / step).round();
    if per_unit >= 1.0 && (per_unit * step - 1.0).abs() < 1e-9 {
        (v * per_unit).round() / per_unit
    } else {
        (v / step).round() * step
    }
}

/// Motion `i` of the dataset: (mmm motion, sentences, action, meta JSON).
pub fn motion(i: usize, p: &SynthParams) -> (Motion, Vec<String>, Action) {
    let action = action_of(i, p.seed);
    let mut rng = Rng::new(p.seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let height = round_to(rng.range(1.55, 1.95), 0.01);
    let mass = round_to(22.0 * height * height * rng.range(0.85, 1.25), 0.5);
    let (lo, hi) = action.seconds();
    let seconds = round_to(rng.range(lo, hi), 0.01);
    let g = generate(action, height, seconds, p.fps, &mut rng);
    let n = g.root_position.len();
    let motion = Motion {
        name: format!("synthetic_{i:05}_{}", action.name()),
        height_m: Some(height),
        mass_kg: Some(mass),
        joint_names: KIT_JOINTS.iter().map(|s| s.to_string()).collect(),
        timesteps: (0..n).map(|f| round_to(f as f64 / p.fps, 1e-6)).collect(),
        // Print precision of KIT-ML files: µm and µrad.
        root_position: g
            .root_position
            .iter()
            .map(|r| r.map(|v| round_to(v, 1e-3)))
            .collect(),
        root_rotation: g
            .root_rotation
            .iter()
            .map(|r| r.map(|v| round_to(v, 1e-6)))
            .collect(),
        joint_position: g.joints.iter().map(|v| round_to(*v, 1e-6)).collect(),
        ..Default::default()
    };
    let sentences = if rng.f() < p.no_text_fraction {
        Vec::new()
    } else {
        let k = 1 + rng.below(3);
        text::pick(action, k, &g.facts, |m| rng.below(m))
    };
    (motion, sentences, action)
}

/// Write the dataset into `dir`. Returns the number of motions written.
pub fn write_dataset(
    dir: &Path,
    p: &SynthParams,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    (0..p.count)
        .into_par_iter()
        .try_for_each(|i| -> anyhow::Result<()> {
            let (m, sentences, action) = motion(i, p);
            let id = format!("{:05}", i + 1);
            mmm::write_file(&dir.join(format!("{id}_mmm.xml")), &m)
                .with_context(|| format!("writing {id}_mmm.xml"))?;
            std::fs::write(
                dir.join(format!("{id}_annotations.json")),
                serde_json::to_vec(&sentences)?,
            )?;
            let meta = serde_json::json!({
                "nb_annotations": sentences.len(),
                "source": {"database": {"identifier": "synthetic", "motion_id": i + 1}},
                "synthetic": {"action": action.name(), "generator": format!("kit.synth/{}", SynthStage.version()), "seed": p.seed},
            });
            std::fs::write(
                dir.join(format!("{id}_meta.json")),
                serde_json::to_vec_pretty(&meta)?,
            )?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d.is_multiple_of(50) {
                progress(d, p.count);
            }
            Ok(())
        })?;
    let held: BTreeMap<String, Vec<String>> = Action::ALL
        .iter()
        .map(|a| (a.name(), text::all_sentences(*a, true)))
        .collect();
    std::fs::write(dir.join("heldout.json"), serde_json::to_vec_pretty(&held)?)?;
    Ok(p.count)
}

/// The `kit.synth` stage kind: one output folder, `kit`.
pub struct SynthStage;

impl StageKind for SynthStage {
    fn name(&self) -> &'static str {
        "kit.synth"
    }
    fn version(&self) -> u32 {
        // 3: numbers written as short decimals (the same values to 1e-16).
        // 4: sentences are true of their motion (counts, kicking leg, speed, size).
        // 5: wider training phrasings (56-77 verb phrases per action instead of 30-48).
        // 6: v4's phrasings again (measured: the wider pools did not help), pronouns agree.
        6
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        SynthParams::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let p = SynthParams::from_params(&ctx.spec().params).map_err(anyhow::Error::msg)?;
        let out = ctx
            .spec()
            .outs
            .first()
            .map(|o| ctx.out(o))
            .context("kit.synth needs one output (a folder)")?;
        let n = write_dataset(&out, &p, &|d, t| {
            ctx.progress(d as u64, t as u64, "motions")
        })?;
        eprintln!("wrote {n} synthetic motions to {}", out.display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers are written as KIT writes them: short decimals, at most 6 places.
    #[test]
    fn numbers_print_as_short_decimals() {
        let (m, _, _) = motion(3, &SynthParams::default());
        let xml = crate::mmm::to_xml(&m);
        let mut n = 0;
        for tag in ["RootPosition", "RootRotation", "JointPosition", "Timestep"] {
            for part in xml.split(&format!("<{tag}>")).skip(1) {
                let body = part.split('<').next().unwrap_or("");
                for tok in body.split_whitespace() {
                    let decimals = tok.split_once('.').map_or(0, |(_, d)| d.len());
                    assert!(decimals <= 6, "<{tag}> value `{tok}`");
                    n += 1;
                }
            }
        }
        assert!(n > 1000, "{n} values");
        assert_eq!(
            round_to(0.0014559999999999998, 1e-6).to_string(),
            "0.001456"
        );
        assert_eq!(round_to(1.2345, 0.5), 1.0);
    }

    #[test]
    fn deterministic_balanced_and_within_limits() {
        let p = SynthParams {
            count: 26,
            ..Default::default()
        };
        let a = motion(5, &p);
        let b = motion(5, &p);
        assert_eq!(a.0, b.0, "same seed, same motion");
        let other = motion(
            5,
            &SynthParams {
                seed: 1,
                ..p.clone()
            },
        );
        assert_ne!(a.0.root_position, other.0.root_position);
        let mut counts = BTreeMap::new();
        for i in 0..26 {
            *counts.entry(action_of(i, 0)).or_insert(0) += 1;
            let (m, s, _) = motion(i, &p);
            assert!(s.len() <= 3);
            for f in 0..m.frames() {
                for (k, (lo, hi)) in crate::joints::LIMITS.iter().enumerate() {
                    let v = m.joint_position[f * 44 + k];
                    assert!(
                        v >= lo - 1e-6 && v <= hi + 1e-6,
                        "motion {i} frame {f} joint {k}: {v}"
                    );
                }
            }
        }
        assert!(counts.values().all(|&c| c == 2), "{counts:?}");
    }

    #[test]
    fn walks_go_where_the_heading_faces() {
        let p = SynthParams::default();
        for i in 0..13 {
            let (m, _, a) = motion(i, &p);
            let (first, last) = (m.root_position[0], m.root_position[m.frames() - 1]);
            let h = m.root_rotation[0][2];
            let fwd = (last[0] - first[0]) * -h.sin() + (last[1] - first[1]) * h.cos();
            match a {
                Action::WalkForward => assert!(fwd > 1500.0, "{fwd}"),
                Action::WalkBackward => assert!(fwd < -700.0, "{fwd}"),
                Action::Idle => assert!(fwd.abs() < 100.0, "{fwd}"),
                _ => {}
            }
            let dh = m.root_rotation[m.frames() - 1][2] - h;
            match a {
                Action::TurnLeft => assert!(dh > 1.3, "{dh}"),
                Action::TurnRight => assert!(dh < -1.3, "{dh}"),
                _ => {}
            }
            // Standing root height ≈ 0.535 × height (KIT 00001: 0.973 m at 1.82 m).
            let z0 = m.root_position[0][2] / 1000.0 / m.height_m.unwrap_or(1.0);
            assert!((0.45..0.6).contains(&z0), "{a:?}: {z0}");
        }
    }

    /// Annotators describe what they see: the kicking leg, the number of jumps and
    /// the walking speed a sentence names are those of its motion, measured on the
    /// written motion itself.
    #[test]
    fn sentences_are_true_of_their_motion() {
        let p = SynthParams::default();
        let (lhx, rhx) = (
            crate::joints::index("LHx_joint").expect("LHx"),
            crate::joints::index("RHx_joint").expect("RHx"),
        );
        let (mut sides, mut counts) = (0, 0);
        let (mut slow, mut fast) = (Vec::new(), Vec::new());
        for i in 0..1300 {
            let (m, sentences, a) = motion(i, &p);
            let t = m.frames();
            for s in &sentences {
                let lower = s.to_lowercase();
                let words = text::words(&lower);
                match a {
                    Action::Kick if words.contains(&"left") || words.contains(&"right") => {
                        let peak = |k: usize| {
                            (0..t)
                                .map(|f| m.joint_position[f * 44 + k])
                                .fold(f64::MIN, f64::max)
                        };
                        let left_higher = peak(lhx) > peak(rhx) + 0.5;
                        let right_higher = peak(rhx) > peak(lhx) + 0.5;
                        assert!(
                            if words.contains(&"left") {
                                left_higher
                            } else {
                                right_higher
                            },
                            "motion {i}: `{s}` (hips {:.2} / {:.2})",
                            peak(lhx),
                            peak(rhx)
                        );
                        sides += 1;
                    }
                    Action::Jump => {
                        let said = if words.contains(&"once") {
                            1
                        } else if words.contains(&"twice") {
                            2
                        } else if lower.contains("a few times") {
                            3
                        } else {
                            continue;
                        };
                        let mut z: Vec<f64> = m.root_position.iter().map(|r| r[2]).collect();
                        let flying: Vec<bool> = {
                            let mut sorted = z.clone();
                            sorted.sort_by(f64::total_cmp);
                            let ground = sorted[t / 2];
                            z.iter_mut().map(|v| *v > ground + 100.0).collect()
                        };
                        let flights = flying.windows(2).filter(|w| w[1] && !w[0]).count()
                            + usize::from(flying[0]);
                        assert_eq!(flights, said, "motion {i}: `{s}`");
                        counts += 1;
                    }
                    Action::WalkForward => {
                        let fps = 1.0 / (m.timesteps[1] - m.timesteps[0]);
                        let peak = m
                            .root_position
                            .windows(2)
                            .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]) * fps)
                            .fold(0.0, f64::max);
                        if words.contains(&"slowly") {
                            slow.push(peak);
                        } else if words.contains(&"quickly") {
                            fast.push(peak);
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(
            sides >= 5 && counts >= 20,
            "{sides} sides, {counts} counts checked"
        );
        assert!(slow.len() >= 5 && fast.len() >= 5, "{slow:?} {fast:?}");
        let slowest_fast = fast.iter().cloned().fold(f64::MAX, f64::min);
        let fastest_slow = slow.iter().cloned().fold(0.0, f64::max);
        assert!(
            fastest_slow < slowest_fast,
            "slow walks up to {fastest_slow:.0} mm/s, quick ones from {slowest_fast:.0}"
        );
    }
}

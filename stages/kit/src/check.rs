//! `pipe kit check FILE…`: what is wrong with an MMM file and where (element, frame,
//! line, with the offending line), or a short summary when nothing is.

use std::path::Path;

use crate::extract::{canonicalize, native_fps};
use crate::mmm::{self, Channels};

/// Returns whether the file is fine, and the text to print.
pub fn check_file(path: &Path) -> (bool, String) {
    let name = path.display();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (false, format!("{name}: cannot read: {e}")),
    };
    let all = Channels {
        joint_velocity: true,
        joint_acceleration: true,
    };
    let m = match mmm::parse(&bytes, all).or_else(|_| mmm::parse(&bytes, Channels::default())) {
        Ok(m) => m,
        Err(e) => {
            let mut s = format!("{name}: {e}");
            if let Some(l) = e.line {
                if let Some(text) = String::from_utf8_lossy(&bytes).lines().nth(l as usize - 1) {
                    let t = text.trim();
                    let shown: String = t.chars().take(160).collect();
                    s.push_str(&format!(
                        "\n  {l} | {shown}{}",
                        if t.chars().count() > 160 { " …" } else { "" }
                    ));
                }
            }
            return (false, s);
        }
    };
    let fps = native_fps(&m.timesteps).unwrap_or(0.0);
    if let Err(e) = canonicalize(m.clone(), fps.max(1.0)) {
        return (false, format!("{name}: <JointOrder>: {e}"));
    }
    let dur =
        m.timesteps.last().copied().unwrap_or(0.0) - m.timesteps.first().copied().unwrap_or(0.0);
    let travel = match (m.root_position.first(), m.root_position.last()) {
        (Some(a), Some(b)) => ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt() / 1000.0,
        _ => 0.0,
    };
    let mut s = format!(
        "{name}: ok: {} frames, {dur:.2} s at {fps:.1} Hz, {} joints, height {}, mass {}, root travels {travel:.2} m",
        m.frames(),
        m.joint_names.len(),
        m.height_m.map(|h| format!("{h} m")).unwrap_or_else(|| "unknown".into()),
        m.mass_kg.map(|h| format!("{h} kg")).unwrap_or_else(|| "unknown".into()),
    );
    if !m.other_elements.is_empty() {
        s.push_str(&format!(
            "; other per-frame elements: {}",
            m.other_elements.join(", ")
        ));
    }
    (true, s)
}

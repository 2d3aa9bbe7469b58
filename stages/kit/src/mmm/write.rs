//! MMM XML writer, in the layout of KIT-ML files. Numbers are written in Rust's
//! shortest round-trip form, so reading a written file gives back the same values.
//! `JointVelocity`/`JointAcceleration` are written from the motion when it has
//! them, else as finite differences of the joint positions.

use std::fmt::Write as _;
use std::path::Path;

use super::Motion;

fn row(out: &mut String, tag: &str, vals: &[f64]) {
    out.push_str("\t\t\t\t<");
    out.push_str(tag);
    out.push('>');
    for v in vals {
        let _ = write!(out, "{v} ");
    }
    out.push_str("</");
    out.push_str(tag);
    out.push_str(">\n");
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// Render a motion as MMM XML.
pub fn to_xml(m: &Motion) -> String {
    let j = m.joint_names.len();
    let t = m.frames();
    let mut out = String::with_capacity(256 + t * (j * 3 + 8) * 12);
    out.push_str("<?xml version='1.0'?>\n<MMM>\n");
    let _ = writeln!(out, "\t<Motion name='{}'>", escape(&m.name));
    out.push_str("\t\t<Model>\n\t\t\t<File>mmm.xml</File>\n\t\t</Model>\n");
    out.push_str("\t\t<ModelProcessorConfig type='Winter'>\n");
    if let Some(h) = m.height_m {
        let _ = writeln!(out, "\t\t\t<Height>{h}</Height>");
    }
    if let Some(w) = m.mass_kg {
        let _ = writeln!(out, "\t\t\t<Mass>{w}</Mass>");
    }
    out.push_str("\t\t</ModelProcessorConfig>\n\t\t<JointOrder>\n");
    for n in &m.joint_names {
        let _ = writeln!(out, "\t\t\t<Joint name='{}'/>", escape(n));
    }
    out.push_str("\t\t</JointOrder>\n\t\t<MotionFrames>\n");
    let pos = |f: usize| &m.joint_position[f * j..(f + 1) * j];
    let mut vel = vec![0.0; j];
    let mut acc = vec![0.0; j];
    for f in 0..t {
        out.push_str("\t\t\t<MotionFrame>\n");
        let _ = writeln!(out, "\t\t\t\t<Timestep>{}</Timestep>", m.timesteps[f]);
        row(&mut out, "RootPosition", &m.root_position[f]);
        row(&mut out, "RootRotation", &m.root_rotation[f]);
        row(&mut out, "JointPosition", pos(f));
        match &m.joint_velocity {
            Some(v) => row(&mut out, "JointVelocity", &v[f * j..(f + 1) * j]),
            None => {
                if f > 0 {
                    let dt = m.timesteps[f] - m.timesteps[f - 1];
                    for ((v, a), b) in vel.iter_mut().zip(pos(f)).zip(pos(f - 1)) {
                        *v = (a - b) / dt;
                    }
                }
                row(&mut out, "JointVelocity", &vel);
            }
        }
        match &m.joint_acceleration {
            Some(a) => row(&mut out, "JointAcceleration", &a[f * j..(f + 1) * j]),
            None => {
                if f > 1 {
                    let dt1 = m.timesteps[f] - m.timesteps[f - 1];
                    let dt0 = m.timesteps[f - 1] - m.timesteps[f - 2];
                    for (k, a) in acc.iter_mut().enumerate() {
                        let v1 = (pos(f)[k] - pos(f - 1)[k]) / dt1;
                        let v0 = (pos(f - 1)[k] - pos(f - 2)[k]) / dt0;
                        *a = (v1 - v0) / dt1;
                    }
                }
                row(&mut out, "JointAcceleration", &acc);
            }
        }
        out.push_str("\t\t\t</MotionFrame>\n");
    }
    out.push_str("\t\t</MotionFrames>\n\t</Motion>\n</MMM>\n");
    out
}

/// Write atomically (temporary file + rename).
pub fn write_file(path: &Path, m: &Motion) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("xml.tmp.{}", std::process::id()));
    std::fs::write(&tmp, to_xml(m))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Channels};
    use super::*;

    #[test]
    fn write_then_read_gives_the_same_numbers() {
        let m = Motion {
            name: "synthetic <1>".into(),
            height_m: Some(1.75),
            mass_kg: Some(68.5),
            joint_names: vec!["a_joint".into(), "b_joint".into()],
            timesteps: vec![0.0, 0.01, 0.02],
            root_position: vec![[1.0, -2.5, 973.526], [1.1, -2.4, 973.0], [1.2, -2.3, 972.0]],
            root_rotation: vec![[0.1, 0.0, 1.64312], [0.1, 0.0, 1.7], [0.1, 0.0, 1.8]],
            joint_position: vec![0.1, -0.2, 0.123456789012, 0.3, 1e-7, -3.1],
            ..Default::default()
        };
        let back = parse(to_xml(&m).as_bytes(), Channels::default()).expect("parse own output");
        assert_eq!(back, m);
    }
}

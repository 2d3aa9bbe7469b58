//! Left ↔ right mirroring of a motion (the KIT-ML practice of doubling the training
//! data), and of its sentence.
//!
//! The mirror plane is the world's x = 0 plane (the body's sagittal plane when the
//! subject faces ±y). With M = diag(−1, 1, 1), a rotation R becomes M·R·M: rotations
//! about x keep their angle, those about y and z change sign. So the left and right
//! joints swap columns, the joints about the y or z axis of their frame change sign,
//! the root's x position, pitch and yaw change sign. Mirroring twice gives back the
//! motion exactly.

use super::fk::BodyMotion;
use super::model::{Dof, Skeleton};
use crate::joints::{self, KIT_JOINTS};

/// For each canonical joint: the column it takes its value from and the sign.
fn plan(sk: &Skeleton) -> Vec<(usize, f64)> {
    KIT_JOINTS
        .iter()
        .map(|name| {
            let other = match name.as_bytes()[0] {
                b'L' => format!("R{}", &name[1..]),
                b'R' => format!("L{}", &name[1..]),
                _ => name.to_string(),
            };
            let src = joints::index(&other).unwrap_or_else(|| joints::index(name).unwrap_or(0));
            // Sign from the joint's axis in its own frame: about x → keep.
            let sign = match sk.index(name).map(|i| sk.nodes[i].dof) {
                Some(Dof::Revolute(a)) if a[0].abs() > 0.99 => 1.0,
                _ => -1.0,
            };
            (src, sign)
        })
        .collect()
}

/// The mirrored motion (same frames, rate and height).
pub fn mirror(sk: &Skeleton, m: &BodyMotion) -> BodyMotion {
    let plan = plan(sk);
    let t = m.frames();
    let mut joints = vec![0.0; m.joints.len()];
    for f in 0..t {
        let (src, dst) = (
            &m.joints[f * 44..(f + 1) * 44],
            &mut joints[f * 44..(f + 1) * 44],
        );
        for (c, &(s, sign)) in plan.iter().enumerate() {
            dst[c] = sign * src[s];
        }
    }
    BodyMotion {
        fps: m.fps,
        height_m: m.height_m,
        root_position: m
            .root_position
            .iter()
            .map(|p| [-p[0], p[1], p[2]])
            .collect(),
        root_rotation: m
            .root_rotation
            .iter()
            .map(|r| [r[0], -r[1], -r[2]])
            .collect(),
        joints,
    }
}

/// The sentence of the mirrored motion: "left" ↔ "right" (whole words, any case,
/// also in "leftward(s)", "left-hand" and the like).
pub fn mirror_sentence(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        let swapped = [("left", "right"), ("right", "left")]
            .iter()
            .find_map(|(a, b)| {
                lower
                    .strip_prefix(a)
                    .map(|rest| (a.len(), *b, rest.to_string()))
            });
        match swapped {
            Some((n, to, rest)) if ["", "s", "ward", "wards"].contains(&rest.as_str()) => {
                let orig = &word[..n];
                let to = if orig.chars().all(|c| c.is_uppercase()) {
                    to.to_uppercase()
                } else if orig.chars().next().is_some_and(char::is_uppercase) {
                    let mut c = to.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                } else {
                    to.to_string()
                };
                out.push_str(&to);
                out.push_str(&word[n..]);
            }
            _ => out.push_str(word),
        }
        word.clear();
    };
    for ch in s.chars() {
        if ch.is_alphabetic() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::body::fk::forward;
    use crate::body::math::{self, Vec3};

    fn motion() -> BodyMotion {
        crate::body::fk::tests::motion_00001()
    }

    #[test]
    fn mirroring_twice_gives_back_the_motion() {
        let sk = Skeleton::mmm();
        let m = motion();
        let twice = mirror(&sk, &mirror(&sk, &m));
        assert_eq!(twice, m);
        assert_ne!(mirror(&sk, &m), m);
    }

    #[test]
    fn the_mirrored_body_is_the_mirror_image_with_sides_swapped() {
        let sk = Skeleton::mmm();
        let m = motion();
        let (a, b) = (forward(&sk, &m), forward(&sk, &mirror(&sk, &m)));
        let flip = |v: Vec3| [-v[0], v[1], v[2]];
        let mut worst_body: f64 = 0.0;
        let mut worst_foot: f64 = 0.0;
        for (i, node) in sk.nodes.iter().enumerate() {
            let other = match node.name.as_bytes()[0] {
                b'L' => format!("R{}", &node.name[1..]),
                b'R' => format!("L{}", &node.name[1..]),
                _ => node
                    .name
                    .replace("Left", "@")
                    .replace("Right", "Left")
                    .replace('@', "Right"),
            };
            let Some(j) = sk.index(&other) else { continue };
            // The feet below LMrot/RMrot are not symmetric in the reference model.
            let foot = ["Mrot", "Fx_joint", "ToeTip"]
                .iter()
                .any(|k| node.name.contains(k));
            for f in (0..a.frames()).step_by(7) {
                let d = math::norm(&math::sub(&b.at(f, j), &flip(a.at(f, i))));
                if foot {
                    worst_foot = worst_foot.max(d);
                } else {
                    worst_body = worst_body.max(d);
                }
            }
        }
        assert!(worst_body < 1e-6, "body off by {worst_body} mm");
        assert!(worst_foot < 20.0, "feet off by {worst_foot} mm");
    }

    #[test]
    fn sentences_swap_left_and_right() {
        assert_eq!(
            mirror_sentence(
                "A person waves with the Left hand, then turns RIGHT and walks leftwards."
            ),
            "A person waves with the Right hand, then turns LEFT and walks rightwards."
        );
        assert_eq!(
            mirror_sentence("right-handed, lefty, brightly"),
            "left-handed, lefty, brightly"
        );
        assert_eq!(
            mirror_sentence(&mirror_sentence("turn left twice")),
            "turn left twice"
        );
    }
}

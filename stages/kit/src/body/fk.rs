//! Forward kinematics: a motion in MMM terms (root position in mm, root rotation
//! (roll, pitch, yaw) in rad, the 44 KIT-ML joint angles in rad) → the world
//! position and orientation of every node of the body, per frame.
//!
//! Frame of the world: MMM's, z up, mm; the subject faces its local +y axis and its
//! left is local −x. The model's lengths (1 m subject) are scaled by the subject's
//! height; the root node is placed at `RootPosition` with `Rz(yaw)·Ry(pitch)·Rx(roll)`.

use super::math::{self, Mat3, Vec3};
use super::model::{Dof, Skeleton};
use crate::joints::{self, KIT_JOINTS};
use crate::mmm;

/// A motion ready for the body: canonical joint order, checked values.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyMotion {
    pub fps: f64,
    /// Subject height (m).
    pub height_m: f64,
    /// Per frame, mm.
    pub root_position: Vec<[f64; 3]>,
    /// Per frame, (roll, pitch, yaw) in rad.
    pub root_rotation: Vec<[f64; 3]>,
    /// frames × 44 in the canonical KIT-ML order (rad).
    pub joints: Vec<f64>,
}

/// Subject height used when a file does not give one (m).
pub const DEFAULT_HEIGHT_M: f64 = 1.75;

impl BodyMotion {
    pub fn frames(&self) -> usize {
        self.root_position.len()
    }

    /// Check shapes and values: at least one frame, finite numbers, a height in (0, 3] m,
    /// a positive frame rate. The error names the frame and the value.
    pub fn check(&self) -> Result<(), String> {
        let t = self.frames();
        if t == 0 {
            return Err("the motion has no frames".into());
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(format!("frame rate must be positive, got {}", self.fps));
        }
        if !(self.height_m.is_finite() && self.height_m > 0.0 && self.height_m <= 3.0) {
            return Err(format!(
                "subject height must be in (0, 3] m, got {}",
                self.height_m
            ));
        }
        if self.root_rotation.len() != t || self.joints.len() != t * KIT_JOINTS.len() {
            return Err(format!(
                "inconsistent lengths: {t} root positions, {} root rotations, {} joint values (want {} × 44)",
                self.root_rotation.len(),
                self.joints.len(),
                t
            ));
        }
        for f in 0..t {
            let bad = |what: &str| format!("frame {f}: {what} is not a finite number");
            if self.root_position[f].iter().any(|v| !v.is_finite()) {
                return Err(bad("RootPosition"));
            }
            if self.root_rotation[f].iter().any(|v| !v.is_finite()) {
                return Err(bad("RootRotation"));
            }
            let row = &self.joints[f * 44..(f + 1) * 44];
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(bad(&format!("joint {}", KIT_JOINTS[j])));
            }
        }
        Ok(())
    }

    /// From a parsed MMM file: joints reordered into the canonical order (the four
    /// optional foot joints 0 when absent), height from the file or `default_height_m`,
    /// frame rate from the timesteps (100 Hz for a single frame).
    pub fn from_mmm(m: &mmm::Motion, default_height_m: f64) -> Result<BodyMotion, String> {
        let map = joints::mapping(&m.joint_names)?;
        let width = m.joint_names.len();
        let t = m.frames();
        let mut j = vec![0.0; t * 44];
        for f in 0..t {
            for (c, src) in map.iter().enumerate() {
                if let Some(s) = src {
                    j[f * 44 + c] = m.joint_position[f * width + s];
                }
            }
        }
        let fps = if t >= 2 {
            let span = m.timesteps[t - 1] - m.timesteps[0];
            if span > 0.0 {
                (t - 1) as f64 / span
            } else {
                100.0
            }
        } else {
            100.0
        };
        let b = BodyMotion {
            fps,
            height_m: m.height_m.unwrap_or(default_height_m),
            root_position: m.root_position.clone(),
            root_rotation: m.root_rotation.clone(),
            joints: j,
        };
        b.check()?;
        Ok(b)
    }
}

/// World poses of every node of a skeleton, per frame.
#[derive(Debug, Clone)]
pub struct Poses {
    pub nodes: usize,
    /// frames × nodes, mm.
    pub position: Vec<Vec3>,
    /// frames × nodes: each node's frame in the world.
    pub rotation: Vec<Mat3>,
}

impl Poses {
    pub fn frames(&self) -> usize {
        self.position.len() / self.nodes.max(1)
    }

    pub fn at(&self, frame: usize, node: usize) -> Vec3 {
        self.position[frame * self.nodes + node]
    }
}

/// For each node, the canonical joint index driving it (None: held at 0).
pub fn joint_columns(sk: &Skeleton) -> Vec<Option<usize>> {
    sk.nodes
        .iter()
        .map(|n| match n.dof {
            Dof::Revolute(_) => joints::index(&n.name),
            Dof::Fixed => None,
        })
        .collect()
}

/// Forward kinematics of every frame (the motion must pass [`BodyMotion::check`]).
pub fn forward(sk: &Skeleton, m: &BodyMotion) -> Poses {
    let n = sk.nodes.len();
    let cols = joint_columns(sk);
    let t = m.frames();
    let scale = m.height_m; // model mm for 1 m → subject mm
    let mut position = vec![[0.0; 3]; t * n];
    let mut rotation = vec![math::IDENTITY; t * n];
    for f in 0..t {
        let angles = &m.joints[f * 44..(f + 1) * 44];
        for (i, node) in sk.nodes.iter().enumerate() {
            let (pp, pr) = match node.parent {
                Some(p) => (position[f * n + p], rotation[f * n + p]),
                None => (m.root_position[f], math::rpy(&m.root_rotation[f])),
            };
            let p = math::add(
                &pp,
                &math::apply(&pr, &math::scale(&node.translation, scale)),
            );
            let mut r = math::mul(&pr, &node.rotation);
            if let (Dof::Revolute(axis), Some(c)) = (node.dof, cols[i]) {
                r = math::mul(&r, &math::axis_angle(&axis, angles[c]));
            }
            position[f * n + i] = p;
            rotation[f * n + i] = r;
        }
    }
    Poses {
        nodes: n,
        position,
        rotation,
    }
}

/// A foot point within this height of the motion's lowest foot point is in contact.
const CONTACT_MM: f64 = 25.0;

/// Foot skating (m/s): the mean horizontal speed of the foot points (soles and toe
/// tips) while they are in contact — within 2.5 cm of the motion's lowest foot point
/// in both frames of a step. Real walking is not 0 (heel roll and toe-off move the
/// points near the floor: 0.12 m/s on 00001); a pose gliding at 1 m/s gives 1.
pub fn foot_skating(sk: &Skeleton, m: &BodyMotion, poses: &Poses) -> f64 {
    let feet: Vec<usize> = [
        "LeftFootHeight_joint",
        "RightFootHeight_joint",
        "LToeTip_joint",
        "RToeTip_joint",
    ]
    .iter()
    .filter_map(|n| sk.index(n))
    .collect();
    let t = poses.frames();
    let floor = (0..t)
        .flat_map(|f| feet.iter().map(move |&k| poses.at(f, k)[2]))
        .fold(f64::INFINITY, f64::min);
    let (mut sum, mut n) = (0.0, 0usize);
    for f in 1..t {
        for &k in &feet {
            let (a, b) = (poses.at(f - 1, k), poses.at(f, k));
            if a[2] < floor + CONTACT_MM && b[2] < floor + CONTACT_MM {
                sum += ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt() / 1000.0 * m.fps;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;
    use crate::mmm::{read_file, Channels};

    pub(crate) fn motion_00001() -> BodyMotion {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kit/00001_mmm.xml");
        let m = read_file(&p, Channels::default()).unwrap();
        BodyMotion::from_mmm(&m, DEFAULT_HEIGHT_M).unwrap()
    }

    fn track(sk: &Skeleton, poses: &Poses, name: &str) -> Vec<Vec3> {
        let i = sk.index(name).unwrap();
        (0..poses.frames()).map(|f| poses.at(f, i)).collect()
    }

    /// 00001 (1.82 m, "A person is walking forwards."): head top near 1.8 m, feet on
    /// the floor, about 1.36 m of travel along the direction the subject faces.
    #[test]
    fn fk_of_00001_stands_on_the_floor_and_walks_forward() {
        let sk = Skeleton::mmm();
        let m = motion_00001();
        assert_eq!(m.height_m, 1.82);
        assert!((m.fps - 100.0).abs() < 1e-6);
        let p = forward(&sk, &m);
        let head = track(&sk, &p, "HeadSegment_joint");
        let head_mean = head.iter().map(|v| v[2]).sum::<f64>() / head.len() as f64;
        let feet: Vec<f64> = [
            "LeftFootHeight_joint",
            "RightFootHeight_joint",
            "LToeTip_joint",
            "RToeTip_joint",
        ]
        .iter()
        .flat_map(|n| track(&sk, &p, n))
        .map(|v| v[2])
        .collect();
        // Per frame, the lower foot point: the foot in contact.
        let lowest: Vec<f64> = (0..p.frames())
            .map(|f| {
                (0..4)
                    .map(|k| feet[k * p.frames() + f])
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let floor_mean = lowest.iter().sum::<f64>() / lowest.len() as f64;
        let floor_max = lowest.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let root = &m.root_position;
        let (a, b) = (root[0], root[root.len() - 1]);
        let travel = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
        // Direction of travel against the facing direction (local +y) at the start.
        let facing = math::apply(&math::rpy(&m.root_rotation[0]), &[0.0, 1.0, 0.0]);
        let along = ((b[0] - a[0]) * facing[0] + (b[1] - a[1]) * facing[1]) / travel;
        eprintln!(
            "head {head_mean:.1} mm, lowest foot point mean {floor_mean:.1} max {floor_max:.1} mm, travel {travel:.1} mm, cos to facing {along:.3}"
        );
        assert!((head_mean - 1800.0).abs() < 40.0, "head top {head_mean} mm");
        assert!(
            floor_mean.abs() < 30.0,
            "feet {floor_mean} mm above the floor"
        );
        assert!(
            floor_max < 60.0,
            "both feet in the air at some frame: {floor_max} mm"
        );
        assert!((travel - 1360.0).abs() < 60.0, "travel {travel} mm");
        assert!(
            along > 0.95,
            "walks along its facing direction: cos {along}"
        );
    }

    /// Real walking keeps the feet planted: little skating. Gliding the same pose
    /// across the floor at 1 m/s is all skating.
    #[test]
    fn foot_skating_separates_walking_from_gliding() {
        let sk = Skeleton::mmm();
        let m = motion_00001();
        let walk = foot_skating(&sk, &m, &forward(&sk, &m));
        let mut glide = m.clone();
        let first = glide.joints[..44].to_vec();
        for f in 0..glide.frames() {
            glide.joints[f * 44..(f + 1) * 44].copy_from_slice(&first);
            glide.root_rotation[f] = m.root_rotation[0];
            glide.root_position[f] = [
                m.root_position[0][0] + 10.0 * f as f64,
                m.root_position[0][1],
                m.root_position[0][2],
            ];
        }
        let slide = foot_skating(&sk, &glide, &forward(&sk, &glide));
        eprintln!("foot skating: 00001 {walk:.3} m/s, gliding pose {slide:.3} m/s");
        assert!(walk < 0.2, "{walk}");
        assert!((slide - 1.0).abs() < 0.01, "{slide}");
    }

    #[test]
    fn bad_motions_are_refused_with_the_frame() {
        let mut m = motion_00001();
        m.joints[5 * 44 + 3] = f64::NAN;
        let e = m.check().unwrap_err();
        assert!(e.contains("frame 5") && e.contains("BPx_joint"), "{e}");
        let mut m = motion_00001();
        m.height_m = 0.0;
        assert!(m.check().unwrap_err().contains("height"));
        let mut m = motion_00001();
        m.root_position.clear();
        m.root_rotation.clear();
        m.joints.clear();
        assert!(m.check().unwrap_err().contains("no frames"));
        // One frame is a motion (a pose).
        let mut m = motion_00001();
        m.root_position.truncate(1);
        m.root_rotation.truncate(1);
        m.joints.truncate(44);
        m.check().unwrap();
        assert_eq!(forward(&Skeleton::mmm(), &m).frames(), 1);
        let mmm = crate::mmm::Motion {
            joint_names: vec!["BPx_joint".into(), "Tail_joint".into()],
            ..Default::default()
        };
        let e = BodyMotion::from_mmm(&mmm, 1.7).unwrap_err();
        assert!(e.contains("Tail_joint"), "{e}");
    }
}

//! BVH export of a motion on the MMM body.
//!
//! Hierarchy: one BVH joint per group of MMM joints that share a point (e.g.
//! `BPx`, `BPz`, `BPy` → `BP`), named like the KIT-ML joints without the axis
//! letter; fixed segments between them fold into the offsets; a joint with no child
//! joints ends in an `End Site` at the farthest point of its segment (head top,
//! hand, toe tip). Offsets are the subject's (the model scaled by the height).
//!
//! Coordinates: Y up, metres, the subject facing −Z in its rest pose — what
//! Blender's BVH importer expects by default, which then puts every joint exactly
//! where MMM does (x, y, z in metres, z up). BVH X = MMM x, Y = MMM z, Z = −MMM y.
//! Rotations: degrees; the root `Yrotation Zrotation Xrotation` (heading, pitch,
//! roll), the joints `Xrotation Yrotation Zrotation` — MMM's own x, z, y order,
//! so each channel is one KIT-ML joint angle (the y angle with its sign flipped)
//! wherever the joint's axes are the body's. The angles are computed from the
//! forward kinematics, so the BVH reproduces it for every joint, tilted foot axes
//! included.

use std::io::Write;

use super::fk::{forward, joint_columns, BodyMotion, Poses};
use super::math::{self, Mat3, Vec3, IDENTITY};
use super::model::Skeleton;

/// MMM → BVH axes.
const C: Mat3 = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]];
const ROOT_ORDER: [usize; 3] = [1, 2, 0];
const JOINT_ORDER: [usize; 3] = [0, 1, 2];

#[derive(Debug, Clone)]
pub struct BvhJoint {
    pub name: String,
    /// First and last skeleton node of the group (the last carries its frame).
    pub first: usize,
    pub last: usize,
    pub parent: Option<usize>,
    /// From the parent joint, MMM world rest frame, model mm (1 m subject).
    pub offset: Vec3,
    pub end_site: Option<(usize, Vec3)>,
    /// World rotation of `last` in the rest pose.
    rest: Mat3,
}

/// The BVH joints of a skeleton, parents before children.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub joints: Vec<BvhJoint>,
}

fn short_name(node: &str) -> String {
    let base = node.strip_suffix("_joint").unwrap_or(node);
    match base.strip_suffix(['x', 'y', 'z']) {
        Some(b) if b.len() >= 2 && b.chars().all(|c| c.is_ascii_uppercase()) => b.to_string(),
        _ => base.to_string(),
    }
}

impl Hierarchy {
    pub fn new(sk: &Skeleton) -> Hierarchy {
        let n = sk.nodes.len();
        let active: Vec<bool> = joint_columns(sk).iter().map(Option::is_some).collect();
        // Rest pose of the 1 m model.
        let rest_motion = BodyMotion {
            fps: 1.0,
            height_m: 1.0,
            root_position: vec![[0.0; 3]],
            root_rotation: vec![[0.0; 3]],
            joints: vec![0.0; 44],
        };
        let rest = forward(sk, &rest_motion);
        let mut group: Vec<Option<usize>> = vec![None; n];
        let mut joints: Vec<BvhJoint> = vec![BvhJoint {
            name: "root".into(),
            first: 0,
            last: 0,
            parent: None,
            offset: [0.0; 3],
            end_site: None,
            rest: IDENTITY,
        }];
        group[0] = Some(0);
        for i in 1..n {
            if !active[i] {
                continue;
            }
            let node = &sk.nodes[i];
            let Some(p) = node.parent else { continue };
            let identity = node.translation == [0.0; 3] && node.rotation == IDENTITY;
            if let Some(g) = group[p] {
                if active[p] && joints[g].last == p && identity && sk.nodes[p].children.len() == 1 {
                    joints[g].last = i;
                    joints[g].rest = rest.rotation[i];
                    group[i] = Some(g);
                    continue;
                }
            }
            // The nearest ancestor's joint.
            let mut a = p;
            let parent = loop {
                if let Some(g) = group[a] {
                    break g;
                }
                match sk.nodes[a].parent {
                    Some(q) => a = q,
                    None => break 0,
                }
            };
            let offset = math::sub(&rest.at(0, i), &rest.at(0, joints[parent].last));
            group[i] = Some(joints.len());
            joints.push(BvhJoint {
                name: short_name(&node.name),
                first: i,
                last: i,
                parent: Some(parent),
                offset,
                end_site: None,
                rest: rest.rotation[i],
            });
        }
        // End sites: the farthest node below a joint that has no child joints.
        for g in 0..joints.len() {
            if joints.iter().any(|j| j.parent == Some(g)) {
                continue;
            }
            let from = rest.at(0, joints[g].last);
            let mut best: Option<(usize, f64)> = None;
            let mut stack = sk.nodes[joints[g].last].children.clone();
            while let Some(c) = stack.pop() {
                let d = math::norm(&math::sub(&rest.at(0, c), &from));
                if best.is_none_or(|(_, b)| d > b) {
                    best = Some((c, d));
                }
                stack.extend(&sk.nodes[c].children);
            }
            if let Some((c, _)) = best {
                joints[g].end_site = Some((c, math::sub(&rest.at(0, c), &from)));
            }
        }
        Hierarchy { joints }
    }

    /// Names of the points [`Hierarchy::points`] returns: every joint, then every end
    /// site (named after its joint with `_end`).
    pub fn point_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.joints.iter().map(|j| j.name.clone()).collect();
        v.extend(
            self.joints
                .iter()
                .filter(|j| j.end_site.is_some())
                .map(|j| format!("{}_end", j.name)),
        );
        v
    }

    /// Skeleton nodes of [`Hierarchy::point_names`], in that order.
    pub fn point_nodes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.joints.iter().map(|j| j.last).collect();
        v.extend(
            self.joints
                .iter()
                .filter_map(|j| j.end_site.map(|(n, _)| n)),
        );
        v
    }

    /// World positions (MMM frame, mm) of the points, frames × points.
    pub fn points(&self, poses: &Poses) -> Vec<Vec3> {
        let nodes = self.point_nodes();
        let mut out = Vec::with_capacity(poses.frames() * nodes.len());
        for f in 0..poses.frames() {
            out.extend(nodes.iter().map(|&n| poses.at(f, n)));
        }
        out
    }

    /// Parent point of each point (None for the root), for drawing bones.
    pub fn point_parents(&self) -> Vec<Option<usize>> {
        let mut v: Vec<Option<usize>> = self.joints.iter().map(|j| j.parent).collect();
        v.extend(
            self.joints
                .iter()
                .enumerate()
                .filter(|(_, j)| j.end_site.is_some())
                .map(|(g, _)| Some(g)),
        );
        v
    }
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.6}");
    if s == "-0.000000" {
        "0.000000".into()
    } else {
        s
    }
}

/// Write a checked motion as BVH.
pub fn write(sk: &Skeleton, m: &BodyMotion, out: &mut impl Write) -> std::io::Result<()> {
    let h = Hierarchy::new(sk);
    let poses = forward(sk, m);
    let to_bvh = |v: &Vec3, scale: f64| math::scale(&math::apply(&C, v), scale);
    let unit = m.height_m / 1000.0; // model mm → subject m
    writeln!(out, "HIERARCHY")?;
    fn emit(
        h: &Hierarchy,
        g: usize,
        depth: usize,
        unit: f64,
        out: &mut impl Write,
        to_bvh: &dyn Fn(&Vec3, f64) -> Vec3,
    ) -> std::io::Result<()> {
        let pad = "  ".repeat(depth);
        let j = &h.joints[g];
        let o = to_bvh(&j.offset, unit);
        let (kind, channels) = match j.parent {
            None => (
                "ROOT",
                "6 Xposition Yposition Zposition Yrotation Zrotation Xrotation",
            ),
            Some(_) => ("JOINT", "3 Xrotation Yrotation Zrotation"),
        };
        writeln!(out, "{pad}{kind} {}", j.name)?;
        writeln!(out, "{pad}{{")?;
        writeln!(
            out,
            "{pad}  OFFSET {} {} {}",
            fmt(o[0]),
            fmt(o[1]),
            fmt(o[2])
        )?;
        writeln!(out, "{pad}  CHANNELS {channels}")?;
        for (c, child) in h.joints.iter().enumerate() {
            if child.parent == Some(g) {
                emit(h, c, depth + 1, unit, out, to_bvh)?;
            }
        }
        if let Some((_, e)) = j.end_site {
            let e = to_bvh(&e, unit);
            writeln!(out, "{pad}  End Site")?;
            writeln!(out, "{pad}  {{")?;
            writeln!(
                out,
                "{pad}    OFFSET {} {} {}",
                fmt(e[0]),
                fmt(e[1]),
                fmt(e[2])
            )?;
            writeln!(out, "{pad}  }}")?;
        }
        writeln!(out, "{pad}}}")
    }
    emit(&h, 0, 0, unit, out, &to_bvh)?;
    writeln!(out, "MOTION")?;
    writeln!(out, "Frames: {}", m.frames())?;
    writeln!(out, "Frame Time: {:.8}", 1.0 / m.fps)?;
    // The order the channels appear in: depth-first like the hierarchy.
    let mut order = Vec::with_capacity(h.joints.len());
    fn dfs(h: &Hierarchy, g: usize, order: &mut Vec<usize>) {
        order.push(g);
        for (c, child) in h.joints.iter().enumerate() {
            if child.parent == Some(g) {
                dfs(h, c, order);
            }
        }
    }
    dfs(&h, 0, &mut order);
    let deg = 180.0 / std::f64::consts::PI;
    let mut line = String::new();
    let mut global = vec![IDENTITY; h.joints.len()];
    for f in 0..m.frames() {
        line.clear();
        for (g, j) in h.joints.iter().enumerate() {
            let w = poses.rotation[f * poses.nodes + j.last];
            global[g] = math::mul(&w, &math::transpose(&j.rest));
        }
        for &g in &order {
            let j = &h.joints[g];
            let local = match j.parent {
                Some(p) => math::mul(&math::transpose(&global[p]), &global[g]),
                None => global[g],
            };
            let local = math::mul(&C, &math::mul(&local, &math::transpose(&C)));
            if j.parent.is_none() {
                let p = to_bvh(&m.root_position[f], 1e-3);
                for v in p {
                    line.push_str(&fmt(v));
                    line.push(' ');
                }
            }
            let order = if j.parent.is_none() {
                ROOT_ORDER
            } else {
                JOINT_ORDER
            };
            for a in math::euler(&local, order) {
                line.push_str(&fmt(a * deg));
                line.push(' ');
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The BVH text of a checked motion.
pub fn to_string(sk: &Skeleton, m: &BodyMotion) -> String {
    let mut v = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(sk, m, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// A minimal BVH reader and forward kinematics, to check that the file
    /// reproduces ours (the Python and Blender checks live in `tests/`).
    fn replay(text: &str) -> (Vec<String>, Vec<Vec<Vec3>>) {
        let mut names = vec![];
        let mut parents: Vec<Option<usize>> = vec![];
        let mut offsets = vec![];
        let mut channels: Vec<Vec<String>> = vec![];
        let mut stack: Vec<usize> = vec![];
        let mut lines = text.lines().map(str::trim);
        let mut last_opened: Option<usize> = None;
        let mut in_end = false;
        for l in lines.by_ref() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first().copied() {
                Some("ROOT") | Some("JOINT") => {
                    names.push(w[1].to_string());
                    parents.push(stack.last().copied());
                    offsets.push([0.0; 3]);
                    channels.push(vec![]);
                    last_opened = Some(names.len() - 1);
                }
                Some("End") => {
                    names.push(format!("{}_end", names[*stack.last().unwrap()]));
                    parents.push(stack.last().copied());
                    offsets.push([0.0; 3]);
                    channels.push(vec![]);
                    last_opened = Some(names.len() - 1);
                    in_end = true;
                }
                Some("{") => stack.push(last_opened.unwrap()),
                Some("}") => {
                    stack.pop();
                    in_end = false;
                }
                Some("OFFSET") => {
                    let i = *stack.last().unwrap();
                    offsets[i] = [
                        w[1].parse().unwrap(),
                        w[2].parse().unwrap(),
                        w[3].parse().unwrap(),
                    ];
                }
                Some("CHANNELS") => {
                    let i = *stack.last().unwrap();
                    channels[i] = w[2..].iter().map(|s| s.to_string()).collect();
                }
                Some("MOTION") => break,
                _ => {}
            }
            let _ = in_end;
        }
        let _ = lines.next();
        let _ = lines.next();
        let mut frames = vec![];
        for l in lines {
            let vals: Vec<f64> = l.split_whitespace().map(|s| s.parse().unwrap()).collect();
            let mut k = 0;
            let mut gp = vec![[0.0; 3]; names.len()];
            let mut gr = vec![IDENTITY; names.len()];
            for i in 0..names.len() {
                let mut pos = offsets[i];
                let mut rot = IDENTITY;
                for c in &channels[i] {
                    let v = vals[k];
                    k += 1;
                    match c.as_str() {
                        "Xposition" => pos[0] = v,
                        "Yposition" => pos[1] = v,
                        "Zposition" => pos[2] = v,
                        r => {
                            let axis = (r.as_bytes()[0] - b'X') as usize;
                            rot = math::mul(&rot, &math::about(axis, v.to_radians()));
                        }
                    }
                }
                match parents[i] {
                    Some(p) => {
                        gp[i] = math::add(&gp[p], &math::apply(&gr[p], &pos));
                        gr[i] = math::mul(&gr[p], &rot);
                    }
                    None => {
                        gp[i] = pos;
                        gr[i] = rot;
                    }
                }
            }
            frames.push(gp);
        }
        (names, frames)
    }

    #[test]
    fn bvh_reproduces_our_forward_kinematics_on_00001() {
        let sk = Skeleton::mmm();
        let m = crate::body::fk::tests::motion_00001();
        let text = to_string(&sk, &m);
        let (names, frames) = replay(&text);
        let h = Hierarchy::new(&sk);
        let ours = h.points(&forward(&sk, &m));
        let pnames = h.point_names();
        assert_eq!(frames.len(), m.frames());
        let k = pnames.len();
        let mut worst: f64 = 0.0;
        for (f, gp) in frames.iter().enumerate() {
            for (i, name) in names.iter().enumerate() {
                let p = pnames.iter().position(|n| n == name).unwrap();
                let mmm = ours[f * k + p];
                let want = [mmm[0] / 1000.0, mmm[2] / 1000.0, -mmm[1] / 1000.0];
                worst = worst.max(math::norm(&math::sub(&gp[i], &want)));
            }
        }
        eprintln!(
            "BVH vs FK: worst {:.6} mm over {} points",
            worst * 1000.0,
            names.len()
        );
        assert!(worst < 1e-4, "BVH off by {} mm", worst * 1000.0);
        let expect = [
            "root", "BP", "BT", "LS", "LE", "LW", "RS", "RE", "RW", "BLN", "BUN", "LH", "LK", "LA",
            "LMrot", "LF", "RH", "RK", "RA", "RMrot", "RF",
        ];
        let mut got: Vec<&str> = h.joints.iter().map(|j| j.name.as_str()).collect();
        got.sort();
        let mut want = expect.to_vec();
        want.sort();
        assert_eq!(got, want);
        assert!(text.starts_with("HIERARCHY\nROOT root\n"));
        assert!(text.contains("Frame Time: 0.01000000"));
    }
}

//! The MMM reference model (a Simox robot XML): a tree of nodes, each with a fixed
//! transform from its parent (mm, for a subject 1 m tall) and at most one degree of
//! freedom (a revolute joint about an axis of its own frame).
//!
//! [`Skeleton::mmm`] is the body every export uses. The two reference files in
//! `data/kit/mmm_model/` disagree on the torso: in `mmm_plappert.xml` the segments
//! from the sole to the head top add up to exactly 1000 mm (the model is normalised
//! to a 1 m subject), with the hip joints at 0.530 and the shoulders at 0.818 of the
//! height — Winter's anthropometric proportions, on which MMM is built — and
//! `00001_mmm.xml` (1.82 m) carries its root 973 mm above the floor, 0.535 of the
//! height. `mmm_language2pose.xml` lengthens the pelvis, thorax and neck segments
//! (80/120/44 mm instead of 40/60/22) and widens the shoulders (±197 instead of
//! ±110 mm): its head top lands at 1.122 of the height (2.04 m for that subject).
//! So the body is `mmm_plappert.xml`; only the foot joints it lacks (`LMrot`,
//! `RMrot`, with the `LFx`/`RFx` that hang from them) come from
//! `mmm_language2pose.xml`, which is where the 44-joint KIT-ML files place them;
//! a toe tip 34 mm ahead of `LFx`/`RFx` (the toe segment of `mmm_plappert.xml`)
//! ends each foot.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::math::{Mat3, Vec3, IDENTITY};

const PLAPPERT: &str = include_str!("../../../../data/kit/mmm_model/mmm_plappert.xml");
const LANGUAGE2POSE: &str = include_str!("../../../../data/kit/mmm_model/mmm_language2pose.xml");

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dof {
    /// No motion (a fixed or prismatic segment: its translation is fixed here).
    Fixed,
    /// Rotation about a unit axis of the node's frame.
    Revolute(Vec3),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// Rotation of the node's frame relative to its parent's.
    pub rotation: Mat3,
    /// Translation from the parent's frame (mm, subject 1 m tall).
    pub translation: Vec3,
    pub dof: Dof,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
}

/// A body model: nodes in depth-first order (every parent before its children).
#[derive(Debug, Clone, PartialEq)]
pub struct Skeleton {
    pub nodes: Vec<Node>,
}

struct Raw {
    rotation: Mat3,
    translation: Vec3,
    dof: Dof,
    children: Vec<String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.to_string())
    })
}

fn num(e: &BytesStart<'_>, name: &str, what: &str) -> Result<f64, String> {
    let v = attr(e, name).ok_or_else(|| format!("{what}: missing attribute {name}"))?;
    let x: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{what}: attribute {name}='{v}' is not a number"))?;
    if !x.is_finite() {
        return Err(format!("{what}: attribute {name}='{v}' is not finite"));
    }
    Ok(x)
}

impl Skeleton {
    /// The MMM body used for forward kinematics and export (see the module docs).
    pub fn mmm() -> Skeleton {
        // Both files are part of the crate and checked by the tests below.
        #[allow(clippy::expect_used)]
        let build = || -> Result<Skeleton, String> {
            let mut body = Skeleton::parse(PLAPPERT, "mmm_plappert.xml")?;
            let feet = Skeleton::parse(LANGUAGE2POSE, "mmm_language2pose.xml")?;
            for (side, ankle) in [("L", "LAy_joint"), ("R", "RAy_joint")] {
                body = body.without(&format!("{side}Fx_joint"))?;
                body = body.graft(&feet, &format!("{side}Mrot_joint"), ankle)?;
                let toe = Node {
                    name: format!("{side}ToeTip_joint"),
                    rotation: IDENTITY,
                    translation: [0.0, 34.0, 0.0],
                    dof: Dof::Fixed,
                    parent: None,
                    children: vec![],
                };
                body = body.attach(toe, &format!("{side}Fx_joint"))?;
            }
            Ok(body)
        };
        #[allow(clippy::expect_used)]
        build().expect("the embedded MMM model is valid")
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Parse a Simox robot XML (`<Robot RootNode=…>` with `<RobotNode>`s): each
    /// node's own `<Transform><Matrix4x4>`, `<Joint type=…><axis …/>` and `<Child>`s
    /// (sensors, physics and visualisation are not read).
    pub fn parse(xml: &str, source: &str) -> Result<Skeleton, String> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut raw: HashMap<String, Raw> = HashMap::new();
        let mut root: Option<String> = None;
        // Element names from <Robot> down to the current element.
        let mut path: Vec<Vec<u8>> = Vec::new();
        let mut node: Option<String> = None;
        let mut joint_type = String::new();
        let mut scale_mm = 1.0;
        let mut matrix = [[0.0; 4]; 4];
        loop {
            let pos = reader.buffer_position() as usize;
            // The line only when there is an error (counting it per event is quadratic).
            let err = |m: String| {
                let line = 1 + xml.as_bytes()[..pos.min(xml.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                format!("{source} line {line}: {m}")
            };
            let ev = reader
                .read_event()
                .map_err(|e| err(format!("malformed XML: {e}")))?;
            let (e, empty) = match ev {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    let closed = path.pop().unwrap_or_default();
                    match (path.len(), closed.as_slice()) {
                        (1, b"RobotNode") => node = None,
                        (2, b"Transform") => {
                            if let Some(r) = node.as_ref().and_then(|n| raw.get_mut(n)) {
                                for (i, row) in matrix.iter().take(3).enumerate() {
                                    r.rotation[i] = [row[0], row[1], row[2]];
                                    r.translation[i] = row[3] * scale_mm;
                                }
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = e.local_name().into_inner().as_bytes().to_vec();
            let parent: Vec<&[u8]> = path.iter().map(|p| p.as_slice()).collect();
            let what = format!("node {}", node.as_deref().unwrap_or("?"));
            match (parent.as_slice(), name.as_slice()) {
                ([], b"Robot") => root = attr(&e, "RootNode"),
                ([b"Robot"], b"RobotNode") => {
                    let n =
                        attr(&e, "name").ok_or_else(|| err("<RobotNode> without a name".into()))?;
                    if raw.contains_key(&n) {
                        return Err(err(format!("node {n} is defined twice")));
                    }
                    let fresh = Raw {
                        rotation: IDENTITY,
                        translation: [0.0; 3],
                        dof: Dof::Fixed,
                        children: vec![],
                    };
                    raw.insert(n.clone(), fresh);
                    node = Some(n);
                }
                ([b"Robot", b"RobotNode", b"Transform"], b"Matrix4x4") => {
                    scale_mm = match attr(&e, "units").as_deref() {
                        None | Some("mm") => 1.0,
                        Some("m") => 1000.0,
                        Some(u) => return Err(err(format!("{what}: unknown units '{u}'"))),
                    };
                    matrix = [[0.0; 4]; 4];
                    matrix[3][3] = 1.0;
                }
                (
                    [b"Robot", b"RobotNode", b"Transform", b"Matrix4x4"],
                    b"row1" | b"row2" | b"row3" | b"row4",
                ) => {
                    let r = (name[3] - b'1') as usize;
                    for (c, v) in matrix[r].iter_mut().enumerate() {
                        *v = num(&e, &format!("c{}", c + 1), &what).map_err(&err)?;
                    }
                }
                ([b"Robot", b"RobotNode"], b"Joint") => {
                    joint_type = attr(&e, "type").unwrap_or_default();
                }
                ([b"Robot", b"RobotNode", b"Joint"], b"axis") => {
                    let mut a = [0.0; 3];
                    for (v, k) in a.iter_mut().zip(["x", "y", "z"]) {
                        *v = num(&e, k, &what).map_err(&err)?;
                    }
                    let n = super::math::norm(&a);
                    if n < 1e-9 {
                        return Err(err(format!("{what}: zero rotation axis")));
                    }
                    if joint_type == "revolute" {
                        if let Some(r) = node.as_ref().and_then(|n| raw.get_mut(n)) {
                            r.dof = Dof::Revolute(super::math::scale(&a, 1.0 / n));
                        }
                    }
                }
                ([b"Robot", b"RobotNode"], b"Child") => {
                    let c = attr(&e, "name")
                        .ok_or_else(|| err(format!("{what}: <Child> without a name")))?;
                    if let Some(r) = node.as_ref().and_then(|n| raw.get_mut(n)) {
                        r.children.push(c);
                    }
                }
                _ => {}
            }
            if !empty {
                path.push(name);
            }
        }
        if !path.is_empty() {
            return Err(format!(
                "{source}: truncated file: the document ends inside an open element"
            ));
        }
        let root = root.ok_or_else(|| format!("{source}: <Robot> has no RootNode attribute"))?;
        let mut sk = Skeleton { nodes: vec![] };
        let mut stack = vec![(root, None::<usize>)];
        while let Some((name, parent)) = stack.pop() {
            let r = raw.remove(&name).ok_or_else(|| match sk.index(&name) {
                Some(_) => {
                    format!("{source}: node {name} is reached twice (a cycle or a shared child)")
                }
                None => format!("{source}: node {name} is named as a child but not defined"),
            })?;
            let i = sk.nodes.len();
            sk.nodes.push(Node {
                name,
                rotation: r.rotation,
                translation: r.translation,
                dof: r.dof,
                parent,
                children: vec![],
            });
            if let Some(p) = parent {
                sk.nodes[p].children.push(i);
            }
            for c in r.children.into_iter().rev() {
                stack.push((c, Some(i)));
            }
        }
        Ok(sk)
    }

    /// The same skeleton without `name` and its subtree.
    pub fn without(&self, name: &str) -> Result<Skeleton, String> {
        let i = self.index(name).ok_or_else(|| format!("no node {name}"))?;
        let mut drop = vec![false; self.nodes.len()];
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            drop[n] = true;
            stack.extend(&self.nodes[n].children);
        }
        Ok(self.rebuild(|n| !drop[n]))
    }

    /// The same skeleton with `name` and its subtree from `other` hung under `onto`.
    pub fn graft(&self, other: &Skeleton, name: &str, onto: &str) -> Result<Skeleton, String> {
        let i = other
            .index(name)
            .ok_or_else(|| format!("no node {name} to graft"))?;
        let mut out = self.clone();
        let mut stack = vec![(
            i,
            self.index(onto).ok_or_else(|| format!("no node {onto}"))?,
        )];
        while let Some((n, parent)) = stack.pop() {
            let src = &other.nodes[n];
            if out.index(&src.name).is_some() {
                return Err(format!("node {} is already in the skeleton", src.name));
            }
            let j = out.nodes.len();
            out.nodes.push(Node {
                parent: Some(parent),
                children: vec![],
                ..src.clone()
            });
            out.nodes[parent].children.push(j);
            for &c in src.children.iter().rev() {
                stack.push((c, j));
            }
        }
        Ok(out.rebuild(|_| true))
    }

    /// The same skeleton with `node` (no children) added under `onto`.
    pub fn attach(&self, node: Node, onto: &str) -> Result<Skeleton, String> {
        let p = self.index(onto).ok_or_else(|| format!("no node {onto}"))?;
        let mut out = self.clone();
        let j = out.nodes.len();
        out.nodes.push(Node {
            parent: Some(p),
            children: vec![],
            ..node
        });
        out.nodes[p].children.push(j);
        Ok(out.rebuild(|_| true))
    }

    /// Keep the nodes `keep` accepts, renumbered in depth-first order.
    fn rebuild(&self, keep: impl Fn(usize) -> bool) -> Skeleton {
        let mut out = Skeleton { nodes: vec![] };
        if self.nodes.is_empty() {
            return out;
        }
        let mut stack = vec![(0usize, None::<usize>)];
        while let Some((n, parent)) = stack.pop() {
            if !keep(n) {
                continue;
            }
            let j = out.nodes.len();
            out.nodes.push(Node {
                parent,
                children: vec![],
                ..self.nodes[n].clone()
            });
            if let Some(p) = parent {
                out.nodes[p].children.push(j);
            }
            for &c in self.nodes[n].children.iter().rev() {
                stack.push((c, Some(j)));
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::joints::KIT_JOINTS;

    /// Rest-pose height of a node above the model origin (mm, 1 m subject).
    fn rest(sk: &Skeleton, name: &str) -> Vec3 {
        let mut i = sk.index(name).unwrap_or_else(|| panic!("no {name}"));
        let mut chain = vec![];
        loop {
            chain.push(i);
            match sk.nodes[i].parent {
                Some(p) => i = p,
                None => break,
            }
        }
        let mut r = IDENTITY;
        let mut p = [0.0; 3];
        for &n in chain.iter().rev() {
            let node = &sk.nodes[n];
            p = super::super::math::add(&p, &super::super::math::apply(&r, &node.translation));
            r = super::super::math::mul(&r, &node.rotation);
        }
        p
    }

    #[test]
    fn plappert_is_one_metre_tall_and_language2pose_is_not() {
        let p = Skeleton::parse(PLAPPERT, "p").unwrap();
        let l = Skeleton::parse(LANGUAGE2POSE, "l").unwrap();
        let height =
            |sk: &Skeleton| rest(sk, "HeadSegment_joint")[2] - rest(sk, "LeftFootHeight_joint")[2];
        assert!((height(&p) - 1000.0).abs() < 1e-9, "{}", height(&p));
        assert!((height(&l) - 1122.0).abs() < 1e-9, "{}", height(&l));
        // Hips at 0.530, shoulders at 0.818 of the height above the sole (Winter).
        let sole = rest(&p, "LeftFootHeight_joint")[2];
        assert!((rest(&p, "LHx_joint")[2] - sole - 530.0).abs() < 1e-9);
        assert!((rest(&p, "LSx_joint")[2] - sole - 818.0).abs() < 1e-9);
    }

    #[test]
    fn the_body_has_every_kit_joint_once_as_a_revolute() {
        let sk = Skeleton::mmm();
        for j in KIT_JOINTS {
            let hits: Vec<&Node> = sk.nodes.iter().filter(|n| n.name == j).collect();
            assert_eq!(hits.len(), 1, "{j}");
            assert!(matches!(hits[0].dof, Dof::Revolute(_)), "{j}");
        }
        // The grafted feet: LMrot under the ankle, LFx under LMrot, a toe tip under LFx.
        for s in ["L", "R"] {
            let m = sk.index(&format!("{s}Mrot_joint")).unwrap();
            assert_eq!(
                sk.nodes[sk.nodes[m].parent.unwrap()].name,
                format!("{s}Ay_joint")
            );
            let f = sk.index(&format!("{s}Fx_joint")).unwrap();
            assert_eq!(sk.nodes[f].parent, Some(m));
            let t = sk.index(&format!("{s}ToeTip_joint")).unwrap();
            assert_eq!(sk.nodes[t].parent, Some(f));
            assert!(rest(&sk, &format!("{s}ToeTip_joint"))[1] > 100.0);
        }
        // Parents come before children.
        for (i, n) in sk.nodes.iter().enumerate() {
            assert!(n.parent.is_none_or(|p| p < i));
        }
    }

    #[test]
    fn broken_models_are_refused_with_the_place() {
        let e = Skeleton::parse(
            "<Robot RootNode='a'><RobotNode name='a'><Child name='b'/></RobotNode></Robot>",
            "m.xml",
        )
        .unwrap_err();
        assert!(
            e.contains("m.xml") && e.contains("b") && e.contains("not defined"),
            "{e}"
        );
        let e = Skeleton::parse(
            "<Robot RootNode='a'>\n<RobotNode name='a'><Transform><Matrix4x4><row1 c1='x' c2='0' c3='0' c4='0'/></Matrix4x4></Transform></RobotNode></Robot>",
            "m.xml",
        )
        .unwrap_err();
        assert!(e.contains("line 2") && e.contains("c1='x'"), "{e}");
        let e = Skeleton::parse("<Robot><RobotNode name='a'/></Robot>", "m.xml").unwrap_err();
        assert!(e.contains("RootNode"), "{e}");
        assert!(Skeleton::parse("<Robot RootNode='a'><RobotNode name='a'>", "m.xml").is_err());
    }
}

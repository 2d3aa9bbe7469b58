//! Streaming MMM reader: a pull parser over the file's bytes (no DOM). Every error
//! says where: line, frame index and element.

use std::fmt;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::Motion;

/// Which optional per-frame channels to read (root position/rotation and joint
/// positions are always read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub joint_velocity: bool,
    pub joint_acceleration: bool,
}

/// Where and why a file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    pub line: Option<u64>,
    /// 0-based index of the `<MotionFrame>`.
    pub frame: Option<usize>,
    pub element: Option<String>,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(fr) = self.frame {
            parts.push(format!("frame {fr}"));
        }
        if let Some(e) = &self.element {
            parts.push(format!("<{e}>"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.reason)
        }
    }
}

/// The per-frame leaf being read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    Timestep,
    RootPosition,
    RootRotation,
    JointPosition,
    JointVelocity,
    JointAcceleration,
    Height,
    Mass,
    /// Present but not read.
    Skip,
}

impl Leaf {
    fn name(self) -> &'static str {
        match self {
            Leaf::Timestep => "Timestep",
            Leaf::RootPosition => "RootPosition",
            Leaf::RootRotation => "RootRotation",
            Leaf::JointPosition => "JointPosition",
            Leaf::JointVelocity => "JointVelocity",
            Leaf::JointAcceleration => "JointAcceleration",
            Leaf::Height => "Height",
            Leaf::Mass => "Mass",
            Leaf::Skip => "?",
        }
    }
}

/// Read and parse one file.
pub fn read_file(path: &Path, channels: Channels) -> Result<Motion, ParseError> {
    let bytes = std::fs::read(path).map_err(|e| ParseError {
        line: None,
        frame: None,
        element: None,
        reason: format!("cannot read: {e}"),
    })?;
    parse(&bytes, channels)
}

struct State<'m> {
    m: &'m mut Motion,
    channels: Channels,
    depth: usize,
    in_config: bool,
    in_joint_order: bool,
    in_frames: bool,
    frame: Option<usize>,
    leaf: Option<Leaf>,
    leaf_seen: [bool; 6],
    saw_joint_order: bool,
    saw_motion: bool,
    motion_depth: Option<usize>,
    /// Nesting inside a per-frame element that is not read.
    skip_depth: usize,
    nums: Vec<f64>,
}

/// Parse MMM XML from memory.
///
/// The frames, which are nearly all of a file, are first read by a scanner that
/// accepts only their regular layout (`<MotionFrame>` holding `<Name>values</Name>`
/// elements, ASCII, no attributes, comments or entities); anything else, including
/// every error, makes it give up, and the file is read again by the general
/// pull parser alone, which accepts any well-formed layout and says where a file
/// is wrong. Both give the same `Motion` (tested, and fuzzed).
pub fn parse(bytes: &[u8], channels: Channels) -> Result<Motion, ParseError> {
    match parse_impl(bytes, channels, true) {
        Some(r) => r,
        None => parse_general(bytes, channels),
    }
}

/// The general pull parser alone (what `parse` falls back to).
pub fn parse_general(bytes: &[u8], channels: Channels) -> Result<Motion, ParseError> {
    parse_impl(bytes, channels, false).unwrap_or_else(|| {
        Err(ParseError {
            line: None,
            frame: None,
            element: None,
            reason: "internal error: the general parser gave up".into(),
        })
    })
}

/// `None`: the fast frame scanner met something irregular (only when `fast`).
fn parse_impl(bytes: &[u8], channels: Channels, fast: bool) -> Option<Result<Motion, ParseError>> {
    let mut motion = Motion::default();
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut st = State {
        m: &mut motion,
        channels,
        depth: 0,
        in_config: false,
        in_joint_order: false,
        in_frames: false,
        frame: None,
        leaf: None,
        leaf_seen: [false; 6],
        saw_joint_order: false,
        saw_motion: false,
        motion_depth: None,
        skip_depth: 0,
        nums: Vec::with_capacity(64),
    };
    let line_at = |pos: u64| -> u64 {
        let end = (pos as usize).min(bytes.len());
        1 + bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64
    };
    // Bytes consumed by the fast frame scanner, which the reader's positions omit.
    let mut skipped = 0u64;
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                let at_end = (reader.buffer_position() + skipped) as usize >= bytes.len();
                return Some(Err(ParseError {
                    line: Some(line_at(reader.error_position() + skipped)),
                    frame: st.frame,
                    element: st
                        .leaf
                        .filter(|l| *l != Leaf::Skip)
                        .map(|l| l.name().to_string()),
                    reason: if at_end {
                        format!("truncated file: malformed XML at the end of input: {e}")
                    } else {
                        format!("malformed XML: {e}")
                    },
                }));
            }
        };
        let pos = reader.buffer_position() + skipped;
        let res = match ev {
            Event::Start(e) => {
                st.depth += 1;
                let r = st.start(&e, false);
                if fast
                    && r.is_ok()
                    && st.in_frames
                    && st.frame.is_none()
                    && st.leaf.is_none()
                    && e.local_name().into_inner().as_bytes() == b"MotionFrames"
                {
                    // Hand the frames to the fast scanner; the reader goes on at
                    // `</MotionFrames>`.
                    let from = pos as usize;
                    let n = fast_frames(&bytes[from..], &mut st)?;
                    *reader.get_mut() = &bytes[from + n..];
                    skipped += n as u64;
                }
                r
            }
            Event::Empty(e) => st.start(&e, true),
            Event::End(e) => {
                let r = st.end(e.local_name().into_inner().as_bytes());
                st.depth = st.depth.saturating_sub(1);
                r
            }
            Event::Text(t) => st.text(t[..].as_bytes()),
            Event::CData(t) => st.text(t[..].as_bytes()),
            Event::GeneralRef(_) if st.leaf.is_some_and(|l| l != Leaf::Skip) => {
                Err("unexpected entity reference in a numeric element".to_string())
            }
            Event::Eof => break,
            _ => Ok(()),
        };
        if let Err(reason) = res {
            return Some(Err(ParseError {
                line: Some(line_at(pos)),
                frame: st.frame,
                element: st
                    .leaf
                    .filter(|l| *l != Leaf::Skip)
                    .map(|l| l.name().to_string()),
                reason,
            }));
        }
    }
    let end_err = |reason: String| ParseError {
        line: Some(line_at(bytes.len() as u64)),
        frame: None,
        element: None,
        reason,
    };
    if st.depth != 0 {
        return Some(Err(end_err(
            "truncated file: the document ends inside an open element".into(),
        )));
    }
    if !st.saw_motion {
        return Some(Err(end_err("no <Motion> element".into())));
    }
    if !st.saw_joint_order {
        return Some(Err(end_err("missing <JointOrder>".into())));
    }
    if motion.timesteps.is_empty() {
        return Some(Err(end_err("empty <MotionFrames>: no frames".into())));
    }
    Some(Ok(motion))
}

/// XML whitespace.
fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The frames of `<MotionFrames>` (`s` starts right after its start tag) in their
/// regular layout: the number of bytes read, up to `</MotionFrames>`, or `None` at
/// the first thing that is not regular or not valid (the caller then starts over
/// with the general parser, which handles or reports it).
fn fast_frames(s: &[u8], st: &mut State<'_>) -> Option<usize> {
    const FRAME: &[u8] = b"<MotionFrame>";
    const FRAME_END: &[u8] = b"</MotionFrame>";
    let mut i = 0;
    let mut first_end = 0;
    loop {
        i = skip_ws(s, i);
        let r = &s[i..];
        if r.starts_with(b"</MotionFrames>") {
            return Some(i);
        }
        if !r.starts_with(FRAME) {
            return None;
        }
        i += FRAME.len();
        st.begin_frame();
        loop {
            i = skip_ws(s, i);
            let r = &s[i..];
            if r.starts_with(FRAME_END) {
                i += FRAME_END.len();
                st.end_frame().ok()?;
                // Size the frame arrays once from the length of frames 1 and 2 (frame
                // 0 is often shorter: zero velocities), rather than growing them by
                // reallocation and copying (~9 % of extraction time).
                match st.m.timesteps.len() {
                    1 => first_end = i,
                    3 => {
                        let left = (s.len() - i) / ((i - first_end) / 2).max(1);
                        st.reserve_frames(left + left / 20);
                    }
                    _ => {}
                }
                break;
            }
            // `<Name>`: letters, digits, `_` only (no attributes, prefixes, `/`, `!`, `?`).
            if r.first() != Some(&b'<') {
                return None;
            }
            let close = 1 + memchr::memchr(b'>', &r[1..])?;
            let name = &r[1..close];
            if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                return None;
            }
            let start = i + close + 1;
            let end = start + memchr::memchr(b'<', &s[start..])?;
            let content = &s[start..end];
            if !content.is_ascii() || memchr::memchr(b'&', content).is_some() {
                return None;
            }
            let leaf = st.frame_leaf(name);
            st.nums.clear();
            st.leaf = Some(leaf);
            if leaf != Leaf::Skip {
                st.text(content).ok()?;
            }
            // `</Name>`
            let r = &s[end..];
            let n = name.len();
            if r.len() < n + 3 || r[1] != b'/' || &r[2..2 + n] != name || r[2 + n] != b'>' {
                return None;
            }
            i = end + n + 3;
            st.finish_leaf().ok()?;
            st.leaf = None;
        }
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.to_string())
    })
}

impl State<'_> {
    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), String> {
        let name = e.local_name().into_inner().as_bytes();
        if self.leaf == Some(Leaf::Skip) {
            if !empty {
                self.skip_depth += 1;
            }
            return Ok(());
        }
        if self.frame.is_some() {
            if self.leaf.is_some() {
                return Err(format!(
                    "unexpected element <{}> inside a value",
                    String::from_utf8_lossy(name)
                ));
            }
            let leaf = self.frame_leaf(name);
            if empty {
                // `<JointPosition/>`: no values at all.
                self.nums.clear();
                self.leaf = Some(leaf);
                self.finish_leaf()?;
                self.leaf = None;
                return Ok(());
            }
            self.nums.clear();
            self.leaf = Some(leaf);
            return Ok(());
        }
        match name {
            b"Motion" => {
                if self.saw_motion {
                    return Err("more than one <Motion> in the file; only one is supported".into());
                }
                self.saw_motion = true;
                self.motion_depth = Some(self.depth);
                self.m.name = attr(e, "name").unwrap_or_default();
            }
            b"ModelProcessorConfig" if !empty => self.in_config = true,
            b"Height" | b"Mass" if self.in_config && !empty => {
                self.nums.clear();
                self.leaf = Some(if name == b"Height" {
                    Leaf::Height
                } else {
                    Leaf::Mass
                });
            }
            b"JointOrder" => {
                if self.saw_joint_order {
                    return Err("more than one <JointOrder>".into());
                }
                self.saw_joint_order = true;
                self.in_joint_order = !empty;
            }
            b"Joint" if self.in_joint_order => {
                let Some(n) = attr(e, "name") else {
                    return Err("<Joint> without a name attribute in <JointOrder>".into());
                };
                self.m.joint_names.push(n);
            }
            b"MotionFrames" if !empty => {
                if !self.saw_joint_order {
                    return Err(
                        "<MotionFrames> before <JointOrder>: the joint order is missing".into(),
                    );
                }
                self.in_frames = true;
            }
            b"MotionFrame" if self.in_frames => {
                self.begin_frame();
                if empty {
                    return self.end_frame();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What a per-frame element named `name` is (unknown ones are noted and skipped).
    fn frame_leaf(&mut self, name: &[u8]) -> Leaf {
        match name {
            b"Timestep" => Leaf::Timestep,
            b"RootPosition" => Leaf::RootPosition,
            b"RootRotation" => Leaf::RootRotation,
            b"JointPosition" => Leaf::JointPosition,
            b"JointVelocity" if self.channels.joint_velocity => Leaf::JointVelocity,
            b"JointAcceleration" if self.channels.joint_acceleration => Leaf::JointAcceleration,
            b"JointVelocity" | b"JointAcceleration" => Leaf::Skip,
            other => {
                let n = String::from_utf8_lossy(other).to_string();
                if !self.m.other_elements.contains(&n) {
                    self.m.other_elements.push(n);
                }
                Leaf::Skip
            }
        }
    }

    fn text(&mut self, t: &[u8]) -> Result<(), String> {
        let Some(leaf) = self.leaf else { return Ok(()) };
        if leaf == Leaf::Skip {
            return Ok(());
        }
        // Hot loop (SIMD where the CPU has it): numbers appended in place.
        super::num::parse_list(t, &mut self.nums)
    }

    fn end(&mut self, name: &[u8]) -> Result<(), String> {
        if self.skip_depth > 0 {
            self.skip_depth -= 1;
            return Ok(());
        }
        if self.leaf.is_some() {
            // On error the leaf stays set, so the error names the element.
            self.finish_leaf()?;
            self.leaf = None;
            return Ok(());
        }
        match name {
            b"MotionFrame" if self.frame.is_some() => self.end_frame(),
            b"MotionFrames" => {
                self.in_frames = false;
                Ok(())
            }
            b"JointOrder" => {
                self.in_joint_order = false;
                if self.m.joint_names.is_empty() {
                    return Err("empty <JointOrder>".into());
                }
                Ok(())
            }
            b"ModelProcessorConfig" => {
                self.in_config = false;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish_leaf(&mut self) -> Result<(), String> {
        let Some(leaf) = self.leaf else { return Ok(()) };
        let j = self.m.joint_names.len();
        let want = |n: usize, nums: &[f64]| -> Result<(), String> {
            if nums.len() != n {
                Err(format!("expected {n} values, found {}", nums.len()))
            } else {
                Ok(())
            }
        };
        let slot = match leaf {
            Leaf::Timestep => 0,
            Leaf::RootPosition => 1,
            Leaf::RootRotation => 2,
            Leaf::JointPosition => 3,
            Leaf::JointVelocity => 4,
            Leaf::JointAcceleration => 5,
            Leaf::Height | Leaf::Mass => {
                want(1, &self.nums)?;
                let v = self.nums[0];
                if v <= 0.0 {
                    return Err(format!("must be positive, found {v}"));
                }
                if leaf == Leaf::Height {
                    self.m.height_m = Some(v);
                } else {
                    self.m.mass_kg = Some(v);
                }
                return Ok(());
            }
            Leaf::Skip => return Ok(()),
        };
        if self.leaf_seen[slot] {
            return Err("appears twice in one frame".into());
        }
        self.leaf_seen[slot] = true;
        match leaf {
            Leaf::Timestep => {
                want(1, &self.nums)?;
                if let Some(&prev) = self.m.timesteps.last() {
                    if self.nums[0] <= prev {
                        return Err(format!(
                            "timestep {} does not increase (previous {prev})",
                            self.nums[0]
                        ));
                    }
                }
                self.m.timesteps.push(self.nums[0]);
            }
            Leaf::RootPosition => {
                want(3, &self.nums)?;
                self.m
                    .root_position
                    .push([self.nums[0], self.nums[1], self.nums[2]]);
            }
            Leaf::RootRotation => {
                want(3, &self.nums)?;
                self.m
                    .root_rotation
                    .push([self.nums[0], self.nums[1], self.nums[2]]);
            }
            Leaf::JointPosition => {
                want(j, &self.nums).map_err(|e| format!("{e} (one per joint of <JointOrder>)"))?;
                self.m.joint_position.extend_from_slice(&self.nums);
            }
            Leaf::JointVelocity => {
                want(j, &self.nums)?;
                self.m
                    .joint_velocity
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&self.nums);
            }
            Leaf::JointAcceleration => {
                want(j, &self.nums)?;
                self.m
                    .joint_acceleration
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&self.nums);
            }
            _ => {}
        }
        Ok(())
    }

    /// Room for `more` frames beyond those read.
    fn reserve_frames(&mut self, more: usize) {
        let j = self.m.joint_names.len();
        self.m.timesteps.reserve(more);
        self.m.root_position.reserve(more);
        self.m.root_rotation.reserve(more);
        self.m.joint_position.reserve(more * j);
        for v in [&mut self.m.joint_velocity, &mut self.m.joint_acceleration]
            .into_iter()
            .flatten()
        {
            v.reserve(more * j);
        }
    }

    /// A `<MotionFrame>` starts: its index, and none of its elements seen yet.
    fn begin_frame(&mut self) {
        self.frame = Some(self.m.timesteps.len());
        self.leaf_seen = [false; 6];
    }

    fn end_frame(&mut self) -> Result<(), String> {
        let required = [
            (0, "Timestep"),
            (1, "RootPosition"),
            (2, "RootRotation"),
            (3, "JointPosition"),
            (4, "JointVelocity"),
            (5, "JointAcceleration"),
        ];
        for (slot, name) in required {
            let needed = match slot {
                4 => self.channels.joint_velocity,
                5 => self.channels.joint_acceleration,
                _ => true,
            };
            if needed && !self.leaf_seen[slot] {
                return Err(format!("frame has no <{name}>"));
            }
        }
        self.frame = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<MMM><Motion name='m'><ModelProcessorConfig><Height>1.8</Height><Mass>70</Mass></ModelProcessorConfig><JointOrder><Joint name='a_joint'/><Joint name='b_joint'/></JointOrder><MotionFrames>\n";
    const FRAME: &str = "<MotionFrame><Timestep>@T@</Timestep><RootPosition>1 2 3</RootPosition><RootRotation>0 0 1.5</RootRotation><JointPosition>0.1 0.2</JointPosition><JointVelocity>0 0</JointVelocity></MotionFrame>\n";

    fn doc(frames: &[&str]) -> String {
        let mut s = HEADER.to_string();
        for (i, f) in frames.iter().enumerate() {
            s.push_str(&f.replace("@T@", &format!("{}", i as f64 * 0.01)));
        }
        s.push_str("</MotionFrames></Motion></MMM>\n");
        s
    }

    #[test]
    fn reads_a_small_document() {
        let m = parse(doc(&[FRAME, FRAME]).as_bytes(), Channels::default()).expect("valid");
        assert_eq!(m.frames(), 2);
        assert_eq!(m.joint_names, ["a_joint", "b_joint"]);
        assert_eq!(m.height_m, Some(1.8));
        assert_eq!(m.joint_position, vec![0.1, 0.2, 0.1, 0.2]);
        assert_eq!(m.root_rotation[1], [0.0, 0.0, 1.5]);
        assert_eq!(m.joint_velocity, None);
        let v = parse(
            doc(&[FRAME]).as_bytes(),
            Channels {
                joint_velocity: true,
                joint_acceleration: false,
            },
        )
        .expect("valid");
        assert_eq!(v.joint_velocity, Some(vec![0.0, 0.0]));
    }

    #[test]
    fn the_fast_frame_scanner_reads_like_the_general_parser() {
        let all = Channels {
            joint_velocity: true,
            joint_acceleration: true,
        };
        let regular = doc(&[FRAME, FRAME, FRAME]);
        // Layouts the scanner leaves to the general parser, valid or not.
        let variants = [
            regular.clone(),
            regular.replace('\n', "\r\n"),
            regular.replace(
                "<Timestep>0.01</Timestep>",
                "<!-- c --><Timestep>0.01</Timestep>",
            ),
            regular.replace("<RootPosition>", "<RootPosition unit='mm'>"),
            regular.replace("<JointVelocity>0 0</JointVelocity>", "<JointVelocity/>"),
            regular.replace("<JointVelocity>0 0</JointVelocity>", "<CoM>1 2 3</CoM>"),
            regular.replace("<JointVelocity>0 0</JointVelocity>", "<CoM><x>1</x></CoM>"),
            regular.replace(
                "<JointVelocity>0 0</JointVelocity>",
                "<JointVelocity>0 &amp; 0</JointVelocity>",
            ),
            regular.replace("1 2 3", "1 2 3 4"),
            regular.replace("1 2 3", "1 &#50; 3"),
            regular.replace("0.1 0.2", "<![CDATA[0.1 0.2]]>"),
            regular.replace("0 0 1.5", "0 0 1,5"),
            regular.replace("0 0 1.5", "0 0 1.5é"),
            regular.replace("<MotionFrame>", "<MotionFrame >"),
            regular.replace("</MotionFrames>", "</MotionFrames >"),
            regular.replace("</Timestep>", "</Timestep >"),
            regular.replacen("<MotionFrame>", "<MotionFrame/><MotionFrame>", 1),
            regular.replace("</Motion></MMM>", "</Motion>"),
            regular.replace("</MotionFrames></Motion>", "</MotionFrames></Motio>"),
            regular.replace("</MotionFrames>", ""),
            regular[..regular.len() - 60].to_string(),
        ];
        // The regular layout takes the fast path; a comment among the frames does not.
        assert!(parse_impl(regular.as_bytes(), Channels::default(), true).is_some());
        assert!(parse_impl(variants[2].as_bytes(), Channels::default(), true).is_none());
        for (i, v) in variants.iter().enumerate() {
            for ch in [Channels::default(), all] {
                assert_eq!(
                    parse(v.as_bytes(), ch),
                    parse_general(v.as_bytes(), ch),
                    "variant {i}"
                );
            }
        }
        // And an error after the frames still gets the right line.
        let late = regular.replace("</Motion></MMM>", "</Motion></MMX>");
        let err = parse(late.as_bytes(), Channels::default()).expect_err("mismatched end");
        assert_eq!(err.line, Some(5), "{err}");
    }

    #[test]
    fn bad_documents_say_where() {
        let cases: Vec<(String, &str)> = vec![
            (
                doc(&[FRAME, &FRAME.replace("0.1 0.2", "0.1")]),
                "line 3, frame 1, <JointPosition>: expected 2 values, found 1",
            ),
            (
                doc(&[&FRAME.replace("1 2 3", "1 nan 3")]),
                "frame 0, <RootPosition>: non-finite value `nan`",
            ),
            (
                doc(&[&FRAME.replace("1 2 3", "1 inf 3")]),
                "non-finite value `inf`",
            ),
            (
                doc(&[&FRAME.replace("1 2 3", "1 x2 3")]),
                "non-numeric value `x2`",
            ),
            (doc(&[]), "empty <MotionFrames>"),
            (doc(&[FRAME])[..200].to_string(), "truncated"),
            (
                doc(&[FRAME, FRAME])
                    .split_inclusive("</MotionFrame>")
                    .next()
                    .unwrap_or("")
                    .to_string(),
                "truncated file: the document ends inside",
            ),
            (
                doc(&[FRAME]).replace(
                    "<JointOrder><Joint name='a_joint'/><Joint name='b_joint'/></JointOrder>",
                    "",
                ),
                "joint order is missing",
            ),
            (
                doc(&[&FRAME.replace("<Timestep>@T@</Timestep>", "")]),
                "frame has no <Timestep>",
            ),
            (
                doc(&[FRAME, FRAME]).replace("<Timestep>0.01</Timestep>", "<Timestep>0</Timestep>"),
                "does not increase",
            ),
            (
                doc(&[FRAME]).replace("</RootPosition>", "</RootPositio>"),
                "malformed XML",
            ),
            (
                doc(&[FRAME]).replace("<Height>1.8</Height>", "<Height>0</Height>"),
                "must be positive",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text.as_bytes(), Channels::default())
                .expect_err(want)
                .to_string();
            assert!(err.contains(want), "wanted `{want}`, got `{err}`");
        }
    }
}

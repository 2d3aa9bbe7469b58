//! Stick-figure previews of a motion on the MMM body: a PNG contact sheet (frames
//! side by side, ground grid, root trajectory, the prompt as caption) and a GIF
//! animation. Drawing with tiny-skia (anti-aliased), text with embedded-graphics'
//! bitmap fonts, GIF encoding with the `gif` crate. Knows nothing about scheduling.
//!
//! Camera: orthographic, 15° above the horizon, 60° to the subject's right of the
//! direction it faces in the first frame, so both its front and its side show;
//! it follows the root (the ground grid and the root's path on it show the travel),
//! at one scale for every frame. Left limbs are blue, right limbs red, the trunk
//! dark grey.

use std::convert::Infallible;

use anyhow::Context;
use embedded_graphics::mono_font::{ascii::FONT_7X13, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};
use pipe_kit::body::bvh::Hierarchy;
use pipe_kit::body::math::{self, cross, dot, Vec3};
use pipe_kit::body::{forward, BodyMotion, Skeleton};
use rayon::prelude::*;
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Stroke, Transform};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
    Centre,
}

/// A motion ready to draw: the points of the body per frame (mm, z up).
pub struct Preview {
    names: Vec<String>,
    parents: Vec<Option<usize>>,
    side: Vec<Side>,
    /// frames × points.
    points: Vec<Vec3>,
    root: Vec<Vec3>,
    fps: f64,
    caption: String,
    /// Camera basis: screen right, screen up.
    right: Vec3,
    up: Vec3,
    depth: Vec3,
    /// [`Preview::reach`], computed once.
    reach: (f64, f64, f64),
}

/// Sizes of the outputs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Panels of the contact sheet.
    pub panels: usize,
    pub panel_w: u32,
    pub panel_h: u32,
    /// GIF frame size and rate (the motion is subsampled to at most this rate).
    pub gif_w: u32,
    pub gif_h: u32,
    pub gif_fps: f64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            panels: 8,
            panel_w: 180,
            panel_h: 240,
            gif_w: 240,
            gif_h: 280,
            gif_fps: 10.0,
        }
    }
}

const CAPTION_H: u32 = 22;
const LABEL_H: u32 = 16;

fn side_of(name: &str) -> Side {
    let b = name.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(b'L'), Some(c)) if c.is_ascii_uppercase() => Side::Left,
        (Some(b'R'), Some(c)) if c.is_ascii_uppercase() => Side::Right,
        _ => Side::Centre,
    }
}

fn normalise(v: Vec3) -> Vec3 {
    let n = math::norm(&v);
    if n > 1e-12 {
        math::scale(&v, 1.0 / n)
    } else {
        [0.0, 1.0, 0.0]
    }
}

impl Preview {
    /// Forward kinematics of a checked motion on `sk`.
    pub fn new(sk: &Skeleton, m: &BodyMotion, caption: &str) -> Preview {
        let h = Hierarchy::new(sk);
        let poses = forward(sk, m);
        let points = h.points(&poses);
        let names = h.point_names();
        let side = names.iter().map(|n| side_of(n)).collect();
        let r0 = math::rpy(&m.root_rotation[0]);
        let facing = math::apply(&r0, &[0.0, 1.0, 0.0]);
        let facing = normalise([facing[0], facing[1], 0.0]);
        let to_right = normalise(cross(&facing, &[0.0, 0.0, 1.0]));
        let (az, el) = (60f64.to_radians(), 15f64.to_radians());
        // Horizontal direction from the subject to the camera.
        let d = normalise(math::add(
            &math::scale(&facing, az.cos()),
            &math::scale(&to_right, az.sin()),
        ));
        let view = normalise(math::add(
            &math::scale(&d, -el.cos()),
            &[0.0, 0.0, -el.sin()],
        ));
        let right = normalise(cross(&view, &[0.0, 0.0, 1.0]));
        let up = cross(&right, &view);
        let mut p = Preview {
            parents: h.point_parents(),
            names,
            side,
            points,
            root: m.root_position.clone(),
            fps: m.fps,
            caption: caption.to_string(),
            right,
            up,
            depth: view,
            reach: (1.0, 1.0, 0.0),
        };
        p.reach = p.reach();
        p
    }

    pub fn frames(&self) -> usize {
        self.root.len()
    }

    fn n(&self) -> usize {
        self.names.len()
    }

    fn project(&self, p: &Vec3) -> (f64, f64) {
        (dot(p, &self.right), dot(p, &self.up))
    }

    /// Largest sideways and upward reach of the body from the ground point under the
    /// root (screen mm), over all frames: one scale for the whole motion.
    fn reach(&self) -> (f64, f64, f64) {
        let n = self.n();
        let (mut side, mut up, mut down) = (1.0f64, 1.0f64, 0.0f64);
        for f in 0..self.frames() {
            let g = self.root[f];
            let (gu, gw) = self.project(&[g[0], g[1], 0.0]);
            for p in &self.points[f * n..(f + 1) * n] {
                let (u, w) = self.project(p);
                side = side.max((u - gu).abs());
                up = up.max(w - gw);
                down = down.max(gw - w);
            }
        }
        (side, up, down)
    }

    /// World (mm) → pixels of a `w × h` box at (`x0`, `y0`): the camera follows the
    /// root, with the ground under it low in the box and one scale for every frame.
    fn fit(
        &self,
        frame: usize,
        x0: f32,
        y0: f32,
        w: f32,
        h: f32,
    ) -> impl Fn(&Vec3) -> (f32, f32) + '_ {
        let (side, up, down) = self.reach;
        let s = ((w as f64 * 0.42) / side).min((h as f64 * 0.8) / (up + down));
        let g = self.root[frame];
        let (gu, gw) = self.project(&[g[0], g[1], 0.0]);
        let base = y0 as f64 + h as f64 * 0.9 - down * s;
        move |p: &Vec3| {
            let (u, v) = self.project(p);
            (
                x0 + w / 2.0 + ((u - gu) * s) as f32,
                (base - (v - gw) * s) as f32,
            )
        }
    }

    fn draw_scene(&self, pm: &mut Pixmap, frame: usize, x0: f32, y0: f32, w: f32, h: f32) {
        let to_px = self.fit(frame, x0, y0, w, h);
        // Everything stays inside the box.
        let mut clip = tiny_skia::Mask::new(pm.width(), pm.height());
        if let (Some(clip), Some(r)) = (clip.as_mut(), tiny_skia::Rect::from_xywh(x0, y0, w, h)) {
            clip.fill_path(
                &PathBuilder::from_rect(r),
                FillRule::Winding,
                false,
                Transform::identity(),
            );
        }
        let clip = clip.as_ref();
        // Ground grid every 0.5 m, 2.5 m around the root.
        let g = self.root[frame];
        let step = 500.0;
        let (cx, cy) = ((g[0] / step).round() * step, (g[1] / step).round() * step);
        let span = 2500.0;
        let mut pb = PathBuilder::new();
        let mut k = -span;
        while k <= span + 1e-6 {
            line_to(
                &mut pb,
                to_px(&[cx + k, cy - span, 0.0]),
                to_px(&[cx + k, cy + span, 0.0]),
            );
            line_to(
                &mut pb,
                to_px(&[cx - span, cy + k, 0.0]),
                to_px(&[cx + span, cy + k, 0.0]),
            );
            k += step;
        }
        stroke(pm, pb, &paint(215, 215, 215), 1.0, clip);
        // Root path on the ground, up to this frame brighter.
        let mut all = PathBuilder::new();
        let mut done = PathBuilder::new();
        for f in 1..self.frames() {
            let a = to_px(&[self.root[f - 1][0], self.root[f - 1][1], 0.0]);
            let b = to_px(&[self.root[f][0], self.root[f][1], 0.0]);
            line_to(&mut all, a, b);
            if f <= frame {
                line_to(&mut done, a, b);
            }
        }
        stroke(pm, all, &paint(250, 205, 160), 1.5, clip);
        stroke(pm, done, &paint(235, 130, 30), 2.0, clip);
        dot_at(
            pm,
            to_px(&[g[0], g[1], 0.0]),
            3.0,
            &paint(235, 130, 30),
            clip,
        );
        // Bones, farthest first.
        let n = self.n();
        let pts = &self.points[frame * n..(frame + 1) * n];
        let mut bones: Vec<(f64, usize, usize)> = (0..n)
            .filter_map(|i| self.parents[i].map(|p| (i, p)))
            .map(|(i, p)| (dot(&math::add(&pts[i], &pts[p]), &self.depth), i, p))
            .collect();
        bones.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, i, p) in bones {
            let col = match self.side[i] {
                Side::Left => paint(40, 90, 220),
                Side::Right => paint(215, 45, 45),
                Side::Centre => paint(60, 60, 60),
            };
            let mut pb = PathBuilder::new();
            line_to(&mut pb, to_px(&pts[p]), to_px(&pts[i]));
            stroke(pm, pb, &col, 3.0, clip);
        }
        // Head: a circle between the neck's top joint and the head top.
        if let (Some(a), Some(b)) = (
            self.names.iter().position(|s| s == "BUN"),
            self.names.iter().position(|s| s == "BUN_end"),
        ) {
            let c = math::scale(&math::add(&pts[a], &pts[b]), 0.5);
            let (cx, cy) = to_px(&c);
            let (tx, ty) = to_px(&pts[b]);
            let rad = ((tx - cx).powi(2) + (ty - cy).powi(2)).sqrt().max(3.0);
            if let Some(circle) = PathBuilder::from_circle(cx, cy, rad) {
                pm.fill_path(
                    &circle,
                    &paint(255, 255, 255),
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
                pm.stroke_path(
                    &circle,
                    &paint(60, 60, 60),
                    &Stroke {
                        width: 2.5,
                        ..Stroke::default()
                    },
                    Transform::identity(),
                    clip,
                );
            }
        }
    }

    fn blank(w: u32, h: u32) -> anyhow::Result<Pixmap> {
        let mut pm = Pixmap::new(w, h).context("image size is zero")?;
        pm.fill(Color::WHITE);
        Ok(pm)
    }

    /// The frames the contact sheet shows: evenly spaced, first and last included.
    pub fn sheet_frames(&self, panels: usize) -> Vec<usize> {
        let t = self.frames();
        let k = panels.clamp(1, t);
        if k == 1 {
            return vec![0];
        }
        (0..k)
            .map(|i| (i * (t - 1) + (k - 1) / 2) / (k - 1))
            .collect()
    }

    /// The contact sheet as PNG bytes.
    pub fn contact_sheet(&self, s: &Sizes) -> anyhow::Result<Vec<u8>> {
        let frames = self.sheet_frames(s.panels);
        let w = s.panel_w * frames.len() as u32;
        let h = CAPTION_H + s.panel_h + LABEL_H;
        let mut pm = Self::blank(w, h)?;
        for (k, &f) in frames.iter().enumerate() {
            let x0 = (k as u32 * s.panel_w) as f32;
            self.draw_scene(
                &mut pm,
                f,
                x0,
                CAPTION_H as f32,
                s.panel_w as f32,
                s.panel_h as f32,
            );
            if k > 0 {
                let mut pb = PathBuilder::new();
                line_to(&mut pb, (x0, CAPTION_H as f32), (x0, (h - 2) as f32));
                stroke(&mut pm, pb, &paint(230, 230, 230), 1.0, None);
            }
            let label = format!("{:.2} s", f as f64 / self.fps);
            text(
                &mut pm,
                &label,
                x0 as i32 + 6,
                (CAPTION_H + s.panel_h) as i32,
                w,
            );
        }
        text(&mut pm, &self.caption_line(w), 6, 4, w);
        pm.encode_png().context("encoding the PNG")
    }

    fn caption_line(&self, w: u32) -> String {
        let max = (w.saturating_sub(12) / 7) as usize;
        let c: String = self.caption.chars().filter(|c| !c.is_control()).collect();
        if c.chars().count() <= max {
            c
        } else {
            c.chars().take(max.saturating_sub(3)).collect::<String>() + "..."
        }
    }

    /// The animation as GIF bytes (looping; subsampled to at most `gif_fps`).
    pub fn animation(&self, s: &Sizes) -> anyhow::Result<Vec<u8>> {
        let stride = ((self.fps / s.gif_fps).round() as usize).max(1);
        let delay = ((100.0 * stride as f64 / self.fps).round() as u16).max(2);
        let (w, h) = (s.gif_w, s.gif_h + CAPTION_H);
        // Frames are drawn, mapped to the palette and LZW-compressed in parallel,
        // then written in order.
        let palette = Palette::new();
        let frames: Vec<usize> = (0..self.frames()).step_by(stride).collect();
        let encoded = frames
            .par_iter()
            .map_init(
                Palette::new,
                |pal, &f| -> anyhow::Result<gif::Frame<'static>> {
                    let mut pm = Self::blank(w, h)?;
                    self.draw_scene(&mut pm, f, 0.0, CAPTION_H as f32, w as f32, s.gif_h as f32);
                    text(&mut pm, &self.caption_line(w), 6, 4, w);
                    let label = format!("{:.1} s", f as f64 / self.fps);
                    text(&mut pm, &label, 6, (h - LABEL_H) as i32, w);
                    let indexed: Vec<u8> = pm
                        .data()
                        .chunks_exact(4)
                        .map(|p| pal.index([p[0], p[1], p[2]]))
                        .collect();
                    let mut frame = gif::Frame::from_palette_pixels(
                        w as u16,
                        h as u16,
                        indexed,
                        pal.bytes(),
                        None,
                    );
                    // Every frame uses the file's global palette (the same colours).
                    frame.palette = None;
                    frame.delay = delay;
                    frame.make_lzw_pre_encoded();
                    Ok(frame)
                },
            )
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        {
            let mut enc = gif::Encoder::new(&mut out, w as u16, h as u16, palette.bytes())
                .context("starting the GIF")?;
            enc.set_repeat(gif::Repeat::Infinite)
                .context("writing the GIF")?;
            for frame in &encoded {
                enc.write_lzw_pre_encoded_frame(frame)
                    .context("writing the GIF")?;
            }
        }
        Ok(out)
    }
}

/// The colours we draw with, each blended with white in 32 steps (what
/// anti-aliasing on a white background makes), plus black: every pixel maps to the
/// nearest, remembered per distinct colour. Exact for the figure's own colours,
/// where a learned palette (NeuQuant) merged the orange path into the red limbs.
struct Palette {
    colours: Vec<[u8; 3]>,
    memo: std::collections::HashMap<[u8; 3], u8>,
}

const INK: [[u8; 3]; 7] = [
    [215, 215, 215],
    [250, 205, 160],
    [235, 130, 30],
    [40, 90, 220],
    [215, 45, 45],
    [60, 60, 60],
    [20, 20, 20],
];

impl Palette {
    fn new() -> Palette {
        let mut colours = vec![[255, 255, 255], [0, 0, 0]];
        for c in INK {
            for k in 1..=32u32 {
                let mix = |v: u8| (255 - (255 - v as u32) * k / 32) as u8;
                colours.push([mix(c[0]), mix(c[1]), mix(c[2])]);
            }
        }
        colours.truncate(256);
        Palette {
            colours,
            memo: std::collections::HashMap::new(),
        }
    }

    fn index(&mut self, c: [u8; 3]) -> u8 {
        // Most of a frame is background: no hashing for it.
        if c == [255, 255, 255] {
            return 0;
        }
        if let Some(&i) = self.memo.get(&c) {
            return i;
        }
        let d = |p: &[u8; 3]| -> i32 { (0..3).map(|k| (p[k] as i32 - c[k] as i32).pow(2)).sum() };
        let i = (0..self.colours.len())
            .min_by_key(|&i| d(&self.colours[i]))
            .unwrap_or(0) as u8;
        self.memo.insert(c, i);
        i
    }

    fn bytes(&self) -> &[u8] {
        self.colours.as_flattened()
    }
}

fn paint(r: u8, g: u8, b: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(r, g, b, 255);
    p.anti_alias = true;
    p
}

fn line_to(pb: &mut PathBuilder, a: (f32, f32), b: (f32, f32)) {
    pb.move_to(a.0, a.1);
    pb.line_to(b.0, b.1);
}

fn stroke(
    pm: &mut Pixmap,
    pb: PathBuilder,
    p: &Paint<'_>,
    width: f32,
    clip: Option<&tiny_skia::Mask>,
) {
    if let Some(path) = pb.finish() {
        let s = Stroke {
            width,
            line_cap: tiny_skia::LineCap::Round,
            ..Stroke::default()
        };
        pm.stroke_path(&path, p, &s, Transform::identity(), clip);
    }
}

fn dot_at(pm: &mut Pixmap, c: (f32, f32), r: f32, p: &Paint<'_>, clip: Option<&tiny_skia::Mask>) {
    if let Some(path) = PathBuilder::from_circle(c.0, c.1, r) {
        pm.fill_path(&path, p, FillRule::Winding, Transform::identity(), clip);
    }
}

/// embedded-graphics onto a tiny-skia pixmap (opaque pixels only).
struct Canvas<'a>(&'a mut Pixmap);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Infallible> {
        let (w, h) = (self.0.width() as i32, self.0.height() as i32);
        let data = self.0.data_mut();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                let i = 4 * (p.y * w + p.x) as usize;
                data[i..i + 4].copy_from_slice(&[c.r(), c.g(), c.b(), 255]);
            }
        }
        Ok(())
    }
}

fn text(pm: &mut Pixmap, s: &str, x: i32, y: i32, _w: u32) {
    let ascii: String = s
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let style = MonoTextStyle::new(&FONT_7X13, Rgb888::new(20, 20, 20));
    let _ =
        Text::with_baseline(&ascii, Point::new(x, y), style, Baseline::Top).draw(&mut Canvas(pm));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use pipe_kit::mmm::{read_file, Channels};

    fn m00001() -> BodyMotion {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kit/00001_mmm.xml");
        BodyMotion::from_mmm(&read_file(&p, Channels::default()).unwrap(), 1.75).unwrap()
    }

    #[test]
    fn sheet_and_animation_of_00001_decode() {
        let sk = Skeleton::mmm();
        let p = Preview::new(&sk, &m00001(), "A person is walking forwards.");
        let s = Sizes::default();
        let png = p.contact_sheet(&s).unwrap();
        let img = Pixmap::decode_png(&png).unwrap();
        assert_eq!(img.width(), 8 * s.panel_w);
        // Something was drawn in every panel: coloured limb pixels.
        for k in 0..8u32 {
            let mut blue = 0;
            let mut red = 0;
            for y in 0..img.height() {
                for x in k * s.panel_w..(k + 1) * s.panel_w {
                    let c = img.pixel(x, y).unwrap();
                    if c.blue() > 150 && c.red() < 120 {
                        blue += 1;
                    }
                    if c.red() > 150 && c.blue() < 120 && c.green() < 120 {
                        red += 1;
                    }
                }
            }
            assert!(
                blue > 50 && red > 50,
                "panel {k}: {blue} blue, {red} red pixels"
            );
        }
        let gif = p.animation(&s).unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::io::Cursor::new(&gif)).unwrap();
        let mut frames = 0;
        let mut orange = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            frames += 1;
            // The root's path keeps its own colour (a learned palette lost it).
            orange = f
                .buffer
                .chunks_exact(4)
                .filter(|p| p[0] > 220 && (110..150).contains(&p[1]) && p[2] < 60)
                .count();
        }
        assert!(orange > 20, "{orange} orange pixels in the last frame");
        // 378 frames at 100 fps → every 10th at 10 fps.
        assert_eq!(frames, 38);
        assert_eq!(p.sheet_frames(8)[0], 0);
        assert_eq!(*p.sheet_frames(8).last().unwrap(), 377);
    }

    #[test]
    fn a_single_frame_is_a_pose() {
        let sk = Skeleton::mmm();
        let mut m = m00001();
        m.root_position.truncate(1);
        m.root_rotation.truncate(1);
        m.joints.truncate(44);
        let p = Preview::new(&sk, &m, "");
        assert_eq!(p.sheet_frames(8), vec![0]);
        assert!(Pixmap::decode_png(&p.contact_sheet(&Sizes::default()).unwrap()).is_ok());
        assert!(!p.animation(&Sizes::default()).unwrap().is_empty());
    }
}

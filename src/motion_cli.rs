//! `pipe export` and `pipe render`: a motion — an MMM `.xml`, a generated `.npy`, or
//! a dataset motion by id — as BVH, joint positions, MMM XML or `.npy`, and as a
//! stick-figure contact sheet (PNG) and animation (GIF).

use std::io::Write;
use std::path::{Path, PathBuf};

use pipe::cli::{ConfigArgs, GlobalArgs};
use pipe::project::Project;
use pipe::{exit, Error};
use pipe_kit::body::{self, BodyMotion, Skeleton};

/// Where a motion comes from and how to read what a file does not say.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// An MMM `.xml` file, a `.npy` file ([frames, 50], as `pipe generate` writes),
    /// or the id of a dataset motion (e.g. 00001) in the `kit.extract` output
    #[arg(value_name = "MOTION")]
    pub motion: String,
    /// Mirror the motion left ↔ right first
    #[arg(long)]
    pub mirror: bool,
    /// Frame rate of a `.npy` motion (default: 20, what `pipe generate` writes)
    #[arg(long, value_name = "FPS")]
    pub fps: Option<f64>,
    /// Subject height in m, for files that do not give one (default: 1.75)
    #[arg(long, value_name = "M")]
    pub height: Option<f64>,
    /// The `kit.extract` stage to look ids up in (default: the only one)
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// BVH (Y up, metres, the subject facing −Z): opens in Blender with its defaults
    Bvh,
    /// Joint positions: `.npy` float32 [frames, points, 3] in metres (MMM axes, z up)
    Positions,
    /// MMM motion XML (44 KIT-ML joints)
    Xml,
    /// `.npy` float32 [frames, 50]: root position (mm), root rotation, 44 joint angles
    Npy,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(value_enum)]
    pub format: Format,
    #[command(flatten)]
    pub source: Source,
    /// Output file
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: Source,
    /// Folder for <name>.png and <name>.gif (default: the current folder)
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Caption (default: the dataset sentence, or the file name)
    #[arg(long, value_name = "TEXT")]
    pub caption: Option<String>,
    /// Panels of the contact sheet
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub panels: usize,
    /// Only the contact sheet
    #[arg(long)]
    pub no_gif: bool,
}

/// A motion read for the body, with a name for files and a caption.
pub struct Loaded {
    pub motion: BodyMotion,
    pub name: String,
    pub caption: String,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Error::Usage(msg.into()).into()
}

pub fn load(g: &GlobalArgs, s: &Source, kinds: &pipe::spec::StageKinds) -> anyhow::Result<Loaded> {
    if let Some(h) = s.height {
        if !(h.is_finite() && h > 0.0 && h <= 3.0) {
            return Err(usage(format!("--height must be in (0, 3] m, got {h}")));
        }
    }
    if let Some(f) = s.fps {
        if !(f.is_finite() && f > 0.0) {
            return Err(usage(format!("--fps must be positive, got {f}")));
        }
    }
    let height = s.height.unwrap_or(body::DEFAULT_HEIGHT_M);
    let path = Path::new(&s.motion);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let stem = path
        .file_stem()
        .and_then(|e| e.to_str())
        .unwrap_or("motion")
        .to_string();
    let (motion, name, caption) = match ext.as_deref() {
        Some("xml") => {
            let m = pipe_kit::mmm::read_file(path, pipe_kit::mmm::Channels::default())
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            let mut b = BodyMotion::from_mmm(&m, height)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            if let Some(h) = s.height {
                b.height_m = h;
            }
            (b, stem.clone(), stem)
        }
        Some("npy") => {
            let (r, c, v) = body::npy::read_2d(path).map_err(usage)?;
            let b = body::npy::motion_from_layout(r, c, &v, s.fps.unwrap_or(20.0), height)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            (b, stem.clone(), stem)
        }
        Some(other) => {
            return Err(usage(format!(
                "{}: unknown motion file type .{other} (expected .xml, .npy or a dataset id)",
                path.display()
            )))
        }
        None if path.components().count() == 1 && !path.is_dir() => {
            dataset(g, s, kinds, height).map_err(|e| {
                e.context(format!(
                    "`{}` is not a motion file (.xml, .npy), so it was looked up as a dataset motion id",
                    s.motion
                ))
            })?
        }
        None => {
            return Err(usage(format!(
                "{}: not a motion file (expected .xml, .npy or a dataset id)",
                path.display()
            )))
        }
    };
    let sk = Skeleton::mmm();
    Ok(if s.mirror {
        Loaded {
            motion: body::mirror::mirror(&sk, &motion),
            name: format!("{name}_mirrored"),
            caption: body::mirror::mirror_sentence(&caption),
        }
    } else {
        Loaded {
            motion,
            name,
            caption,
        }
    })
}

/// A dataset motion by id from the `kit.extract` stage's `motions.parquet` (computed
/// through the DAG first, cached when unchanged); its first sentence as caption.
fn dataset(
    g: &GlobalArgs,
    s: &Source,
    kinds: &pipe::spec::StageKinds,
    height: f64,
) -> anyhow::Result<(BodyMotion, String, String)> {
    let choice = crate::app::choice(&s.config)?;
    let project = Project::open(&g.dir, &choice, kinds)?;
    let st = crate::app::one_stage(&project.pipeline, "kit.extract", s.stage.as_deref(), || {
        format!(
            "`{}` is not a file, and pipeline.yaml has no `kit.extract` stage to look it up as a motion id",
            s.motion
        )
    })?;
    let Ok(dir) = crate::app::stage_dir(&project, kinds, &st.name)? else {
        anyhow::bail!("stage `{}` could not be computed", st.name);
    };
    let parquet = dir.join("motions.parquet");
    let mut found = None;
    let mut ids = Vec::new();
    pipe_motion::stats::for_each_motion(&parquet, |r| {
        if r.id == s.motion {
            found = Some(r);
        } else if ids.len() < 5 {
            ids.push(r.id);
        }
        Ok(())
    })?;
    let Some(r) = found else {
        return Err(usage(format!(
            "no motion `{}` in {} (ids look like: {})",
            s.motion,
            parquet.display(),
            ids.join(", ")
        )));
    };
    let caption = pipe_kit::extract::first_sentence(&dir.join("texts.parquet"), &r.id)
        .unwrap_or_else(|| r.id.clone());
    // The file's height unless --height says otherwise.
    let mut m = r.body();
    m.height_m = s.height.or(r.height_m).unwrap_or(height);
    m.check()
        .map_err(|e| usage(format!("{}: motion {}: {e}", parquet.display(), r.id)))?;
    Ok((m, r.id, caption))
}

fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(usage(format!("{}: no such folder", dir.display())));
        }
    }
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        write(&mut f)?;
        f.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e).into());
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

pub fn export(
    g: &GlobalArgs,
    a: ExportArgs,
    kinds: &pipe::spec::StageKinds,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let l = load(g, &a.source, kinds)?;
    let sk = Skeleton::mmm();
    let m = &l.motion;
    let mut points = Vec::new();
    match a.format {
        Format::Bvh => write_atomic(&a.out, |f| {
            let mut w = std::io::BufWriter::new(f);
            body::bvh::write(&sk, m, &mut w)?;
            w.flush()
        })?,
        Format::Positions => {
            let h = body::bvh::Hierarchy::new(&sk);
            points = h.point_names();
            let p = h.points(&body::forward(&sk, m));
            let b = body::npy::f32_bytes(
                &[m.frames(), points.len(), 3],
                p.iter().flatten().map(|v| (v / 1000.0) as f32),
            );
            write_atomic(&a.out, |f| f.write_all(&b))?
        }
        Format::Npy => {
            let rows = (0..m.frames()).flat_map(|t| {
                m.root_position[t]
                    .iter()
                    .chain(&m.root_rotation[t])
                    .chain(&m.joints[t * 44..(t + 1) * 44])
                    .map(|v| *v as f32)
            });
            let b = body::npy::f32_bytes(&[m.frames(), body::npy::WIDTH], rows);
            write_atomic(&a.out, |f| f.write_all(&b))?
        }
        Format::Xml => {
            let mm = pipe_kit::mmm::Motion {
                name: l.name.clone(),
                height_m: Some(m.height_m),
                joint_names: pipe_kit::joints::KIT_JOINTS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                timesteps: (0..m.frames()).map(|t| t as f64 / m.fps).collect(),
                root_position: m.root_position.clone(),
                root_rotation: m.root_rotation.clone(),
                joint_position: m.joints.clone(),
                ..Default::default()
            };
            let xml = pipe_kit::mmm::to_xml(&mm);
            write_atomic(&a.out, |f| f.write_all(xml.as_bytes()))?
        }
    }
    if a.json {
        let v = serde_json::json!({
            "file": a.out, "frames": m.frames(), "fps": m.fps, "height_m": m.height_m,
            "points": points,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{}", a.out.display())?;
    }
    Ok(exit::OK)
}

pub fn render(
    g: &GlobalArgs,
    a: RenderArgs,
    kinds: &pipe::spec::StageKinds,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    if a.panels == 0 || a.panels > 64 {
        return Err(usage(format!(
            "--panels must be in 1..=64, got {}",
            a.panels
        )));
    }
    let l = load(g, &a.source, kinds)?;
    let dir = a.out.clone().unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        return Err(usage(format!("{}: no such folder", dir.display())));
    }
    let caption = a.caption.clone().unwrap_or(l.caption);
    let preview = pipe_view::Preview::new(&Skeleton::mmm(), &l.motion, &caption);
    let sizes = pipe_view::Sizes {
        panels: a.panels,
        ..Default::default()
    };
    let png = dir.join(format!("{}.png", l.name));
    let gif = dir.join(format!("{}.gif", l.name));
    let sheet = preview.contact_sheet(&sizes)?;
    write_atomic(&png, |f| f.write_all(&sheet))?;
    if !a.no_gif {
        let anim = preview.animation(&sizes)?;
        write_atomic(&gif, |f| f.write_all(&anim))?;
    }
    writeln!(out, "{}", png.display())?;
    if !a.no_gif {
        writeln!(out, "{}", gif.display())?;
    }
    Ok(exit::OK)
}

//! `kit.extract`: a KIT-ML folder (`NNNNN_mmm.xml`, `NNNNN_annotations.json`,
//! `NNNNN_meta.json`) → `motions.parquet`, `texts.parquet`, `rejects.parquet` and
//! `metrics.json`. Files are parsed in parallel, in chunks written as row groups,
//! so memory is bounded by a chunk of motions, not by the dataset. Every file left
//! out is listed in `rejects.parquet` with the reason and place.

mod normalize;
mod params;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use pipe_stage_api::{StageContext, StageKind};
use rayon::prelude::*;

pub use normalize::{canonicalize, native_fps, resample, Canonical};
pub use params::{ExtractParams, SplitParams};
pub use write::RejectRow;
use write::{MotionRow, MotionWriter};

use crate::mmm::{self, Channels};

/// Motions per row group (and per parallel batch).
const CHUNK: usize = 64;

/// The files of one motion id.
#[derive(Debug, Clone, Default)]
struct Entry {
    xml: Option<PathBuf>,
    annotations: Option<PathBuf>,
    meta: Option<PathBuf>,
}

/// What an extraction produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub motion_files: usize,
    pub motions: usize,
    pub sentences: usize,
    pub motions_without_text: usize,
    pub invalid: usize,
    pub filtered: usize,
    pub frames: usize,
    pub bytes_read: u64,
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Find the motion ids of a folder (recursively). Duplicate ids are reported.
fn scan(root: &Path, rejects: &mut Vec<RejectRow>) -> anyhow::Result<BTreeMap<String, Entry>> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading folder {}", d.display()))? {
            let p = e
                .with_context(|| format!("reading folder {}", d.display()))?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for p in files {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (id, slot) = if let Some(id) = name.strip_suffix("_mmm.xml") {
            (id, 0)
        } else if let Some(id) = name.strip_suffix("_annotations.json") {
            (id, 1)
        } else if let Some(id) = name.strip_suffix("_meta.json") {
            (id, 2)
        } else {
            continue;
        };
        let e = out.entry(id.to_string()).or_default();
        let s = match slot {
            0 => &mut e.xml,
            1 => &mut e.annotations,
            _ => &mut e.meta,
        };
        if let Some(first) = s {
            rejects.push(RejectRow {
                file: rel(root, &p),
                id: Some(id.to_string()),
                kind: "invalid",
                reason: format!(
                    "duplicate id {id}: also {}; the first is used",
                    rel(root, first)
                ),
                line: None,
                frame: None,
                element: None,
            });
        } else {
            *s = Some(p);
        }
    }
    Ok(out)
}

/// Split assignment from split files (`train.txt`, `val.txt`, `test.txt`: one id per
/// line) in `dir`, if any exist.
fn split_files(dir: &Path) -> anyhow::Result<Option<HashMap<String, String>>> {
    let mut map = HashMap::new();
    let mut any = false;
    for split in ["train", "val", "test"] {
        let p = dir.join(format!("{split}.txt"));
        if !p.is_file() {
            continue;
        }
        any = true;
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("reading split file {}", p.display()))?;
        for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(prev) = map.insert(id.to_string(), split.to_string()) {
                anyhow::bail!("{}: id {id} is already in the {prev} split", p.display());
            }
        }
    }
    Ok(any.then_some(map))
}

/// Deterministic split from a hash of the seed and the id.
pub fn hash_split(id: &str, s: &SplitParams) -> &'static str {
    let h = blake3::hash(format!("{}:{id}", s.seed).as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    let u = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    if u < s.test {
        "test"
    } else if u < s.test + s.val {
        "val"
    } else {
        "train"
    }
}

struct Processed {
    row: Option<MotionRow>,
    sentences: Vec<String>,
    rejects: Vec<RejectRow>,
    bytes: u64,
}

fn process(
    root: &Path,
    id: &str,
    e: &Entry,
    p: &ExtractParams,
    channels: Channels,
    split: &str,
    known: Option<&BTreeMap<String, String>>,
) -> Processed {
    let mut rejects = Vec::new();
    let mut out = Processed {
        row: None,
        sentences: vec![],
        rejects: vec![],
        bytes: 0,
    };
    let reject = |file: &Path, kind: &'static str, reason: String| RejectRow {
        file: rel(root, file),
        id: Some(id.to_string()),
        kind,
        reason,
        line: None,
        frame: None,
        element: None,
    };
    let Some(xml) = &e.xml else {
        if let Some(a) = &e.annotations {
            out.rejects.push(reject(
                a,
                "warning",
                format!("annotations for id {id} but no {id}_mmm.xml"),
            ));
        }
        return out;
    };
    let size = std::fs::metadata(xml).map(|m| m.len()).unwrap_or(0);
    if size as f64 > p.max_file_mb * 1e6 {
        out.rejects.push(reject(
            xml,
            "invalid",
            format!(
                "file is {:.1} MB, over extract.max_file_mb = {} (not read)",
                size as f64 / 1e6,
                p.max_file_mb
            ),
        ));
        return out;
    }
    // One reused buffer per worker thread: no fresh pages (and page faults) per file.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let parsed = BUF.with(|b| {
        let mut bytes = b.borrow_mut();
        bytes.clear();
        std::fs::File::open(xml)
            .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))?;
        // The runner's digest of the file when it has one (it hashed the folder for
        // the stage key): hashing it again cost ~10 % of extraction.
        let digest = known
            .and_then(|m| m.get(&rel(root, xml)))
            .cloned()
            .unwrap_or_else(|| blake3::hash(&bytes).to_hex().to_string());
        Ok::<_, std::io::Error>((bytes.len() as u64, digest, mmm::parse(&bytes, channels)))
    });
    let (len, digest, parsed) = match parsed {
        Ok(x) => x,
        Err(err) => {
            out.rejects
                .push(reject(xml, "invalid", format!("cannot read: {err}")));
            return out;
        }
    };
    out.bytes = len;
    let mut motion = match parsed {
        Ok(m) => m,
        Err(err) => {
            out.rejects.push(RejectRow {
                line: err.line,
                frame: err.frame,
                element: err.element.clone(),
                ..reject(xml, "invalid", err.reason.clone())
            });
            return out;
        }
    };
    let (height_m, mass_kg) = (motion.height_m, motion.mass_kg);
    let other_elements = std::mem::take(&mut motion.other_elements);
    let canon = match canonicalize(motion, p.fps) {
        Ok(c) => c,
        Err(reason) => {
            out.rejects.push(RejectRow {
                element: Some("JointOrder".into()),
                ..reject(xml, "invalid", reason)
            });
            return out;
        }
    };
    let dur = canon.frames.saturating_sub(1) as f64 / canon.fps;
    if dur < p.min_seconds || dur > p.max_seconds {
        out.rejects.push(reject(
            xml,
            "filtered",
            format!(
                "{dur:.2} s long, outside extract.min_seconds..max_seconds = {}..{}",
                p.min_seconds, p.max_seconds
            ),
        ));
        return out;
    }
    // Sentences: a JSON list of strings.
    let Some(ann) = &e.annotations else {
        out.rejects.push(reject(
            xml,
            "invalid",
            format!("missing annotations file {id}_annotations.json"),
        ));
        return out;
    };
    let sentences = match std::fs::read(ann) {
        Err(err) => Err(format!("cannot read: {err}")),
        Ok(b) => match std::str::from_utf8(&b) {
            Err(u) => Err(format!("not valid UTF-8 (byte {})", u.valid_up_to())),
            Ok(text) => serde_json::from_str::<serde_json::Value>(text)
                .map_err(|j| {
                    format!(
                        "malformed JSON at line {}, column {}: {j}",
                        j.line(),
                        j.column()
                    )
                })
                .and_then(|v| match v {
                    serde_json::Value::Array(items) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, it)| match it {
                            serde_json::Value::String(s) => Ok(s),
                            other => Err(format!("item {i} is not a string: {other}")),
                        })
                        .collect::<Result<Vec<String>, String>>(),
                    _ => Err("expected a JSON list of sentences".into()),
                }),
        },
    };
    let sentences = match sentences {
        Ok(s) => s,
        Err(reason) => {
            out.rejects.push(reject(ann, "invalid", reason));
            return out;
        }
    };
    let mut kept = Vec::new();
    for (i, s) in sentences.into_iter().enumerate() {
        let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.is_empty() {
            rejects.push(reject(
                ann,
                "sentence",
                format!("sentence {i} is empty; dropped, the motion is kept"),
            ));
        } else {
            kept.push(t);
        }
    }
    let mut source_db = None;
    if let Some(meta) = &e.meta {
        match std::fs::read(meta)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        {
            Some(v) => {
                source_db = v
                    .pointer("/source/database/identifier")
                    .and_then(|x| x.as_str())
                    .map(String::from)
            }
            None => rejects.push(reject(
                meta,
                "warning",
                "unreadable or malformed meta JSON; ignored".into(),
            )),
        }
    }
    if !other_elements.is_empty() {
        rejects.push(reject(
            xml,
            "warning",
            format!(
                "per-frame elements not extracted: {}",
                other_elements.join(", ")
            ),
        ));
    }
    out.row = Some(MotionRow {
        id: id.to_string(),
        split: split.to_string(),
        height_m,
        mass_kg,
        motion: canon,
        num_sentences: kept.len(),
        source_file: rel(root, xml),
        source_digest: digest,
        source_db,
    });
    out.sentences = kept;
    out.rejects.extend(rejects);
    out
}

/// Extract `input` into `out_dir`. `splits`: an optional folder with split files
/// (otherwise split files in `input` itself, otherwise a hash split).
pub fn extract(
    input: &Path,
    splits: Option<&Path>,
    out_dir: &Path,
    p: &ExtractParams,
    known: Option<&BTreeMap<String, String>>,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<Summary> {
    if !input.is_dir() {
        anyhow::bail!("{} is not a folder of KIT-ML files", input.display());
    }
    let mut rejects = Vec::new();
    let entries = scan(input, &mut rejects)?;
    let split_map = match splits {
        Some(d) => split_files(d)?
            .with_context(|| format!("{}: no train.txt, val.txt or test.txt", d.display()))?
            .into(),
        None => split_files(input)?,
    };
    let channels = Channels {
        joint_velocity: p.channels.iter().any(|c| c == "joint_velocity"),
        joint_acceleration: p.channels.iter().any(|c| c == "joint_acceleration"),
    };
    let ids: Vec<(&String, &Entry)> = entries.iter().collect();
    let motion_files = ids.iter().filter(|(_, e)| e.xml.is_some()).count();
    let writer = MotionWriter::new(
        &out_dir.join("motions.parquet"),
        p.fps,
        channels.joint_velocity,
        channels.joint_acceleration,
    );
    let mut texts: Vec<(String, String, usize, String)> = Vec::new();
    let mut summary = Summary {
        motion_files,
        motions: 0,
        sentences: 0,
        motions_without_text: 0,
        invalid: 0,
        filtered: 0,
        frames: 0,
        bytes_read: 0,
    };
    // Parsing (all cores) and Parquet writing (one thread) overlap: the writer takes
    // chunk k while chunk k + 1 is parsed. The channel holds one chunk, so memory
    // stays at a few chunks.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<MotionRow>>(1);
    let t_all = std::time::Instant::now();
    let mut t_parse = 0.0;
    let write_result = std::thread::scope(|scope| -> anyhow::Result<f64> {
        let handle = scope.spawn(move || -> anyhow::Result<f64> {
            let mut writer = writer;
            let mut busy = 0.0;
            for rows in rx {
                let t0 = std::time::Instant::now();
                writer.write_chunk(&rows.iter().collect::<Vec<_>>())?;
                busy += t0.elapsed().as_secs_f64();
            }
            writer.finish()?;
            Ok(busy)
        });
        for (ci, chunk) in ids.chunks(CHUNK).enumerate() {
            let t0 = std::time::Instant::now();
            let results: Vec<Processed> = chunk
                .par_iter()
                .map(|(id, e)| {
                    let split = match &split_map {
                        Some(m) => m.get(id.as_str()).map(String::as_str).unwrap_or("unlisted"),
                        None => hash_split(id, &p.split),
                    };
                    process(input, id, e, p, channels, split, known)
                })
                .collect();
            t_parse += t0.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            for r in results {
                summary.bytes_read += r.bytes;
                for rj in &r.rejects {
                    match rj.kind {
                        "invalid" if rj.id.is_some() => summary.invalid += 1,
                        "filtered" => summary.filtered += 1,
                        _ => {}
                    }
                }
                if let Some(row) = r.row {
                    for (k, s) in r.sentences.iter().enumerate() {
                        texts.push((row.id.clone(), row.split.clone(), k, s.clone()));
                    }
                    summary.motions += 1;
                    summary.sentences += r.sentences.len();
                    summary.frames += row.motion.frames;
                    if r.sentences.is_empty() {
                        summary.motions_without_text += 1;
                    }
                    rows.push(row);
                }
                rejects.extend(r.rejects);
            }
            if tx.send(rows).is_err() {
                break; // the writer failed; its error is returned below
            }
            progress(((ci + 1) * CHUNK).min(ids.len()), ids.len());
        }
        drop(tx);
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the Parquet writer thread panicked"))?
    });
    let t_write = write_result?;
    tracing::info!(parse_s = t_parse, write_s = t_write, "extraction time");
    eprintln!(
        "time: {:.2} s in all; read+parse+resample {t_parse:.2} s (all cores), Parquet write {t_write:.2} s (overlapped)",
        t_all.elapsed().as_secs_f64()
    );
    write::write_texts(&out_dir.join("texts.parquet"), &texts)?;
    write::write_rejects(&out_dir.join("rejects.parquet"), &rejects)?;
    std::fs::write(
        out_dir.join("metrics.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    let frac = if motion_files == 0 {
        0.0
    } else {
        summary.invalid as f64 / motion_files as f64
    };
    if motion_files == 0 {
        anyhow::bail!("{}: no *_mmm.xml files found", input.display());
    }
    if frac > p.max_reject_fraction {
        let examples: Vec<String> = rejects
            .iter()
            .filter(|r| r.kind == "invalid")
            .take(5)
            .map(|r| {
                let place = [
                    r.line.map(|l| format!("line {l}")),
                    r.frame.map(|f| format!("frame {f}")),
                    r.element.as_ref().map(|e| format!("<{e}>")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
                format!(
                    "  {}{}: {}",
                    r.file,
                    if place.is_empty() {
                        String::new()
                    } else {
                        format!(" ({place})")
                    },
                    r.reason
                )
            })
            .collect();
        anyhow::bail!(
            "{} of {} motion files ({:.0}%) are invalid, above extract.max_reject_fraction = {}; first ones:\n{}\n(`pipe kit check FILE` explains one file)",
            summary.invalid,
            motion_files,
            frac * 100.0,
            p.max_reject_fraction,
            examples.join("\n")
        );
    }
    Ok(summary)
}

/// The `kit.extract` stage kind.
pub struct ExtractStage;

impl StageKind for ExtractStage {
    fn name(&self) -> &'static str {
        "kit.extract"
    }
    fn version(&self) -> u32 {
        1
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        ExtractParams::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let p = ExtractParams::from_params(&ctx.spec().params).map_err(anyhow::Error::msg)?;
        // Each motion's arrays (~0.2–1 MB) and each chunk's Arrow and Parquet buffers
        // are above glibc's threshold for an `mmap` of their own: ~96,000 page faults
        // and ~10 % of the time for 2,000 motions. This process runs this one stage,
        // bounded by a few chunks of motions either way.
        pipe_stage_api::keep_freed_memory();
        let input = ctx.dep(0)?;
        let splits = ctx.spec().deps.get(1).map(PathBuf::as_path);
        let known = ctx.spec().dep_digests.first();
        let s = extract(input, splits, &ctx.spec().out_dir, &p, known, &|d, t| {
            ctx.progress(d as u64, t as u64, "files")
        })?;
        eprintln!(
            "extracted {} motions ({} frames at {} Hz), {} sentences; {} invalid, {} filtered",
            s.motions, s.frames, p.fps, s.sentences, s.invalid, s.filtered
        );
        Ok(())
    }
}

/// The first sentence of motion `id` in a `texts.parquet` (None if it has none or
/// the file cannot be read).
pub fn first_sentence(texts: &Path, id: &str) -> Option<String> {
    use arrow_array::{Array, StringArray};
    let f = std::fs::File::open(texts).ok()?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .ok()?
        .build()
        .ok()?;
    for b in reader.flatten() {
        let ids = pipe_tabular::column::<StringArray>(&b, "id", texts).ok()?;
        let sent = pipe_tabular::column::<StringArray>(&b, "sentence", texts).ok()?;
        if let Some(i) = (0..b.num_rows()).find(|&i| ids.value(i) == id && !sent.is_null(i)) {
            return Some(sent.value(i).to_string());
        }
    }
    None
}

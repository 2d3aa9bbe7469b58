//! Parquet output of `kit.extract`: `motions.parquet` (one row per motion, list
//! columns for the per-frame data), `texts.parquet`, `rejects.parquet`. Motions are
//! written one row group per chunk, so memory holds one chunk, not the dataset.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;

use super::normalize::Canonical;
use crate::joints::KIT_JOINTS;

/// One row of `motions.parquet`.
pub struct MotionRow {
    pub id: String,
    pub split: String,
    pub height_m: Option<f64>,
    pub mass_kg: Option<f64>,
    pub motion: Canonical,
    pub num_sentences: usize,
    pub source_file: String,
    pub source_digest: String,
    pub source_db: Option<String>,
}

/// One row of `rejects.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectRow {
    pub file: String,
    pub id: Option<String>,
    /// `invalid` (the motion is left out: broken file), `filtered` (left out by a
    /// parameter, e.g. length), `sentence` (one sentence dropped, motion kept),
    /// `warning` (kept; something odd worth knowing).
    pub kind: &'static str,
    pub reason: String,
    pub line: Option<u64>,
    pub frame: Option<usize>,
    pub element: Option<String>,
}

use pipe_tabular::{with_metadata, writer_properties as props};

fn frames_col(
    rows: &[&MotionRow],
    width: usize,
    get: impl Fn(&MotionRow) -> Option<Vec<f64>>,
) -> ArrayRef {
    let mut b = ListBuilder::new(FixedSizeListBuilder::new(
        Float32Builder::new(),
        width as i32,
    ));
    for r in rows {
        match get(r) {
            Some(data) => {
                let inner = b.values();
                let f32s: Vec<f32> = data.iter().map(|v| *v as f32).collect();
                inner.values().append_slice(&f32s);
                for _ in 0..f32s.len() / width {
                    inner.append(true);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// Streams motions into `motions.parquet`.
pub struct MotionWriter {
    writer: Option<ArrowWriter<File>>,
    path: std::path::PathBuf,
    meta: Vec<(String, String)>,
    velocity: bool,
    acceleration: bool,
    pub rows: usize,
}

impl MotionWriter {
    pub fn new(path: &Path, fps: f64, velocity: bool, acceleration: bool) -> Self {
        let joint_names = serde_json::to_string(&KIT_JOINTS[..]).unwrap_or_default();
        let meta = vec![
            ("pipe.schema".to_string(), "kit.motions/1".to_string()),
            ("pipe.joint_names".to_string(), joint_names),
            ("pipe.fps".to_string(), fps.to_string()),
            (
                "pipe.units".to_string(),
                "root_position: mm (z up); root_rotation: rad (x, y, z; z = heading); joint_position: rad".to_string(),
            ),
        ];
        MotionWriter {
            writer: None,
            path: path.to_path_buf(),
            meta,
            velocity,
            acceleration,
            rows: 0,
        }
    }

    fn batch(&self, rows: &[&MotionRow]) -> anyhow::Result<RecordBatch> {
        let j = KIT_JOINTS.len();
        let mut id = StringBuilder::new();
        let mut split = StringBuilder::new();
        let mut fps = Float64Builder::new();
        let mut frames = Int32Builder::new();
        let mut duration = Float64Builder::new();
        let mut height = Float32Builder::new();
        let mut mass = Float32Builder::new();
        let mut missing = ListBuilder::new(StringBuilder::new());
        let mut nsent = Int32Builder::new();
        let mut has_text = BooleanBuilder::new();
        let mut file = StringBuilder::new();
        let mut digest = StringBuilder::new();
        let mut db = StringBuilder::new();
        for r in rows {
            id.append_value(&r.id);
            split.append_value(&r.split);
            fps.append_value(r.motion.fps);
            frames.append_value(r.motion.frames as i32);
            duration.append_value((r.motion.frames.saturating_sub(1)) as f64 / r.motion.fps);
            height.append_option(r.height_m.map(|v| v as f32));
            mass.append_option(r.mass_kg.map(|v| v as f32));
            for m in &r.motion.missing_joints {
                missing.values().append_value(m);
            }
            missing.append(true);
            nsent.append_value(r.num_sentences as i32);
            has_text.append_value(r.num_sentences > 0);
            file.append_value(&r.source_file);
            digest.append_value(&r.source_digest);
            db.append_option(r.source_db.as_deref());
        }
        let flat3 = |v: &[[f64; 3]]| v.iter().flatten().copied().collect::<Vec<f64>>();
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(id.finish())),
            ("split", Arc::new(split.finish())),
            ("fps", Arc::new(fps.finish())),
            ("frames", Arc::new(frames.finish())),
            ("duration_s", Arc::new(duration.finish())),
            ("height_m", Arc::new(height.finish())),
            ("mass_kg", Arc::new(mass.finish())),
            (
                "root_position",
                frames_col(rows, 3, |r| Some(flat3(&r.motion.root_position))),
            ),
            (
                "root_rotation",
                frames_col(rows, 3, |r| Some(flat3(&r.motion.root_rotation))),
            ),
            (
                "joint_position",
                frames_col(rows, j, |r| Some(r.motion.joint_position.clone())),
            ),
        ];
        if self.velocity {
            cols.push((
                "joint_velocity",
                frames_col(rows, j, |r| r.motion.joint_velocity.clone()),
            ));
        }
        if self.acceleration {
            cols.push((
                "joint_acceleration",
                frames_col(rows, j, |r| r.motion.joint_acceleration.clone()),
            ));
        }
        cols.push(("missing_joints", Arc::new(missing.finish())));
        cols.push(("num_sentences", Arc::new(nsent.finish())));
        cols.push(("has_text", Arc::new(has_text.finish())));
        cols.push(("source_file", Arc::new(file.finish())));
        cols.push(("source_digest", Arc::new(digest.finish())));
        cols.push(("source_db", Arc::new(db.finish())));
        with_metadata(RecordBatch::try_from_iter(cols)?, &self.meta)
    }

    /// Append one chunk as a row group.
    pub fn write_chunk(&mut self, rows: &[&MotionRow]) -> anyhow::Result<()> {
        let batch = self.batch(rows)?;
        if self.writer.is_none() {
            let f = File::create(&self.path)
                .with_context(|| format!("creating {}", self.path.display()))?;
            self.writer = Some(ArrowWriter::try_new(f, batch.schema(), Some(props()))?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)?;
            w.flush()?;
        }
        self.rows += rows.len();
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        if self.writer.is_none() {
            // No motions at all: still a valid file with the schema.
            self.write_chunk(&[])?;
        }
        if let Some(w) = self.writer.take() {
            w.close()?;
        }
        Ok(())
    }
}

pub fn write_texts(path: &Path, rows: &[(String, String, usize, String)]) -> anyhow::Result<()> {
    let mut id = StringBuilder::new();
    let mut split = StringBuilder::new();
    let mut idx = Int32Builder::new();
    let mut sentence = StringBuilder::new();
    for (i, s, k, t) in rows {
        id.append_value(i);
        split.append_value(s);
        idx.append_value(*k as i32);
        sentence.append_value(t);
    }
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(id.finish())),
        ("split", Arc::new(split.finish())),
        ("sentence_index", Arc::new(idx.finish())),
        ("sentence", Arc::new(sentence.finish())),
    ];
    pipe_tabular::write_batch(
        path,
        RecordBatch::try_from_iter(cols)?,
        &[("pipe.schema".into(), "kit.texts/1".into())],
    )
}

pub fn write_rejects(path: &Path, rows: &[RejectRow]) -> anyhow::Result<()> {
    let mut file = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut frame = Int64Builder::new();
    let mut element = StringBuilder::new();
    for r in rows {
        file.append_value(&r.file);
        id.append_option(r.id.as_deref());
        kind.append_value(r.kind);
        reason.append_value(&r.reason);
        line.append_option(r.line.map(|v| v as i64));
        frame.append_option(r.frame.map(|v| v as i64));
        element.append_option(r.element.as_deref());
    }
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("file", Arc::new(file.finish())),
        ("id", Arc::new(id.finish())),
        ("kind", Arc::new(kind.finish())),
        ("reason", Arc::new(reason.finish())),
        ("line", Arc::new(line.finish())),
        ("frame", Arc::new(frame.finish())),
        ("element", Arc::new(element.finish())),
    ];
    pipe_tabular::write_batch(
        path,
        RecordBatch::try_from_iter(cols)?,
        &[("pipe.schema".into(), "kit.rejects/1".into())],
    )
}

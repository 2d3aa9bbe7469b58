//! Parquet output of `kit.extract`: `motions.parquet` (one row per motion, list
//! columns for the per-frame data), `texts.parquet`, `rejects.parquet`. Motions are
//! written one row group per chunk, so memory holds one chunk, not the dataset.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder,
};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, ListArray, RecordBatch};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

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

use pipe_tabular::with_metadata;

/// The project's Parquet settings, with min/max statistics kept only for the
/// columns that are not per-frame lists (`id`, `split`, `frames`, …): for the
/// frames × 44 angle columns they cost ~10 % of extraction's CPU time, and no
/// reader skips row groups by the smallest joint angle.
fn motion_props(batch: &RecordBatch) -> WriterProperties {
    let mut b =
        pipe_tabular::writer_properties_builder().set_statistics_enabled(EnabledStatistics::None);
    for f in batch.schema().fields() {
        if !matches!(f.data_type(), DataType::List(_)) {
            b = b.set_column_statistics_enabled(
                ColumnPath::from(f.name().as_str()),
                EnabledStatistics::Page,
            );
        }
    }
    b.build()
}

/// A `list<fixed_size_list<f32, width>>` column (frames × width per row; null where
/// `get` has nothing), built straight from the rows' f64 data: one f32 buffer, the
/// offsets, and a validity bitmap only when some row is null.
fn frames_col<'a>(
    rows: &[&'a MotionRow],
    width: usize,
    get: impl Fn(&'a MotionRow) -> Option<&'a [f64]>,
) -> anyhow::Result<ArrayRef> {
    let total: usize = rows.iter().filter_map(|r| get(r)).map(<[f64]>::len).sum();
    let mut values = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut valid = Vec::with_capacity(rows.len());
    offsets.push(0i32);
    for r in rows {
        let data = get(r);
        if let Some(d) = data {
            values.extend(d.iter().map(|v| *v as f32));
        }
        valid.push(data.is_some());
        let frames = i32::try_from(values.len() / width.max(1))
            .context("too many frames for one Parquet row group")?;
        offsets.push(frames);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let frame = FixedSizeListArray::try_new(
        item,
        width as i32,
        Arc::new(Float32Array::from(values)),
        None,
    )?;
    let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
    let list = ListArray::try_new(
        Arc::new(Field::new("item", frame.data_type().clone(), true)),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(frame),
        nulls,
    )?;
    Ok(Arc::new(list))
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
                frames_col(rows, 3, |r| Some(r.motion.root_position.as_flattened()))?,
            ),
            (
                "root_rotation",
                frames_col(rows, 3, |r| Some(r.motion.root_rotation.as_flattened()))?,
            ),
            (
                "joint_position",
                frames_col(rows, j, |r| Some(&r.motion.joint_position))?,
            ),
        ];
        if self.velocity {
            cols.push((
                "joint_velocity",
                frames_col(rows, j, |r| r.motion.joint_velocity.as_deref())?,
            ));
        }
        if self.acceleration {
            cols.push((
                "joint_acceleration",
                frames_col(rows, j, |r| r.motion.joint_acceleration.as_deref())?,
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
            self.writer = Some(ArrowWriter::try_new(
                f,
                batch.schema(),
                Some(motion_props(&batch)),
            )?);
        }
        if let Some(w) = self.writer.as_mut() {
            // One motion at a time: the writer's per-value level buffers then stay in
            // cache instead of growing (by reallocation) to the whole chunk.
            for at in 0..batch.num_rows() {
                w.write(&batch.slice(at, 1))?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn row(id: &str, frames: usize, velocity: bool) -> MotionRow {
        let j = KIT_JOINTS.len();
        let angles: Vec<f64> = (0..frames * j).map(|i| i as f64 * 0.001 - 0.5).collect();
        MotionRow {
            id: id.into(),
            split: "train".into(),
            height_m: Some(1.8),
            mass_kg: None,
            motion: Canonical {
                fps: 100.0,
                frames,
                root_position: (0..frames).map(|f| [f as f64, 2.0, 950.5]).collect(),
                root_rotation: (0..frames).map(|f| [0.0, 0.1, f as f64 * 0.01]).collect(),
                joint_velocity: velocity.then(|| angles.iter().map(|a| a * 2.0).collect()),
                joint_position: angles,
                joint_acceleration: None,
                missing_joints: vec![],
            },
            num_sentences: 1,
            source_file: format!("{id}_mmm.xml"),
            source_digest: "d".into(),
            source_db: None,
        }
    }

    #[test]
    fn frame_columns_read_back_with_null_rows_and_statistics_only_on_scalars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("motions.parquet");
        let mut w = MotionWriter::new(&path, 100.0, true, false);
        let (a, b, c) = (row("a", 3, true), row("b", 2, false), row("c", 1, true));
        w.write_chunk(&[&a, &b]).expect("chunk 1");
        w.write_chunk(&[&c]).expect("chunk 2");
        w.finish().expect("finish");

        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
            .expect("read");
        let meta = builder.metadata().clone();
        assert_eq!(meta.num_row_groups(), 2, "one row group per chunk");
        for col in meta.row_group(0).columns() {
            let path = col.column_path().string();
            let scalar = !path.contains('.');
            assert_eq!(col.statistics().is_some(), scalar, "{path}");
        }
        let batches: Vec<RecordBatch> = builder
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
        let rows: Vec<&MotionRow> = vec![&a, &b, &c];
        let mut k = 0;
        for batch in &batches {
            let jp = batch
                .column_by_name("joint_position")
                .expect("jp")
                .as_list::<i32>();
            let jv = batch
                .column_by_name("joint_velocity")
                .expect("jv")
                .as_list::<i32>();
            let rp = batch
                .column_by_name("root_position")
                .expect("rp")
                .as_list::<i32>();
            for i in 0..batch.num_rows() {
                let r = rows[k];
                k += 1;
                let flat = |l: &ListArray, i: usize| -> Vec<f32> {
                    let frames = l.value(i);
                    frames
                        .as_fixed_size_list()
                        .values()
                        .as_primitive::<Float32Type>()
                        .values()
                        .to_vec()
                };
                let f32s = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
                assert_eq!(flat(jp, i), f32s(&r.motion.joint_position), "{}", r.id);
                assert_eq!(
                    flat(rp, i),
                    f32s(r.motion.root_position.as_flattened()),
                    "{}",
                    r.id
                );
                assert_eq!(jp.value(i).len(), r.motion.frames, "{}: frames", r.id);
                match &r.motion.joint_velocity {
                    Some(v) => assert_eq!(flat(jv, i), f32s(v), "{}", r.id),
                    None => assert!(jv.is_null(i), "{}: velocity should be null", r.id),
                }
            }
        }
        assert_eq!(k, 3);
    }
}

//! `motion.stats`: features of every motion in `motions.parquet`, their mean/std over
//! the training split (the normalisation the model uses), and a dataset summary users
//! can open as Parquet (per split: motions, frames, length distribution, sentences;
//! per joint: ranges).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use arrow_array::{Array, FixedSizeListArray, Float32Array, Float64Array, ListArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pipe_stage_api::{StageContext, StageKind};
use pipe_tabular::column;
use serde::Deserialize;

use crate::features::{
    feature_names, to_features, FeatureStats, Mmm, StatsAccumulator, FEATURES_VERSION, N_FEATURES,
    N_JOINTS,
};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatsParams {
    /// Standard deviations below this are raised to it (constant features).
    pub std_floor: f64,
}

impl Default for StatsParams {
    fn default() -> Self {
        StatsParams { std_floor: 1e-3 }
    }
}

impl StatsParams {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let p: StatsParams = pipe_stage_api::section(params, "stats")?;
        if !(p.std_floor > 0.0 && p.std_floor < 1.0) {
            return Err(format!(
                "stats.std_floor must be in (0, 1), got {}",
                p.std_floor
            ));
        }
        Ok(p)
    }
}

/// One motion read back from `motions.parquet`.
pub struct MotionRecord {
    pub id: String,
    pub split: String,
    pub fps: f64,
    /// Subject height (m), when the file gave one.
    pub height_m: Option<f64>,
    pub mmm: Mmm,
}

impl MotionRecord {
    /// The motion on the MMM body (the default height when the file gave none).
    pub fn body(&self) -> pipe_kit::body::BodyMotion {
        pipe_kit::body::BodyMotion {
            fps: self.fps,
            height_m: self.height_m.unwrap_or(pipe_kit::body::DEFAULT_HEIGHT_M),
            root_position: self.mmm.root_position.clone(),
            root_rotation: self.mmm.root_rotation.clone(),
            joints: self.mmm.joints.clone(),
        }
    }
}

/// The f32 samples of row `i` of a list-of-fixed-size-list column, as f64.
fn samples(col: &ListArray, i: usize, width: usize) -> anyhow::Result<Vec<f64>> {
    let v = col.value(i);
    let fsl = v
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .context("expected fixed-size lists")?;
    if fsl.value_length() as usize != width {
        bail!(
            "expected {width} values per frame, found {}",
            fsl.value_length()
        );
    }
    let vals = fsl.values();
    let f = vals
        .as_any()
        .downcast_ref::<Float32Array>()
        .context("expected float32 samples")?;
    if f.null_count() > 0 {
        bail!("null samples");
    }
    Ok(f.values().iter().map(|&x| x as f64).collect())
}

/// Read `motions.parquet` batch by batch, calling `each` per motion.
pub fn for_each_motion(
    path: &Path,
    mut each: impl FnMut(MotionRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?;
    for batch in reader {
        let b = batch?;
        let ids = column::<StringArray>(&b, "id", path)?;
        let splits = column::<StringArray>(&b, "split", path)?;
        let fps = column::<Float64Array>(&b, "fps", path)?;
        let rp = column::<ListArray>(&b, "root_position", path)?;
        let rr = column::<ListArray>(&b, "root_rotation", path)?;
        let jp = column::<ListArray>(&b, "joint_position", path)?;
        let height = column::<Float32Array>(&b, "height_m", path)?;
        for i in 0..b.num_rows() {
            let id = ids.value(i).to_string();
            let place = || format!("{}: motion {id}", path.display());
            let triples = |v: Vec<f64>| {
                v.chunks_exact(3)
                    .map(|c| [c[0], c[1], c[2]])
                    .collect::<Vec<_>>()
            };
            let root_position = triples(samples(rp, i, 3).with_context(place)?);
            let root_rotation = triples(samples(rr, i, 3).with_context(place)?);
            let joints = samples(jp, i, N_JOINTS).with_context(place)?;
            if root_rotation.len() != root_position.len()
                || joints.len() != root_position.len() * N_JOINTS
            {
                bail!(
                    "{}: frame counts of the root and joint columns differ",
                    place()
                );
            }
            if let Some(bad) = joints
                .iter()
                .chain(root_position.iter().flatten())
                .find(|v| !v.is_finite())
            {
                bail!("{}: non-finite value {bad}", place());
            }
            let rec = MotionRecord {
                split: splits.value(i).to_string(),
                fps: fps.value(i),
                // Stored as float32: back to the millimetre the files give.
                height_m: (!height.is_null(i))
                    .then(|| (height.value(i) as f64 * 1e4).round() / 1e4),
                mmm: Mmm {
                    root_position,
                    root_rotation,
                    joints,
                },
                id,
            };
            each(rec)?;
        }
    }
    Ok(())
}

/// What `norm.json` holds: everything needed to normalise and to undo it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Normalisation {
    pub features_version: u32,
    pub features: Vec<String>,
    pub fps: f64,
    pub split: String,
    pub motions: usize,
    #[serde(flatten)]
    pub stats: FeatureStats,
}

/// Compute normalisation over the `train` split, plus per-joint ranges over all motions.
pub fn compute(
    motions: &Path,
    p: &StatsParams,
) -> anyhow::Result<(Normalisation, Vec<(f64, f64)>)> {
    let mut acc = StatsAccumulator::default();
    let mut fps: Option<f64> = None;
    let mut n = 0;
    let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); N_JOINTS];
    for_each_motion(motions, |m| {
        match fps {
            None => fps = Some(m.fps),
            Some(f) if (f - m.fps).abs() > 1e-9 => {
                bail!("motion {} is at {} Hz, others at {f} Hz", m.id, m.fps)
            }
            _ => {}
        }
        for frame in m.mmm.joints.chunks_exact(N_JOINTS) {
            for (r, v) in ranges.iter_mut().zip(frame) {
                r.0 = r.0.min(*v);
                r.1 = r.1.max(*v);
            }
        }
        if m.split == "train" {
            let (f, _) = to_features(&m.mmm, m.fps);
            acc.add(&f, &vec![true; f.len() / N_FEATURES]);
            n += 1;
        }
        Ok(())
    })?;
    if n == 0 {
        bail!("{}: no motion in the train split", motions.display());
    }
    let names: Vec<&str> = pipe_kit::joints::KIT_JOINTS.to_vec();
    Ok((
        Normalisation {
            features_version: FEATURES_VERSION,
            features: feature_names(&names),
            fps: fps.unwrap_or(0.0),
            split: "train".into(),
            motions: n,
            stats: acc.finish(p.std_floor),
        },
        ranges,
    ))
}

pub struct StatsStage;

impl StageKind for StatsStage {
    fn name(&self) -> &'static str {
        "motion.stats"
    }
    fn version(&self) -> u32 {
        FEATURES_VERSION
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        StatsParams::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let p = StatsParams::from_params(&ctx.spec().params).map_err(anyhow::Error::msg)?;
        let motions = ctx.dep(0)?;
        let (norm, ranges) = compute(motions, &p)?;
        std::fs::write(ctx.out("norm.json"), serde_json::to_vec_pretty(&norm)?)?;
        crate::summary::write_summary(motions, &ranges, &ctx.spec().out_dir)?;
        std::fs::write(
            ctx.out("metrics.json"),
            serde_json::to_vec_pretty(
                &serde_json::json!({"train_motions": norm.motions, "train_frames": norm.stats.frames}),
            )?,
        )?;
        eprintln!(
            "normalisation over {} train motions ({} frames)",
            norm.motions, norm.stats.frames
        );
        Ok(())
    }
}

//! The dataset summary of `motion.stats`, computed with polars from
//! `motions.parquet`: per split the number of motions, frames, the length
//! distribution, sentences and motions without text (`summary.parquet`), and per
//! joint its range over all motions (`joint_ranges.parquet`).

use std::path::Path;

use polars::prelude::*;

/// Writes `summary.parquet`, `by_sentences.parquet` and `joint_ranges.parquet` into `out`.
pub fn write_summary(motions: &Path, ranges: &[(f64, f64)], out: &Path) -> anyhow::Result<()> {
    let path = anyhow::Context::with_context(PlRefPath::try_from_path(motions), || {
        format!("{}: not a usable path", motions.display())
    })?;
    let scan = || LazyFrame::scan_parquet(path.clone(), ScanArgsParquet::default());
    let mut summary = scan()?
        .select([
            col("split"),
            col("frames"),
            col("duration_s"),
            col("num_sentences"),
            col("has_text"),
        ])
        .group_by([col("split")])
        .agg([
            len().alias("motions"),
            col("frames").sum().alias("frames"),
            col("duration_s").mean().alias("duration_mean_s"),
            col("duration_s").min().alias("duration_min_s"),
            col("duration_s")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("duration_median_s"),
            col("duration_s")
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("duration_p90_s"),
            col("duration_s").max().alias("duration_max_s"),
            col("num_sentences").sum().alias("sentences"),
            col("has_text").not().sum().alias("motions_without_text"),
        ])
        .sort(["split"], Default::default())
        .collect()
        .map_err(|e| anyhow::anyhow!("summarising {}: {e}", motions.display()))?;
    write(&out.join("summary.parquet"), &mut summary)?;
    let mut by_sentences = scan()?
        .group_by([col("split"), col("num_sentences")])
        .agg([len().alias("motions")])
        .sort(["split", "num_sentences"], Default::default())
        .collect()?;
    write(&out.join("by_sentences.parquet"), &mut by_sentences)?;

    let names: Vec<&str> = pipe_kit::joints::KIT_JOINTS.to_vec();
    let lows: Vec<f64> = ranges.iter().map(|r| r.0).collect();
    let highs: Vec<f64> = ranges.iter().map(|r| r.1).collect();
    let limit_lo: Vec<f64> = pipe_kit::joints::LIMITS.iter().map(|l| l.0).collect();
    let limit_hi: Vec<f64> = pipe_kit::joints::LIMITS.iter().map(|l| l.1).collect();
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("joint".into(), names),
        Column::new("min_rad".into(), lows),
        Column::new("max_rad".into(), highs),
        Column::new("model_limit_lo_rad".into(), limit_lo),
        Column::new("model_limit_hi_rad".into(), limit_hi),
    ])?;
    write(&out.join("joint_ranges.parquet"), &mut df)
}

fn write(path: &Path, df: &mut DataFrame) -> anyhow::Result<()> {
    let f = anyhow::Context::with_context(std::fs::File::create(path), || {
        format!("creating {}", path.display())
    })?;
    ParquetWriter::new(f).finish(df)?;
    Ok(())
}

//! The text-to-motion model on libtorch (tch): `motion.train`, `motion.generate`
//! and `motion.evaluate` (and what `pipe generate` calls).
//!
//! `motion.train` deps (in order): `norm.json` (motion.stats), `motions.parquet` and
//! `texts.parquet` (kit.extract), `text_embeddings.parquet` (text.embed). Params:
//! `[model, train]`. Outs: `model.safetensors`, `config.json`, `train_log.parquet`,
//! `metrics.json`.

pub mod checkpoint;
pub mod config;
pub mod criteria;
pub mod data;
pub mod device;
pub mod diffusion;
pub mod evaluate;
pub mod generate;
pub mod model;
pub mod retrieval;
pub mod sample;
pub mod train;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use pipe_stage_api::{StageContext, StageKind};

use config::{ModelConfig, TrainConfig};
use train::{LogRow, Trainer};

/// Bump when training's outputs change for the same inputs.
pub const TRAIN_VERSION: u32 = 5; // 4: model.safetensors holds the training-sentence bank; 5: and its motions

pub fn write_log(path: &Path, rows: &[LogRow]) -> anyhow::Result<()> {
    let mut step = UInt64Builder::new();
    let mut f: Vec<(&str, Float64Builder)> = [
        "loss",
        "reconstruction",
        "velocity",
        "root",
        "length",
        "text_aux",
        "lr",
        "grad_norm",
        "samples_per_s",
        "wall_s",
        "data_s",
        "forward_s",
        "backward_s",
        "optimizer_s",
        "val_loss",
    ]
    .into_iter()
    .map(|n| (n, Float64Builder::new()))
    .collect();
    for r in rows {
        step.append_value(r.step);
        let vals = [
            Some(r.loss),
            Some(r.reconstruction),
            Some(r.velocity),
            Some(r.root),
            Some(r.length),
            Some(r.text_aux),
            Some(r.lr),
            Some(r.grad_norm),
            Some(r.samples_per_s),
            Some(r.wall_s),
            Some(r.data_s),
            Some(r.forward_s),
            Some(r.backward_s),
            Some(r.optimizer_s),
            r.val_loss,
        ];
        for ((_, b), v) in f.iter_mut().zip(vals) {
            b.append_option(v);
        }
    }
    let mut cols: Vec<(&str, ArrayRef)> = vec![("step", Arc::new(step.finish()))];
    for (n, mut b) in f {
        cols.push((n, Arc::new(b.finish())));
    }
    pipe_tabular::write_batch(
        path,
        RecordBatch::try_from_iter(cols)?,
        &[("pipe.schema".into(), "motion.train_log/1".into())],
    )
}

pub struct TrainStage;

impl StageKind for TrainStage {
    fn name(&self) -> &'static str {
        "motion.train"
    }
    fn version(&self) -> u32 {
        TRAIN_VERSION
    }
    fn environment(&self, _project_dir: &Path) -> BTreeMap<String, String> {
        let cuda = if tch::Cuda::is_available() {
            format!("cuda x{}", tch::Cuda::device_count())
        } else {
            "none".into()
        };
        [
            ("libtorch".to_string(), device::LIBTORCH_VERSION.to_string()),
            ("cuda".to_string(), cuda),
        ]
        .into()
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        ModelConfig::from_params(params)?;
        TrainConfig::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let params = &ctx.spec().params;
        let cfg = ModelConfig::from_params(params).map_err(anyhow::Error::msg)?;
        let tcfg = TrainConfig::from_params(params).map_err(anyhow::Error::msg)?;
        if tcfg.threads > 0 {
            tch::set_num_threads(tcfg.threads);
        }
        let device = device::resolve(device::parse(&tcfg.device).map_err(anyhow::Error::msg)?)?;
        let data = data::Dataset::load(
            ctx.dep(0)?,
            ctx.dep(1)?,
            ctx.dep(2)?,
            ctx.dep(3)?,
            tcfg.mirror,
        )?;
        if cfg.text_conditioning.tokens() && data.tokens.is_none() {
            anyhow::bail!(
                "model.text_conditioning: {:?} needs per-token text states: set embed.tokens: true",
                cfg.text_conditioning
            );
        }
        if tcfg.text_aux_weight > 0.0 && !cfg.text_conditioning.pooled() {
            anyhow::bail!(
                "train.text_aux_weight needs pooled text conditioning (model.text_conditioning: pooled or both), not {:?}",
                cfg.text_conditioning
            );
        }
        if tcfg.mirror {
            eprintln!(
                "mirroring: {} mirrored training pairs added, {} left out (the sentence with left/right swapped has no embedding)",
                data.mirrored.0, data.mirrored.1
            );
        }
        let mut trainer = Trainer::new(&data, cfg, tcfg, device);
        eprintln!(
            "training a {:?} model ({} parameters) on {} for {} steps: {} train / {} val pairs, libtorch {}",
            trainer.cfg.kind,
            trainer.parameter_count(),
            device::describe(device),
            trainer.tcfg.steps,
            data.split("train").len(),
            data.split("val").len(),
            device::LIBTORCH_VERSION,
        );
        let out = trainer.run(ctx.scratch(), &mut |d, t, m| ctx.progress(d, t, m))?;
        if let Some(s) = out.resumed_from {
            eprintln!("resumed from the checkpoint at step {s}");
        }
        trainer.export(&ctx.spec().out_dir)?;
        write_log(&ctx.out("train_log.parquet"), &trainer.log)?;
        let v = out.validation;
        let mut metrics = serde_json::json!({
            "steps": out.steps,
            "train_loss": out.final_train_loss,
            "val_loss": v.map(|v| v.loss),
            "val_loss_from_noise": v.map(|v| v.loss_from_noise),
            "val_loss_mean_pose": v.map(|v| v.loss_mean_pose),
            "val_pairs": v.map(|v| v.pairs),
            "samples_per_s": out.samples_per_s,
            "train_minutes": out.wall_s / 60.0,
            "parameters": trainer.parameter_count(),
            "device": device::describe(device),
            "libtorch": device::LIBTORCH_VERSION,
            "mirrored_pairs": data.mirrored.0,
            "mirrored_pairs_without_embedding": data.mirrored.1,
        });
        if let Some(s) = trainer.scaler {
            metrics["float16_loss_scale"] = s.scale.into();
            metrics["float16_skipped_steps"] = s.skipped.into();
            eprintln!(
                "float16 autocast: {} steps skipped on overflow, final loss scale {}",
                s.skipped, s.scale
            );
        }
        std::fs::write(
            ctx.out("metrics.json"),
            serde_json::to_vec_pretty(&metrics)?,
        )?;
        if let Some(v) = v {
            eprintln!(
                "validation: loss {:.4}, from noise {:.4}, mean pose {:.4} ({} pairs)",
                v.loss, v.loss_from_noise, v.loss_mean_pose, v.pairs
            );
        }
        Ok(())
    }
}

/// `motion.generate`: deps `[model.safetensors, config.json, encoder folder]`,
/// params `[generate]`, outs `[samples, generated.parquet]`.
pub struct GenerateStage;

impl StageKind for GenerateStage {
    fn name(&self) -> &'static str {
        "motion.generate"
    }
    fn version(&self) -> u32 {
        // 2: also a .bvh, .png and .gif per sample; 3: previews follow the root;
        // 4: GIFs with one global palette; 5: retrieval picks neighbours by the
        // model's text features.
        5
    }
    fn environment(&self, project_dir: &Path) -> BTreeMap<String, String> {
        let mut env = TrainStage.environment(project_dir);
        let ort = pipe_text::encoder::ort_library(project_dir)
            .map(|l| pipe_text::encoder::ort_version(&l))
            .unwrap_or_else(|_| "not found".into());
        env.insert("onnxruntime".into(), ort);
        env
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        let g = generate::GenerateConfig::from_params(params)?;
        if g.prompts.is_empty() {
            return Err("generate.prompts: list at least one prompt".into());
        }
        Ok(())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let cfg = generate::GenerateConfig::from_params(&ctx.spec().params)
            .map_err(anyhow::Error::msg)?;
        let lib = pipe_text::encoder::ort_library(&ctx.spec().project_dir)?;
        let mut g = generate::Generator::load(
            ctx.dep(0)?,
            ctx.dep(1)?,
            ctx.dep(2)?,
            &lib,
            &cfg.device,
            cfg.threads,
        )?;
        let t0 = std::time::Instant::now();
        let mut samples = g.generate(&cfg)?;
        let secs = t0.elapsed().as_secs_f64();
        generate::write_files(
            &mut samples,
            &ctx.out("samples"),
            &ctx.out("generated.parquet"),
            &cfg,
            cfg.height_m,
        )?;
        eprintln!(
            "generated {} motions ({} prompts x {}) in {secs:.2} s: {} DDIM steps, guidance {}",
            samples.len(),
            cfg.prompts.len(),
            cfg.count,
            cfg.steps,
            cfg.guidance
        );
        Ok(())
    }
}

/// `motion.evaluate`: deps `[synth kit folder, motions.parquet, texts.parquet,
/// model.safetensors, config.json, encoder folder]`, params `[evaluate]`, outs
/// `[metrics.json, metrics.parquet, samples.parquet]`.
pub struct EvaluateStage;

impl StageKind for EvaluateStage {
    fn name(&self) -> &'static str {
        "motion.evaluate"
    }
    fn version(&self) -> u32 {
        // 2: foot skating on the MMM body; 3: retrieval by the model's text features;
        // 4: distance to the nearest training motion.
        4
    }
    fn environment(&self, project_dir: &Path) -> BTreeMap<String, String> {
        GenerateStage.environment(project_dir)
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        evaluate::EvaluateConfig::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let cfg = evaluate::EvaluateConfig::from_params(&ctx.spec().params)
            .map_err(anyhow::Error::msg)?;
        let lib = pipe_text::encoder::ort_library(&ctx.spec().project_dir)?;
        let mut g = generate::Generator::load(
            ctx.dep(3)?,
            ctx.dep(4)?,
            ctx.dep(5)?,
            &lib,
            &cfg.sampler.device,
            cfg.sampler.threads,
        )?;
        let r = evaluate::evaluate(
            ctx.dep(0)?,
            ctx.dep(1)?,
            ctx.dep(2)?,
            &mut g,
            &cfg,
            &|d, t, m| ctx.progress(d, t, m),
        )?;
        let m = r.metrics_json();
        std::fs::write(ctx.out("metrics.json"), serde_json::to_vec_pretty(&m)?)?;
        r.write_parquet(&ctx.out("metrics.parquet"), &ctx.out("samples.parquet"))?;
        eprintln!(
            "held-out paraphrases: {:.1}% right, training sentences: {:.1}% ({} motions); text probe {:.1}%; criteria on the data {:.1}%",
            m["accuracy_heldout"].as_f64().unwrap_or(0.0) * 100.0,
            m["accuracy_train_sentences"].as_f64().unwrap_or(0.0) * 100.0,
            r.judged.len(),
            r.probe_accuracy_heldout * 100.0,
            r.criteria_accuracy_real * 100.0,
        );
        Ok(())
    }
}

pub fn kinds() -> Vec<Box<dyn StageKind>> {
    vec![
        Box::new(TrainStage),
        Box::new(GenerateStage),
        Box::new(EvaluateStage),
    ]
}

//! Sentence embeddings through ONNX Runtime: the encoder (`encoder`), the
//! `text.embed` stage (`texts.parquet` → deduplicated `text_embeddings.parquet`) and
//! the helpers behind `pipe embed`. Knows nothing about scheduling.

pub mod encoder;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Int32Builder, ListBuilder, StringBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pipe_stage_api::{StageContext, StageKind};
use serde::Deserialize;

pub use encoder::{cosine, ort_library, ort_version, Encoder};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedParams {
    /// Sentences per ONNX Runtime call.
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Also store per-token encoder states (for cross-attention conditioning).
    pub tokens: bool,
    /// Also embed each sentence with "left" and "right" swapped, so that mirror
    /// augmentation (`train.mirror`) can pair every mirrored motion with its text.
    pub mirrored: bool,
}

impl Default for EmbedParams {
    fn default() -> Self {
        EmbedParams {
            batch_size: 64,
            threads: 2,
            tokens: false,
            mirrored: false,
        }
    }
}

impl EmbedParams {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let p: EmbedParams = pipe_stage_api::section(params, "embed")?;
        if p.batch_size == 0 || p.batch_size > 4096 {
            return Err(format!(
                "embed.batch_size must be in 1..=4096, got {}",
                p.batch_size
            ));
        }
        if p.threads == 0 || p.threads > 256 {
            return Err(format!(
                "embed.threads must be in 1..=256, got {}",
                p.threads
            ));
        }
        Ok(p)
    }
}

/// The `sentence` column of a `texts.parquet`.
pub fn read_sentences(path: &Path) -> anyhow::Result<Vec<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = batch
            .column_by_name("sentence")
            .with_context(|| format!("{}: no `sentence` column", path.display()))?;
        let s = col
            .as_any()
            .downcast_ref::<StringArray>()
            .with_context(|| format!("{}: `sentence` is not a string column", path.display()))?;
        out.extend(
            (0..s.len())
                .filter(|&i| s.is_valid(i))
                .map(|i| s.value(i).to_string()),
        );
    }
    Ok(out)
}

/// What an embedding run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedSummary {
    pub sentences: usize,
    pub unique_sentences: usize,
    pub dim: usize,
    /// Tokens of the distinct sentences, and token slots the encoder ran (with padding).
    pub tokens: usize,
    pub padded_tokens: usize,
    pub seconds: f64,
    pub sentences_per_second: f64,
}

/// Embed every distinct sentence once and write `out` (Parquet).
pub fn embed_sentences(
    enc: &mut Encoder,
    sentences: &[String],
    p: &EmbedParams,
    out: &Path,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<EmbedSummary> {
    let unique: Vec<&str> = sentences
        .iter()
        .map(String::as_str)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if p.tokens && !enc.has_token_output() {
        bail!("embed.tokens is set but the encoder has no per-token output");
    }
    let t0 = std::time::Instant::now();
    // A batch is padded to its longest sentence, so batches of sentences with the
    // same number of tokens waste nothing on padding. Ordering by characters (what
    // sentence-transformers does) left 22% of the encoder's tokens as padding on the
    // benchmark corpus; ordering by tokens leaves 1%. Stable: ties stay sorted.
    let counts = enc.count_tokens(&unique)?;
    let tokens = counts.iter().sum();
    let mut padded_tokens = 0;
    let mut order: Vec<usize> = (0..unique.len()).collect();
    order.sort_by_key(|&i| counts[i]);
    let unique: Vec<&str> = order.into_iter().map(|i| unique[i]).collect();
    let dim = enc.dim as i32;
    let mut sent_b = StringBuilder::new();
    let mut emb_b = FixedSizeListBuilder::new(Float32Builder::new(), dim);
    let mut ntok_b = Int32Builder::new();
    let mut tok_b = ListBuilder::new(FixedSizeListBuilder::new(Float32Builder::new(), dim));
    for (bi, chunk) in unique.chunks(p.batch_size).enumerate() {
        let e = enc.encode_batch(chunk, p.tokens)?;
        padded_tokens += chunk.len() * e.n_tokens.iter().max().copied().unwrap_or(0);
        for (k, s) in chunk.iter().enumerate() {
            sent_b.append_value(s);
            emb_b.values().append_slice(&e.pooled[k]);
            emb_b.append(true);
            ntok_b.append_value(e.n_tokens[k] as i32);
            if let Some(toks) = &e.tokens {
                for v in &toks[k] {
                    tok_b.values().values().append_slice(v);
                    tok_b.values().append(true);
                }
                tok_b.append(true);
            }
        }
        progress(((bi + 1) * p.batch_size).min(unique.len()), unique.len());
    }
    let seconds = t0.elapsed().as_secs_f64();
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        ("sentence", Arc::new(sent_b.finish())),
        ("embedding", Arc::new(emb_b.finish())),
        ("n_tokens", Arc::new(ntok_b.finish())),
    ];
    if p.tokens {
        cols.push(("token_states", Arc::new(tok_b.finish())));
    }
    let batch = RecordBatch::try_from_iter(cols)?;
    let meta = [
        ("pipe.schema".to_string(), "text.embeddings/1".to_string()),
        ("pipe.encoder".to_string(), enc.name.clone()),
        ("pipe.encoder_digest".to_string(), enc.digest.clone()),
        ("pipe.dim".to_string(), enc.dim.to_string()),
    ];
    pipe_tabular::write_batch(out, batch, &meta)?;
    Ok(EmbedSummary {
        sentences: sentences.len(),
        unique_sentences: unique.len(),
        dim: enc.dim,
        tokens,
        padded_tokens,
        seconds,
        sentences_per_second: unique.len() as f64 / seconds.max(1e-9),
    })
}

/// The `text.embed` stage: deps `[texts.parquet, encoder folder]`, params `[embed]`.
pub struct EmbedStage;

impl StageKind for EmbedStage {
    fn name(&self) -> &'static str {
        "text.embed"
    }
    fn version(&self) -> u32 {
        // 2: batches ordered by tokens (rows in a new order; vectors differ by ~3e-8).
        2
    }
    fn environment(&self, project_dir: &Path) -> BTreeMap<String, String> {
        let v = ort_library(project_dir)
            .map(|l| ort_version(&l))
            .unwrap_or_else(|_| "not found".into());
        [("onnxruntime".to_string(), v)].into()
    }
    fn validate_params(&self, params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        EmbedParams::from_params(params).map(|_| ())
    }
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()> {
        let p = EmbedParams::from_params(&ctx.spec().params).map_err(anyhow::Error::msg)?;
        let texts = ctx.dep(0)?;
        let enc_dir = ctx.dep(1)?;
        let lib = ort_library(&ctx.spec().project_dir)?;
        let mut enc = Encoder::load(enc_dir, &lib, p.threads)?;
        let mut sentences = read_sentences(texts)?;
        if p.mirrored {
            // Only the forms that differ; repeats are embedded once anyway.
            let swapped: Vec<String> = sentences
                .iter()
                .map(|s| pipe_kit::body::mirror::mirror_sentence(s))
                .zip(&sentences)
                .filter(|(m, s)| m != *s)
                .map(|(m, _)| m)
                .collect();
            sentences.extend(swapped);
        }
        let out = ctx.out("text_embeddings.parquet");
        let s = embed_sentences(&mut enc, &sentences, &p, &out, &|d, t| {
            ctx.progress(d as u64, t as u64, "sentences")
        })?;
        std::fs::write(ctx.out("metrics.json"), serde_json::to_vec_pretty(&s)?)?;
        eprintln!(
            "embedded {} distinct of {} sentences ({}-d, {}) at {:.0} sentences/s",
            s.unique_sentences, s.sentences, s.dim, enc.name, s.sentences_per_second
        );
        Ok(())
    }
}

pub fn kinds() -> Vec<Box<dyn StageKind>> {
    vec![Box::new(EmbedStage)]
}

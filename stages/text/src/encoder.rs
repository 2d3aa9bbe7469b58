//! A text encoder: a Hugging Face `tokenizer.json` plus an ONNX model run by ONNX
//! Runtime. Works with any model whose inputs are `input_ids` and `attention_mask`
//! (optionally `token_type_ids`, fed zeros) and whose pooled output is a
//! `[batch, dim]` float tensor (`text_embeds` for CLIP's text tower and our MiniLM
//! export; otherwise the first 2-D output), optionally with per-token states
//! (`last_hidden_state`, `[batch, tokens, dim]`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context};
use ndarray::Array2;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{OutputSelector, RunOptions, Session};
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// `encoder.json` beside the model (optional: defaults are inferred from the model).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct EncoderMeta {
    pub name: Option<String>,
    pub max_tokens: Option<usize>,
    pub pooled_output: Option<String>,
    pub token_output: Option<String>,
}

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Where ONNX Runtime's shared library is: `ORT_DYLIB_PATH`, or the `onnxruntime`
/// wheel in the project's `.venv` (set up by `scripts/setup`).
pub fn ort_library(project: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("ORT_DYLIB_PATH={} does not exist", p.display());
        }
        return Ok(p);
    }
    let lib = project.join(".venv/lib");
    if let Ok(rd) = std::fs::read_dir(&lib) {
        for py in rd.flatten() {
            let capi = py.path().join("site-packages/onnxruntime/capi");
            if let Ok(files) = std::fs::read_dir(&capi) {
                for f in files.flatten() {
                    let n = f.file_name().to_string_lossy().to_string();
                    if n.starts_with("libonnxruntime.so.") {
                        return Ok(f.path());
                    }
                }
            }
        }
    }
    bail!(
        "ONNX Runtime's library was not found: set ORT_DYLIB_PATH to libonnxruntime.so, or run scripts/setup (it installs the onnxruntime wheel into {}/.venv)",
        project.display()
    )
}

/// The ONNX Runtime version from the library's file name (`libonnxruntime.so.1.31.1`).
pub fn ort_version(lib: &Path) -> String {
    lib.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .unwrap_or("unknown")
        .to_string()
}

fn environment(lib: &Path) -> anyhow::Result<&'static ort::environment::Environment> {
    let env = ENV.get_or_init(|| {
        ort::init_from(lib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))
            .and_then(|b| b.with_name("pipe").build().map_err(|e| e.to_string()))
    });
    env.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

pub struct Encoder {
    tokenizer: Tokenizer,
    session: Session,
    pooled: String,
    token_output: Option<String>,
    token_type_ids: bool,
    pub dim: usize,
    pub max_tokens: usize,
    pub name: String,
    /// blake3 over model.onnx and tokenizer.json.
    pub digest: String,
}

/// One encoded batch: pooled vectors and, if asked, per-token states.
pub struct Encoded {
    pub pooled: Vec<Vec<f32>>,
    pub tokens: Option<Vec<Vec<Vec<f32>>>>,
    pub n_tokens: Vec<usize>,
}

impl Encoder {
    /// The tokenizer and the ONNX Runtime session of `model`.
    fn build(
        model: &Path,
        tok: &Path,
        ort_lib: &Path,
        threads: usize,
    ) -> anyhow::Result<(Tokenizer, Session)> {
        // ONNX Runtime uses every core it is given; tokenizer threads spinning beside
        // it cost ~15% on 2 cores (measured), and tokenizing is ~1% of the time.
        tokenizers::utils::parallelism::set_parallelism(false);
        let tokenizer = Tokenizer::from_file(tok).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid Hugging Face tokenizer.json: {e}",
                tok.display()
            )
        })?;
        let env = environment(ort_lib)?;
        let session = Session::builder(env)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::All)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_intra_threads(threads.max(1)).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: ONNX Runtime cannot load the model: {e}",
                    model.display()
                )
            })?;
        Ok((tokenizer, session))
    }

    /// Load `dir/model.onnx` and `dir/tokenizer.json` (and `dir/encoder.json` if present).
    pub fn load(dir: &Path, ort_lib: &Path, threads: usize) -> anyhow::Result<Self> {
        let model = dir.join("model.onnx");
        let tok = dir.join("tokenizer.json");
        for f in [&model, &tok] {
            if !f.is_file() {
                bail!(
                    "encoder {}: missing {}",
                    dir.display(),
                    f.file_name().and_then(|n| n.to_str()).unwrap_or("?")
                );
            }
        }
        let meta: EncoderMeta = match std::fs::read(dir.join("encoder.json")) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}: invalid encoder.json", dir.display()))?,
            Err(_) => EncoderMeta::default(),
        };
        // Hashing the ~90 MB model (memory-mapped: reading it into fresh memory
        // cost more than hashing) runs beside ONNX Runtime's session build, which
        // reads the file itself. Encoder load: 0.30 s → 0.19 s on 2 cores.
        let (digest, built) = std::thread::scope(|s| {
            let (m, t) = (&model, &tok);
            let digest = s.spawn(move || -> anyhow::Result<String> {
                let mut h = blake3::Hasher::new();
                for f in [m, t] {
                    h.update_mmap(f)
                        .with_context(|| format!("reading {}", f.display()))?;
                }
                Ok(h.finalize().to_hex().to_string())
            });
            let built = Self::build(&model, &tok, ort_lib, threads);
            let digest = digest
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("hashing {} failed", model.display())));
            (digest, built)
        });
        let (digest, (mut tokenizer, session)) = (digest?, built?);

        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        for need in ["input_ids", "attention_mask"] {
            if !inputs.iter().any(|i| i == need) {
                bail!(
                    "{}: the model has no input `{need}` (inputs: {}); a text encoder needs `input_ids` and `attention_mask`",
                    model.display(),
                    inputs.join(", ")
                );
            }
        }
        let unknown: Vec<&String> = inputs
            .iter()
            .filter(|i| !["input_ids", "attention_mask", "token_type_ids"].contains(&i.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "{}: unsupported model inputs: {:?}",
                model.display(),
                unknown
            );
        }
        let pooled = match &meta.pooled_output {
            Some(p) => p.clone(),
            None if outputs.iter().any(|o| o == "text_embeds") => "text_embeds".into(),
            None if outputs.iter().any(|o| o == "sentence_embedding") => "sentence_embedding".into(),
            None => bail!(
                "{}: no pooled output found (outputs: {}); name it in encoder.json as `pooled_output`",
                model.display(),
                outputs.join(", ")
            ),
        };
        if !outputs.contains(&pooled) {
            bail!(
                "{}: no output `{pooled}` (outputs: {})",
                model.display(),
                outputs.join(", ")
            );
        }
        let token_output = meta
            .token_output
            .clone()
            .or_else(|| {
                outputs
                    .iter()
                    .any(|o| o == "last_hidden_state")
                    .then(|| "last_hidden_state".to_string())
            })
            .filter(|t| outputs.contains(t));
        let max_tokens = meta.max_tokens.unwrap_or(512);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;
        let pad_id = tokenizer.get_padding().map(|p| p.pad_id).unwrap_or(0);
        let pad_token = tokenizer
            .get_padding()
            .map(|p| p.pad_token.clone())
            .unwrap_or_else(|| "[PAD]".into());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..Default::default()
        }));
        let mut enc = Encoder {
            tokenizer,
            session,
            pooled,
            token_output,
            token_type_ids: inputs.iter().any(|i| i == "token_type_ids"),
            dim: 0,
            max_tokens,
            name: meta.name.unwrap_or_else(|| {
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("encoder")
                    .to_string()
            }),
            digest,
        };
        // One probe tells the dimension and checks the output shapes.
        let probe = enc.encode_batch(&["a"], false)?;
        enc.dim = probe.pooled.first().map(Vec::len).unwrap_or(0);
        if enc.dim == 0 {
            bail!(
                "{}: the pooled output `{}` is empty",
                model.display(),
                enc.pooled
            );
        }
        Ok(enc)
    }

    pub fn has_token_output(&self) -> bool {
        self.token_output.is_some()
    }

    /// The number of tokens (after truncation) of each sentence, unpadded.
    pub fn count_tokens(&self, sentences: &[&str]) -> anyhow::Result<Vec<usize>> {
        sentences
            .iter()
            .map(|s| {
                self.tokenizer
                    .encode(*s, true)
                    .map(|e| e.get_ids().len())
                    .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))
            })
            .collect()
    }

    /// Encode one batch (tokenised together, padded to its longest sentence).
    pub fn encode_batch(
        &mut self,
        sentences: &[&str],
        want_tokens: bool,
    ) -> anyhow::Result<Encoded> {
        if let Some(i) = sentences.iter().position(|s| s.trim().is_empty()) {
            bail!("sentence {i} is empty");
        }
        let encs = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let b = encs.len();
        let t = encs.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = Array2::<i64>::zeros((b, t));
        let mut mask = Array2::<i64>::zeros((b, t));
        let mut n_tokens = Vec::with_capacity(b);
        for (r, e) in encs.iter().enumerate() {
            for (c, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
                ids[[r, c]] = id as i64;
                mask[[r, c]] = m as i64;
            }
            n_tokens.push(e.get_attention_mask().iter().filter(|&&m| m == 1).count());
        }
        let types = Array2::<i64>::zeros((b, t));
        let ids_v = TensorRef::from_array_view(&ids)?;
        let mask_v = TensorRef::from_array_view(&mask)?;
        let types_v = TensorRef::from_array_view(&types)?;
        // Only the outputs needed are computed and copied out.
        let mut select = OutputSelector::no_default().with(self.pooled.clone());
        if let (Some(name), true) = (&self.token_output, want_tokens) {
            select = select.with(name.clone());
        }
        let options = RunOptions::new()?.with_outputs(select);
        let outputs = if self.token_type_ids {
            self.session.run_with_options(
                ort::inputs!["input_ids" => ids_v, "attention_mask" => mask_v, "token_type_ids" => types_v],
                &options,
            )?
        } else {
            self.session.run_with_options(
                ort::inputs!["input_ids" => ids_v, "attention_mask" => mask_v],
                &options,
            )?
        };
        let pooled_arr = outputs[self.pooled.as_str()]
            .try_extract_array::<f32>()
            .with_context(|| format!("output `{}` is not a float tensor", self.pooled))?;
        if pooled_arr.ndim() != 2 || pooled_arr.shape()[0] != b {
            bail!(
                "output `{}` has shape {:?}, expected [batch, dim]",
                self.pooled,
                pooled_arr.shape()
            );
        }
        let pooled: Vec<Vec<f32>> = pooled_arr
            .outer_iter()
            .map(|r| r.iter().copied().collect())
            .collect();
        let tokens = match (&self.token_output, want_tokens) {
            (Some(name), true) => {
                let arr = outputs[name.as_str()].try_extract_array::<f32>()?;
                if arr.ndim() != 3 {
                    bail!(
                        "output `{name}` has shape {:?}, expected [batch, tokens, dim]",
                        arr.shape()
                    );
                }
                Some(
                    arr.outer_iter()
                        .zip(&n_tokens)
                        .map(|(s, &n)| {
                            s.outer_iter()
                                .take(n)
                                .map(|v| v.iter().copied().collect())
                                .collect()
                        })
                        .collect(),
                )
            }
            (None, true) => bail!("the encoder has no per-token output (e.g. `last_hidden_state`)"),
            _ => None,
        };
        Ok(Encoded {
            pooled,
            tokens,
            n_tokens,
        })
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The pooled vectors of one batch of sentences, encoded by another process:
/// `pipe generate` encodes its prompts while `pipe-torch`, which does the sampling,
/// starts up (libtorch's static set-up, ~0.3–0.5 s before `main`), and hands them
/// over on its stdin as one line of JSON. The receiver uses them only where its own
/// encoder would give the same bits: the same folder, digest, threads and batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handed {
    /// The encoder folder, canonical.
    pub dir: PathBuf,
    /// [`Encoder::digest`].
    pub digest: String,
    /// ONNX Runtime's intra-op threads.
    pub threads: usize,
    /// The batch, in order (vectors depend on the batch through its padding).
    pub sentences: Vec<String>,
    /// Each sentence's pooled vector as `f32` bit patterns (exact through JSON).
    pub bits: Vec<Vec<u32>>,
}

impl Handed {
    /// Encode `sentences` as one batch with `encoder` (loaded from `dir` with `threads`).
    pub fn encode(
        encoder: &mut Encoder,
        dir: &Path,
        threads: usize,
        sentences: Vec<String>,
    ) -> anyhow::Result<Self> {
        let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
        let pooled = encoder.encode_batch(&refs, false)?.pooled;
        Ok(Handed {
            dir: std::fs::canonicalize(dir)
                .with_context(|| format!("encoder folder {}", dir.display()))?,
            digest: encoder.digest.clone(),
            threads,
            sentences,
            bits: pooled
                .iter()
                .map(|v| v.iter().map(|x| x.to_bits()).collect())
                .collect(),
        })
    }

    /// The pooled vectors of `batch` if it is the batch handed over.
    pub fn pooled(&self, batch: &[&str]) -> Option<Vec<Vec<f32>>> {
        (self.sentences.len() == batch.len()
            && self.sentences.iter().zip(batch).all(|(a, b)| a == b))
        .then(|| {
            self.bits
                .iter()
                .map(|v| v.iter().map(|&b| f32::from_bits(b)).collect())
                .collect()
        })
    }

    /// Whether these vectors are what the encoder in `dir` (with `threads`) whose
    /// digest should be `digest` gives.
    pub fn matches(&self, dir: &Path, digest: &str, threads: usize) -> bool {
        !digest.is_empty()
            && self.digest == digest
            && self.threads == threads
            && std::fs::canonicalize(dir).is_ok_and(|d| d == self.dir)
    }
}

#[cfg(test)]
mod handed_tests {
    use super::*;

    #[test]
    fn handed_vectors_are_exact_and_only_for_their_batch() {
        let tmp = std::fs::canonicalize(std::env::temp_dir()).expect("temp dir");
        let h = Handed {
            dir: tmp.clone(),
            digest: "d".into(),
            threads: 2,
            sentences: vec!["a".into(), "b".into()],
            bits: vec![
                vec![0.1f32.to_bits(), (-3.0e-39f32).to_bits()],
                vec![f32::MAX.to_bits(), 0],
            ],
        };
        let back: Handed =
            serde_json::from_str(&serde_json::to_string(&h).expect("json")).expect("parses");
        assert_eq!(back, h);
        let v = back.pooled(&["a", "b"]).expect("same batch");
        assert_eq!(v[0], vec![0.1f32, -3.0e-39]);
        assert_eq!(v[1], vec![f32::MAX, 0.0]);
        assert!(back.pooled(&["a"]).is_none());
        assert!(back.pooled(&["b", "a"]).is_none());
        assert!(back.matches(&tmp, "d", 2));
        assert!(!back.matches(&tmp, "d", 1), "other threads");
        assert!(!back.matches(&tmp, "e", 2), "other digest");
        assert!(!back.matches(&tmp, "", 2), "no digest to check against");
        assert!(
            !back.matches(Path::new("/nonexistent-encoder"), "d", 2),
            "other folder"
        );
    }
}

//! A small harness for driving the real `pipe` binary in a fresh temporary project.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pipe")
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, rel: &str, content: &str) -> Self {
        self.write(rel, content);
        self
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(self.path()).env_remove("PIPE_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Out(self.cmd(args).output().expect("run pipe"))
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pipe")
    }

    /// `pipe run --json ARGS` → JSON (asserting exit code `code`).
    pub fn run_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let mut a = vec!["run", "--json", "-q"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        assert_eq!(
            o.code(),
            code,
            "pipe {a:?}\nstdout: {}\nstderr: {}",
            o.stdout(),
            o.stderr()
        );
        serde_json::from_str(&o.stdout()).expect("json on stdout")
    }

    /// Stage name → status of a `run --json` result.
    pub fn statuses(&self, args: &[&str]) -> Vec<(String, String)> {
        statuses(&self.run_json(args, 0))
    }

    /// Complete entries of a stage in the store.
    pub fn entries(&self, stage: &str) -> Vec<PathBuf> {
        let dir = self.path().join("artifacts").join(stage);
        let Ok(rd) = std::fs::read_dir(dir) else {
            return vec![];
        };
        let mut v: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(".manifest.json").is_file())
            .collect();
        v.sort();
        v
    }
}

pub fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    v["stages"]
        .as_array()
        .expect("stages array")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).to_string()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).to_string()
    }
    pub fn success(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Wait until `cond` holds (polling), panicking after `secs`.
pub fn wait_for(secs: f64, what: &str, cond: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(
            t0.elapsed().as_secs_f64() < secs,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Redact run ids, keys, digests, temp paths and timings for snapshots.
pub fn redact(s: &str, root: &Path) -> String {
    let root = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
    let s = s.replace(&root.display().to_string(), "[PROJECT]");
    let mut out = String::new();
    for line in s.lines() {
        if line.starts_with("ran:") {
            out.push_str("ran:    [TIME, HOST, DURATION, RUN]\n");
            continue;
        }
        let mut l = String::new();
        for tok in line.split_inclusive(|c: char| {
            c.is_whitespace() || c == '/' || c == '"' || c == '(' || c == ')'
        }) {
            let core = tok.trim_end_matches(|c: char| {
                c.is_whitespace() || matches!(c, '/' | '"' | '(' | ')' | ':')
            });
            let tail = &tok[core.len()..];
            let redacted = if core.len() >= 16 && core.chars().all(|c| c.is_ascii_hexdigit()) {
                "[HASH]".to_string()
            } else if core.len() == 20
                && core.chars().nth(8) == Some('-')
                && core.chars().nth(15) == Some('-')
            {
                "[RUN]".to_string()
            } else if core.ends_with('s')
                && core[..core.len() - 1].parse::<f64>().is_ok()
                && core.contains('.')
            {
                "[T]s".to_string()
            } else {
                core.to_string()
            };
            l.push_str(&redacted);
            l.push_str(tail);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The Python of the project venv (set up by `scripts/setup`; `scripts/test` exports
/// PIPE_PYTHON). Tests that need it fail loudly without it rather than skip.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PIPE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv: run scripts/test (or scripts/setup) first, or set PIPE_PYTHON"
    );
    venv
}

/// Run a Python snippet with the project venv; returns stdout, asserting success.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let o = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default encoder made by `scripts/setup`.
pub fn minilm() -> PathBuf {
    let p = repo().join("encoders/all-minilm-l6-v2");
    assert!(
        p.join("model.onnx").exists(),
        "no exported encoder: run scripts/test (or scripts/setup) first"
    );
    p
}

/// ONNX Runtime's library in the project venv.
pub fn ort_dylib() -> PathBuf {
    let lib = python()
        .parent()
        .and_then(|b| b.parent())
        .map(|v| v.join("lib"))
        .expect("venv layout");
    let found = std::fs::read_dir(&lib)
        .expect("venv lib")
        .flatten()
        .flat_map(|py| {
            std::fs::read_dir(py.path().join("site-packages/onnxruntime/capi"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .find(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("libonnxruntime.so.")
        });
    found
        .map(|f| f.path())
        .expect("onnxruntime wheel in the venv (run scripts/setup)")
}

/// The tiny CLIP test fixture made by `scripts/setup`.
pub fn clip_tiny() -> PathBuf {
    let p = repo().join("encoders/clip-text-tiny");
    assert!(
        p.join("model.onnx").exists(),
        "no CLIP fixture: run scripts/test (or scripts/setup) first"
    );
    p
}

// A project with the whole motion pipeline (synthetic data → ... → generate,
// evaluate) and a model small enough for seconds of CPU training.

pub const MOTION_PIPELINE: &str = "config: c.yaml
stages:
  synth:
    uses: kit.synth
    params: [synth]
    outs: [kit]
  extract:
    uses: kit.extract
    deps: [synth/kit]
    params: [extract]
    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]
  embed:
    uses: text.embed
    deps: [extract/texts.parquet, encoders/all-minilm-l6-v2]
    params: [embed]
    outs: [text_embeddings.parquet, metrics.json]
  stats:
    uses: motion.stats
    deps: [extract/motions.parquet]
    params: [stats]
    outs: [norm.json, summary.parquet, by_sentences.parquet, joint_ranges.parquet, metrics.json]
  train:
    uses: motion.train
    deps: [stats/norm.json, extract/motions.parquet, extract/texts.parquet, embed/text_embeddings.parquet]
    params: [model, train]
    outs: [model.safetensors, config.json, train_log.parquet, metrics.json]
  generate:
    uses: motion.generate
    deps: [train/model.safetensors, train/config.json, encoders/all-minilm-l6-v2]
    params: [generate]
    outs: [samples, generated.parquet]
  evaluate:
    uses: motion.evaluate
    deps: [synth/kit, extract/motions.parquet, extract/texts.parquet, train/model.safetensors, train/config.json, encoders/all-minilm-l6-v2]
    params: [evaluate]
    outs: [metrics.json, metrics.parquet, samples.parquet]
";

/// A model small enough for seconds of CPU training.
pub const TINY: &str = "synth:
  count: 130
extract:
  fps: 20
  split: {val: 0.2, test: 0.1, seed: 1}
embed:
  threads: 1
  tokens: false
stats:
  std_floor: 0.001
model:
  kind: diffusion
  text_conditioning: pooled
  layers: 2
  d_model: 128
  heads: 4
  ff: 256
  dropout: 0.1
  frames_per_token: 2
  max_frames: 160
  diffusion_steps: 100
  self_condition: false
train:
  steps: 300
  batch_size: 16
  lr: 0.002
  warmup_steps: 20
  threads: 1
  device: cpu
  checkpoint_every: 25
  eval_every: 100
  ema: 0.99
  text_aux_weight: 1.0
generate:
  prompts: [a person walks forward, someone waves with the left hand]
  seconds: 3
  count: 2
  seed: 0
  steps: 10
  guidance: 2.5
  eta: 0.0
  eta_from: 0.0
  guidance_rescale: 0.0
  velocity_guidance: null
  height_guidance: null
  retrieval: 0
  retrieval_mix: 0.5
  retrieval_space: model
  retrieval_init: 0.0
  retrieval_rank: false
  negative_prompt: ''
  threads: 1
evaluate:
  sentences_per_action: 2
  seeds: 2
  steps: 10
  guidance: 2.5
  eta: 0.0
  guidance_rescale: 0.0
  retrieval: 3
  threads: 1
";

pub fn motion_project(config: &str) -> Project {
    let p = Project::new()
        .file("pipeline.yaml", MOTION_PIPELINE)
        .file("c.yaml", config);
    std::fs::create_dir_all(p.path().join("encoders")).expect("mkdir");
    std::os::unix::fs::symlink(minilm(), p.path().join("encoders/all-minilm-l6-v2")).expect("link");
    // ONNX Runtime's library is found through the project's venv, as for users.
    std::os::unix::fs::symlink(repo().join(".venv"), p.path().join(".venv")).expect("link");
    p
}

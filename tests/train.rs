//! motion.train through the real binary, on the synthetic KIT-format data: a killed
//! run resumes to bit-identical weights, the model beats the mean pose on the
//! validation split, only what a parameter feeds re-runs, and bad configs or
//! checkpoints are clear errors.

mod common;

use std::path::{Path, PathBuf};

use common::{kill9, minilm, pairs, repo, run_python, wait_for, Project};

const PIPELINE: &str = "config: c.yaml
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
";

/// A model small enough for seconds of CPU training.
const TINY: &str = "synth:
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
train:
  steps: 300
  batch_size: 16
  lr: 0.002
  warmup_steps: 20
  threads: 1
  device: cpu
  checkpoint_every: 25
  eval_every: 100
";

fn project(config: &str) -> Project {
    let p = Project::new()
        .file("pipeline.yaml", PIPELINE)
        .file("c.yaml", config);
    std::fs::create_dir_all(p.path().join("encoders")).expect("mkdir");
    std::os::unix::fs::symlink(minilm(), p.path().join("encoders/all-minilm-l6-v2")).expect("link");
    // ONNX Runtime's library is found through the project's venv, as for users.
    std::os::unix::fs::symlink(repo().join(".venv"), p.path().join(".venv")).expect("link");
    p
}

fn train_dir(p: &Project) -> PathBuf {
    let e = p.entries("train");
    assert_eq!(e.len(), 1, "one train entry: {e:?}");
    e[0].clone()
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).expect("metrics"))
        .expect("json")
}

/// The newest checkpoint step in the train stage's scratch folder.
fn checkpoint(p: &Project) -> Option<(u64, PathBuf)> {
    let scratch = p.path().join("artifacts/.scratch/train");
    std::fs::read_dir(scratch)
        .ok()?
        .flatten()
        .flat_map(|k| std::fs::read_dir(k.path()).into_iter().flatten().flatten())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("ckpt-")?
                .parse::<u64>()
                .ok()
                .map(|s| (s, e.path()))
        })
        .max()
}

/// Processes whose working directory is `dir` (the runner and its stage children).
fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().expect("canonical");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            (std::fs::read_link(e.path().join("cwd")).ok()? == dir).then_some(pid)
        })
        .collect()
}

#[test]
fn a_killed_training_resumes_to_bit_identical_weights() {
    let whole = project(TINY);
    assert_eq!(whole.run(&["run", "-q"]).success().code(), 0);
    let reference = std::fs::read(train_dir(&whole).join("model.safetensors")).expect("weights");

    let p = project(TINY);
    let mut child = p.spawn(&["run", "-q"]);
    wait_for(300.0, "a checkpoint at step 75 or later", || {
        checkpoint(&p).is_some_and(|(s, _)| s >= 75)
    });
    for pid in processes_in(p.path()) {
        kill9(pid);
    }
    let _ = child.wait();
    assert!(
        p.entries("train").is_empty(),
        "killed before the end: nothing published"
    );
    let (step, ckpt) = checkpoint(&p).expect("checkpoint kept");
    assert!(step < 300, "killed mid-training (at step {step})");

    // A corrupt checkpoint is a clear error naming the file; nothing is lost.
    let state = ckpt.join("state.safetensors");
    let good = std::fs::read(&state).expect("state");
    std::fs::write(&state, &good[..good.len() / 2]).expect("truncate");
    let bad = p.run(&["run", "-q"]);
    assert_eq!(bad.code(), 1, "{}", bad.stderr());
    assert!(
        bad.stderr().contains("state.safetensors") && bad.stderr().contains("corrupt checkpoint"),
        "{}",
        bad.stderr()
    );
    std::fs::write(&state, &good).expect("restore");

    p.run(&["run", "-q"]).success();
    let log = std::fs::read_dir(p.path().join("artifacts/.logs"))
        .expect("logs")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("train-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .unwrap_or_default();
    assert!(
        log.contains(&format!("resumed from the checkpoint at step {step}")),
        "{log}"
    );
    let resumed = std::fs::read(train_dir(&p).join("model.safetensors")).expect("weights");
    assert!(
        reference == resumed,
        "resumed weights differ from the uninterrupted run"
    );
    assert_eq!(metrics(&train_dir(&p))["steps"], 300);
    // The log covers every step once, before and after the resume.
    let code = r#"
import sys, polars as pl
a, b = (pl.read_parquet(d + "/train_log.parquet") for d in sys.argv[1:3])
assert a["step"].to_list() == list(range(1, 301)), a["step"].to_list()[:5]
# (rows before the kill come back from the checkpoint's JSON: equal to ~1 ulp)
assert all(abs(x - y) <= 1e-12 * abs(x) for x, y in zip(a["loss"], b["loss"])), "losses differ"
assert a["val_loss"].drop_nulls().len() == 3
print("ok")
"#;
    let args = [train_dir(&whole), train_dir(&p)];
    let args: Vec<&str> = args.iter().map(|d| d.to_str().expect("utf8")).collect();
    assert_eq!(run_python(code, &args).trim(), "ok");
}

#[test]
fn training_beats_the_mean_pose_and_reruns_only_what_its_inputs_feed() {
    let p = project(TINY);
    let all = ["synth", "extract", "embed", "stats", "train"];
    let ran: Vec<(&str, &str)> = all.iter().map(|s| (*s, "ran")).collect();
    assert_eq!(p.statuses(&["--set", "train.steps=600"]), pairs(&ran));
    let m = metrics(&train_dir(&p));
    let (val, noise, mean) = (
        m["val_loss"].as_f64().expect("val_loss"),
        m["val_loss_from_noise"].as_f64().expect("from noise"),
        m["val_loss_mean_pose"].as_f64().expect("mean pose"),
    );
    eprintln!("validation loss {val:.4}, from pure noise {noise:.4}, mean pose {mean:.4}");
    // The diffusion objective, well below the trivial predictor; from pure noise (the
    // text alone) the per-frame error stays near it: motions of one action differ in
    // phase, so their per-frame mean is close to the mean pose (issue 7 measures
    // what the generated motions do instead).
    assert!(val < 0.6 * mean, "{m}");

    // The model folder rebuilds: config.json describes it, the weights load in Python.
    let code = r#"
import sys, json
from safetensors.numpy import load_file
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
w = load_file(d + "/model.safetensors")
assert cfg["format"] == "pipe.motion-model/1" and cfg["dims"] == {"features": 50, "text": 384}, cfg["dims"]
assert cfg["model"]["layers"] == 2 and len(cfg["mean"]) == 50 and cfg["encoder"] == "all-MiniLM-L6-v2", cfg["encoder"]
assert w["in_proj.weight"].shape == (128, 100), w["in_proj.weight"].shape
print("ok")
"#;
    assert_eq!(
        run_python(code, &[train_dir(&p).to_str().expect("utf8")]).trim(),
        "ok"
    );

    let lr = p.statuses(&["--set", "train.lr=0.002", "--set", "train.steps=20"]);
    let want: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (*s, if *s == "train" { "ran" } else { "cached" }))
        .collect();
    assert_eq!(lr, pairs(&want));
    let emb = p.statuses(&["--set", "embed.tokens=true", "--set", "train.steps=20"]);
    let want: Vec<(&str, &str)> = all
        .iter()
        .map(|s| {
            (
                *s,
                if matches!(*s, "embed" | "train") {
                    "ran"
                } else {
                    "cached"
                },
            )
        })
        .collect();
    assert_eq!(emb, pairs(&want));
}

#[test]
fn bad_model_and_train_configs_name_the_key() {
    let p = project(TINY);
    // A key the model does not have, written in the config file.
    let typo = TINY.replace("  layers: 2\n", "  layers: 2\n  layer: 3\n");
    p.write("c.yaml", &typo);
    let out = p.run(&["run"]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("model: unknown field `layer`"),
        "{}",
        out.stderr()
    );
    p.write("c.yaml", TINY);
    let cases = [
        ("model.layers=0", "model.layers must be at least 1"),
        ("train.lr=-0.001", "train.lr must be positive"),
        (
            "train.device=tpu",
            "train.device must be auto, cpu, cuda or cuda:N",
        ),
        ("model.text_conditioning=words", "unknown variant `words`"),
    ];
    for (set, want) in cases {
        let out = p.run(&["run", "--set", set]);
        assert_eq!(out.code(), 2, "{set}: {}", out.stderr());
        assert!(out.stderr().contains(want), "{set}: {}", out.stderr());
    }
    assert!(p.entries("synth").is_empty(), "nothing ran");
    // Per-token conditioning without per-token states: the error says what to set.
    let out = p.run(&[
        "run",
        "--set",
        "model.text_conditioning=tokens",
        "--set",
        "train.steps=2",
    ]);
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr().contains("embed.tokens: true"),
        "{}",
        out.stderr()
    );
}

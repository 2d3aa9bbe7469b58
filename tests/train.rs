//! motion.train through the real binary, on the synthetic KIT-format data: a killed
//! run resumes to bit-identical weights, the model beats the mean pose on the
//! validation split, only what a parameter feeds re-runs, and bad configs or
//! checkpoints are clear errors.

mod common;

use std::path::{Path, PathBuf};

use common::{
    kill9, minilm, motion_project as project, pairs, repo, run_python, wait_for, Project, TINY,
};

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
    assert_eq!(whole.run(&["run", "train", "-q"]).success().code(), 0);
    let reference = std::fs::read(train_dir(&whole).join("model.safetensors")).expect("weights");
    // The training-only auxiliary text head (TINY sets train.text_aux_weight) is not
    // exported: the safetensors header names only the model's tensors.
    let header_len = u64::from_le_bytes(reference[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&reference[8..8 + header_len]).expect("safetensors header");
    let names: Vec<&String> = header.as_object().expect("object").keys().collect();
    assert!(
        names.iter().any(|n| n.starts_with("text_proj")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("aux_text")),
        "{names:?}"
    );

    let p = project(TINY);
    let mut child = p.spawn(&["run", "train", "-q"]);
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
    let bad = p.run(&["run", "train", "-q"]);
    assert_eq!(bad.code(), 1, "{}", bad.stderr());
    assert!(
        bad.stderr().contains("state.safetensors") && bad.stderr().contains("corrupt checkpoint"),
        "{}",
        bad.stderr()
    );
    std::fs::write(&state, &good).expect("restore");

    p.run(&["run", "train", "-q"]).success();
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
assert a["text_aux"].min() > 0, "the auxiliary text loss is logged"
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
    assert_eq!(
        p.statuses(&["train", "--set", "train.steps=600"]),
        pairs(&ran)
    );
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

    let lr = p.statuses(&[
        "train",
        "--set",
        "train.lr=0.002",
        "--set",
        "train.steps=20",
    ]);
    let want: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (*s, if *s == "train" { "ran" } else { "cached" }))
        .collect();
    assert_eq!(lr, pairs(&want));
    let emb = p.statuses(&[
        "train",
        "--set",
        "embed.tokens=true",
        "--set",
        "train.steps=20",
    ]);
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
        (
            "evaluate.seeds=0",
            "evaluate.sentences_per_action and evaluate.seeds must be at least 1",
        ),
        (
            "evaluate.eta=1.5",
            "evaluate: eta must be in [0, 1], got 1.5",
        ),
        (
            "evaluate.guidance_rescale=1.5",
            "evaluate: guidance_rescale must be in [0, 1], got 1.5",
        ),
        ("train.ema=1", "train.ema must be in [0, 1), got 1"),
        (
            "train.text_aux_weight=-1",
            "train.text_aux_weight must be zero or positive",
        ),
        ("generate.count=0", "count must be 1 to 1000"),
        (
            "generate.prompts=[]",
            "generate.prompts: list at least one prompt",
        ),
    ];
    for (set, want) in cases {
        let out = p.run(&["run", "--set", set]);
        assert_eq!(out.code(), 2, "{set}: {}", out.stderr());
        assert!(out.stderr().contains(want), "{set}: {}", out.stderr());
    }
    let out = p.run(&[
        "run",
        "--set",
        "model.kind=regression",
        "--set",
        "model.self_condition=true",
    ]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("model.self_condition needs model.kind: diffusion"),
        "{}",
        out.stderr()
    );
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

#[test]
fn the_kit_ml_example_runs_on_real_kit_data() {
    // examples/kit-ml as a user sets it up, with the real KIT-ML motion 00001 in
    // data/kit as its dataset; the MDM-sized model takes two CPU steps.
    let p = Project::new().file(
        "pipeline.yaml",
        &std::fs::read_to_string(repo().join("examples/kit-ml/pipeline.yaml")).expect("example"),
    );
    std::fs::create_dir_all(p.path().join("encoders")).expect("mkdir");
    let link = |from: PathBuf, to: &str| {
        std::os::unix::fs::symlink(from, p.path().join(to)).expect("link")
    };
    link(repo().join("configs"), "configs");
    link(minilm(), "encoders/all-minilm-l6-v2");
    link(repo().join(".venv"), ".venv");
    link(repo().join("data/kit"), "KIT-ML");
    let sets = [
        "train.steps=2",
        "train.device=cpu",
        "train.threads=2",
        "train.warmup_steps=1",
    ];
    let mut args = vec!["train"];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let st = p.statuses(&args);
    assert_eq!(st.len(), 4, "{st:?}");
    let m = metrics(&train_dir(&p));
    assert_eq!(m["steps"], 2);
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(train_dir(&p).join("config.json")).expect("card"))
            .expect("json");
    assert_eq!(card["model"]["layers"], 8);
    assert_eq!(card["model"]["d_model"], 512);
    assert_eq!(card["model"]["adaln"], true);
    assert!(m["parameters"].as_i64().unwrap_or(0) > 15_000_000, "{m}");
}

#[test]
fn mirror_augmentation_adds_the_mirrored_training_pairs() {
    // The tiny config with train.mirror on and a few steps: every training sentence
    // gets a mirrored pair when its left/right-swapped form has an embedding.
    let cfg = TINY
        .replace("  steps: 300\n", "  steps: 4\n  mirror: true\n")
        .replace("  eval_every: 100\n", "  eval_every: 4\n");
    let p = project(&cfg);
    let st = p.statuses(&["train"]);
    assert!(st.iter().any(|(n, s)| n == "train" && s == "ran"), "{st:?}");
    let m = metrics(&train_dir(&p));
    let added = m["mirrored_pairs"].as_u64().unwrap_or(0);
    let left_out = m["mirrored_pairs_without_embedding"].as_u64().unwrap_or(0);
    eprintln!("mirrored pairs: {added} added, {left_out} without an embedding");
    // Sentences with left/right whose swapped form no other motion has are left
    // out ...
    assert!(added > 50 && left_out > 0, "{m}");
    // ... unless the embed stage embeds the swapped forms too (embed.mirrored).
    let p = project(&cfg.replace("  tokens: false\n", "  tokens: false\n  mirrored: true\n"));
    p.statuses(&["train"]);
    let m = metrics(&train_dir(&p));
    assert_eq!(m["mirrored_pairs_without_embedding"], 0, "{m}");
    assert_eq!(m["mirrored_pairs"].as_u64(), Some(added + left_out), "{m}");
}

#[test]
fn the_contrastive_text_loss_trains_and_is_not_exported() {
    // A few steps of the tiny config with train.text_aux: contrastive (InfoNCE
    // between the text's and the motion summary's projections).
    let cfg = TINY
        .replace("  steps: 300\n", "  steps: 6\n")
        .replace("  eval_every: 100\n", "  eval_every: 6\n")
        .replace(
            "  text_aux_weight: 1.0\n",
            "  text_aux_weight: 1.0\n  text_aux: contrastive\n",
        );
    let p = project(&cfg);
    let st = p.statuses(&["train"]);
    assert!(st.iter().any(|(n, s)| n == "train" && s == "ran"), "{st:?}");
    let dir = train_dir(&p);
    let weights = std::fs::read(dir.join("model.safetensors")).expect("weights");
    let header_len = u64::from_le_bytes(weights[..8].try_into().expect("8 bytes")) as usize;
    let header = String::from_utf8_lossy(&weights[8..8 + header_len]).to_string();
    assert!(
        header.contains("text_proj") && !header.contains("aux_text"),
        "{header}"
    );
    // Batches of 16: the InfoNCE starts near ln 16 ≈ 2.8 and is logged every step.
    let code = r#"
import sys, polars as pl
a = pl.read_parquet(sys.argv[1] + "/train_log.parquet")["text_aux"]
assert a.len() == 6 and 1.0 < a[0] < 4.5 and a.min() > 0, a.to_list()
print("ok")
"#;
    assert_eq!(
        run_python(code, &[dir.to_str().expect("utf8")]).trim(),
        "ok"
    );
}

//! Generation and evaluation through the real binary on the tiny model: `pipe
//! generate` writes .npy/.xml/Parquet that read back to the same numbers, is
//! seeded, rejects bad input without writing anything; `motion.generate` and
//! `motion.evaluate` run as pipeline stages and their metrics reach `pipe exp show`.

mod common;

use std::path::Path;

use common::{motion_project, run_python, Project, TINY};

fn generate(p: &Project, args: &[&str]) -> common::Out {
    let mut a = vec!["generate", "-q"];
    a.extend_from_slice(args);
    p.run(&a)
}

/// Three 4-s samples each of two prompts, with `seed`, into `out`.
fn jumps_and_waves(p: &Project, seed: &str, out: &str, extra: &[&str]) -> common::Out {
    let mut a = vec![
        "a person jumps twice",
        "someone waves",
        "--seconds",
        "4",
        "--count",
        "3",
        "--seed",
        seed,
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    generate(p, &a).success()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn pipe_generate_writes_files_that_read_back_and_is_seeded() {
    let p = motion_project(TINY);
    let out = jumps_and_waves(&p, "7", "a", &[]);
    let listed: Vec<String> = out.stdout().lines().map(|l| l.trim().to_string()).collect();
    // Per sample .npy, .xml, .bvh, .png, .gif; then generated.parquet.
    assert_eq!(listed.len(), 2 * 3 * 5 + 1, "{listed:?}");
    let dir = p.path().join("a");
    assert_eq!(files(&dir).len(), 31, "{:?}", files(&dir));
    for ext in ["bvh", "png", "gif"] {
        let f = format!("01-a-person-jumps-twice-2.{ext}");
        assert!(files(&dir).contains(&f), "{f}: {:?}", files(&dir));
    }
    let bvh = std::fs::read_to_string(dir.join("01-a-person-jumps-twice-2.bvh")).expect("bvh");
    assert!(
        bvh.starts_with("HIERARCHY\nROOT root") && bvh.contains("Frames: 80\nFrame Time: 0.05")
    );
    // Without previews: .npy, .xml, .bvh and the table.
    generate(
        &p,
        &[
            "someone waves",
            "--seconds",
            "2",
            "--no-previews",
            "--out",
            "b",
        ],
    )
    .success();
    assert_eq!(
        files(&p.path().join("b")).len(),
        4,
        "{:?}",
        files(&p.path().join("b"))
    );
    assert!(files(&dir).contains(&"01-a-person-jumps-twice-1.npy".to_string()));
    assert!(files(&dir).contains(&"02-someone-waves-3.xml".to_string()));

    // The MMM file reads back (our reader, the one kit.extract uses) to the .npy's numbers.
    let xml = pipe_kit::mmm::read_file(&dir.join("02-someone-waves-3.xml"), Default::default())
        .expect("MMM reads back");
    assert_eq!(xml.frames(), 80, "4 s at 20 fps");
    assert_eq!(xml.joint_names.len(), 44);
    let code = r#"
import sys, json, numpy as np, polars as pl
d = sys.argv[1]
m = np.load(d + "/02-someone-waves-3.npy")
assert m.dtype == np.float32 and m.shape == (80, 50), (m.dtype, m.shape)
g = pl.read_parquet(d + "/generated.parquet")
assert g.height == 6 and set(g["prompt"]) == {"a person jumps twice", "someone waves"}
row = g.filter((pl.col("prompt") == "someone waves") & (pl.col("sample") == 2))
assert row["frames"][0] == 80 and row["fps"][0] == 20.0 and row["npy"][0] == "02-someone-waves-3.npy"
assert np.allclose(np.array(row["motion"][0].to_list(), dtype=np.float32), m)
print(json.dumps([m[:, :3].tolist(), m[:, 6:].tolist()]))
"#;
    let got: serde_json::Value =
        serde_json::from_str(run_python(code, &[dir.to_str().expect("utf8")]).trim())
            .expect("json");
    let (pos, joints) = (&got[0], &got[1]);
    for f in [0usize, 40, 79] {
        for k in 0..3 {
            let a = pos[f][k].as_f64().expect("num");
            assert!(
                (a - xml.root_position[f][k]).abs() < 1e-2,
                "frame {f} root {k}: {a} vs {}",
                xml.root_position[f][k]
            );
        }
        for k in 0..44 {
            let a = joints[f][k].as_f64().expect("num");
            assert!(
                (a - xml.joint_position[f * 44 + k]).abs() < 1e-5,
                "frame {f} joint {k}"
            );
        }
    }

    // Same seed → the same motions; another seed → different ones.
    jumps_and_waves(&p, "7", "b", &[]);
    jumps_and_waves(&p, "8", "c", &[]);
    let read = |d: &str| {
        std::fs::read(p.path().join(d).join("01-a-person-jumps-twice-2.npy")).expect("npy")
    };
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
    // Generates with `extra` into `{out}1` and `{out}2` (the same seed), checks the
    // two are identical, and returns the first.
    let seeded = |out: &str, extra: &[&str]| {
        let (o1, o2) = (format!("{out}1"), format!("{out}2"));
        jumps_and_waves(&p, "7", &o1, extra);
        jumps_and_waves(&p, "7", &o2, extra);
        let first = read(&o1);
        assert_eq!(first, read(&o2), "{extra:?} is seeded");
        first
    };
    // Retrieval (towards the checkpoint's training sentences) moves the condition.
    jumps_and_waves(&p, "7", "d", &["--set", "generate.retrieval=5"]);
    assert_ne!(read("a"), read("d"));
    // … with the neighbours found by the motions the sentences predict: seeded, and
    // another condition than the model's own text features give.
    let by_motion = [
        "--set",
        "generate.retrieval=5",
        "--set",
        "generate.retrieval_space=motion",
    ];
    assert_ne!(read("d"), seeded("m", &by_motion));
    // Stochastic steps in the noisier half: seeded too, and not the deterministic path.
    let eta = ["--set", "generate.eta=1", "--set", "generate.eta_from=0.5"];
    assert_ne!(read("a"), seeded("e", &eta));
    // The root velocity's and the root height's own guidance scales: the same as
    // `guidance` changes nothing, another value changes the motion.
    for key in ["velocity_guidance", "height_guidance"] {
        let (same, other) = (format!("{key}-same"), format!("{key}-other"));
        let set = |v: &str| format!("generate.{key}={v}");
        jumps_and_waves(&p, "7", &same, &["--set", &set("2.5")]);
        jumps_and_waves(&p, "7", &other, &["--set", &set("1")]);
        assert_eq!(read("a"), read(&same), "{key}");
        assert_ne!(read("a"), read(&other), "{key}");
    }
    // Retrieval-initialised sampling: seeded, not plain retrieval's motion; with
    // `--seconds auto` each sample is as long as the training motion it started
    // from (the frame counts of the train split, rounded down to even, at most 160).
    let init = [
        "--set",
        "generate.retrieval=5",
        "--set",
        "generate.retrieval_init=0.6",
    ];
    assert_ne!(read("d"), seeded("i", &init));
    // Ranked by the model's own text gain: seeded too.
    let ranked = [&init[..], &["--set", "generate.retrieval_rank=true"]].concat();
    seeded("r", &ranked);
    // A negative prompt: seeded, and not plain guidance's motion.
    let neg = ["--set", "generate.negative_prompt=a person stands still"];
    assert_ne!(read("a"), seeded("n", &neg));
    // A self-conditioned model (trained first: it is the DAG): seeded too.
    let sc = [
        "--set",
        "model.self_condition=true",
        "--set",
        "train.steps=40",
    ];
    seeded("s", &sc);
    let mut a = vec!["a person jumps twice", "--count", "4", "--out", "k"];
    a.extend_from_slice(&init);
    generate(&p, &a).success();
    let check = r#"
import sys, polars as pl
m = pl.read_parquet(sys.argv[1]).filter(pl.col("split") == "train")
lengths = {min(160, max(2, f - f % 2)) for f in m["frames"].to_list()}
g = pl.read_parquet(sys.argv[2])
got = g["frames"].to_list()
assert len(got) == 4 and all(f in lengths for f in got), (got, sorted(lengths))
print(len(set(got)))
"#;
    let motions = p.entries("extract")[0].join("motions.parquet");
    let generated = p.path().join("k").join("generated.parquet");
    run_python(
        check,
        &[
            motions.to_str().expect("utf-8"),
            generated.to_str().expect("utf-8"),
        ],
    );
    // Samples of one prompt differ from each other (diversity across seeds).
    assert_ne!(
        read("a"),
        std::fs::read(dir.join("01-a-person-jumps-twice-1.npy")).expect("npy")
    );

    // --seconds auto (the length head) and the default output folder.
    let out = generate(&p, &["a person walks forward"]).success();
    let first = out.stdout().lines().next().unwrap_or_default().to_string();
    assert!(
        first.contains("/generated/") && first.ends_with("01-a-person-walks-forward-1.npy"),
        "{first}"
    );

    // `pipe` encodes the prompts while `pipe-torch` starts, and hands them over: the
    // same files, to the bit, as `pipe-torch` encoding them itself; with a negative
    // prompt (in the same batch) too.
    let neg = ["--set", "generate.negative_prompt=a person stands still"];
    for (extra, out) in [(&[][..], "x"), (&neg[..], "y")] {
        let mut a = vec!["generate", "-vv", "a person jumps twice", "someone waves"];
        a.extend_from_slice(&["--seconds", "4", "--count", "2", "--seed", "7"]);
        a.extend_from_slice(&["--no-previews", "--json"]);
        a.extend_from_slice(extra);
        let handed = format!("{out}-handed");
        let beside = p.run(&[&a[..], &["--out", &handed]].concat()).success();
        let alone = std::process::Command::new(env!("CARGO_BIN_EXE_pipe-torch"))
            .args([&a[..], &["--out", out]].concat())
            .current_dir(p.path())
            .env_remove("PIPE_LOG")
            .output()
            .expect("run pipe-torch");
        let alone = common::Out(alone).success();
        let said = "the prompts were encoded by `pipe` while this process started";
        assert!(beside.stderr().contains(said), "{}", beside.stderr());
        assert!(!alone.stderr().contains(said), "{}", alone.stderr());
        let names = files(&p.path().join(out));
        assert_eq!(names, files(&p.path().join(&handed)));
        assert_eq!(names.len(), 4 * 3 + 1, "{names:?}");
        for f in names.iter().filter(|f| f.ends_with(".npy")) {
            let read = |d: &str| std::fs::read(p.path().join(d).join(f)).expect("npy");
            assert_eq!(read(out), read(&handed), "{extra:?}: {f}");
        }
    }
}

#[test]
fn bad_generate_input_is_a_clear_error_and_writes_nothing() {
    let p = motion_project(TINY);
    let cases: &[(&[&str], &str)] = &[
        (&["   "], "prompt 1 is empty"),
        (&["a walk", "--seconds", "0"], "seconds must be positive"),
        (&["a walk", "--seconds=-2"], "seconds must be positive"),
        (
            &["a walk", "--seconds", "soon"],
            "--seconds must be a number or `auto`",
        ),
        (&["a walk", "--count", "0"], "count must be 1 to 1000"),
        (&["a walk", "--guidance=-1"], "guidance must be 0 or more"),
        (&["a walk", "--steps", "0"], "steps must be at least 1"),
        (
            &["a walk", "--set", "generate.retrieval_space=words"],
            "unknown variant `words`, expected `model` or `motion`",
        ),
        (
            &["a walk", "--stage", "nope"],
            "no `motion.generate` stage named `nope`",
        ),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--out", "x"]);
        let out = generate(&p, &a);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr());
        assert!(out.stderr().contains(want), "{args:?}: {}", out.stderr());
    }
    assert!(p.entries("train").is_empty(), "usage errors train nothing");
    assert!(!p.path().join("x").exists());
    // Limits of the trained model: 160 frames at 20 fps = 8 s; 100 diffusion steps.
    for (args, want) in [
        (["a walk", "--seconds", "9"], "seconds must be at most 8"),
        (
            ["a walk", "--steps", "101"],
            "steps must be at most the model's 100 diffusion steps",
        ),
    ] {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--out", "x"]);
        let out = generate(&p, &a);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr());
        assert!(out.stderr().contains(want), "{args:?}: {}", out.stderr());
    }
    assert_eq!(
        files(&p.path().join("x")),
        Vec::<String>::new(),
        "nothing written"
    );
    let weights = p.entries("train")[0].join("model.safetensors");
    let mut perm = std::fs::metadata(&weights).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&weights, perm).expect("chmod");
    // A checkpoint from before the bank's motions (TRAIN_VERSION < 5):
    // retrieval_init says what to do; retrieval alone still works.
    run_python(
        "import sys\nfrom safetensors.numpy import load_file, save_file\n\
         t = load_file(sys.argv[1])\n\
         for k in ['motion_bank', 'motion_bank_offsets', 'text_bank_motions']: del t[k]\n\
         save_file(t, sys.argv[1])",
        &[weights.to_str().expect("utf-8 path")],
    );
    let init = [
        "--set",
        "generate.retrieval=5",
        "--set",
        "generate.retrieval_init=0.5",
    ];
    let mut a = vec!["a walk"];
    a.extend_from_slice(&init);
    fails_and_writes_nothing(&p, &a, "or set retrieval_init: 0", "nm");
    fails_and_writes_nothing(
        &p,
        &[
            "a walk",
            "--set",
            "generate.retrieval=5",
            "--set",
            "generate.retrieval_space=motion",
        ],
        "or set retrieval_space: model",
        "nm",
    );
    generate(
        &p,
        &["a walk", "--set", "generate.retrieval=5", "--out", "nm"],
    )
    .success();
    // Ranking without retrieval_init: a usage error.
    fails_and_writes_nothing(
        &p,
        &[
            "a walk",
            "--set",
            "generate.retrieval=5",
            "--set",
            "generate.retrieval_rank=true",
        ],
        "set retrieval_init above 0",
        "nr",
    );
    // Only retrieval_init without retrieval: a usage error.
    fails_and_writes_nothing(
        &p,
        &["a walk", "--set", "generate.retrieval_init=0.5"],
        "set retrieval to 1 or more",
        "nn",
    );
    // A model that reads only the sentence's tokens (trained for 2 steps first: it is
    // the DAG): retrieval, by either measure, moves a vector it does not read.
    let tokens_only = [
        "a walk",
        "--set",
        "model.text_conditioning=tokens",
        "--set",
        "embed.tokens=true",
        "--set",
        "train.steps=2",
        "--set",
        "train.text_aux_weight=0",
    ];
    for space in ["model", "motion"] {
        let space = format!("generate.retrieval_space={space}");
        let retrieval = ["--set", "generate.retrieval=5", "--set", &space];
        fails_and_writes_nothing(
            &p,
            &[&tokens_only[..], &retrieval].concat(),
            "a `tokens`-only model does not use: set retrieval: 0",
            "nt",
        );
    }
    // Without retrieval it generates, and its prompts are encoded with their tokens
    // in `pipe-torch`: the pooled vectors `pipe` hands over are not all it reads.
    let rest = [
        "--set",
        "generate.retrieval=0",
        "--seconds",
        "2",
        "--no-previews",
    ];
    let o = p
        .run(
            &[
                &["generate", "-vv"][..],
                &tokens_only,
                &rest,
                &["--out", "tk"],
            ]
            .concat(),
        )
        .success();
    assert!(
        o.stderr()
            .contains("the handed-over prompt vectors do not fit this model"),
        "{}",
        o.stderr()
    );
    assert_eq!(files(&p.path().join("tk")).len(), 4);
    // A `motion.generate` stage whose encoder is not the one the model was trained
    // with (here: the same files but for a byte of tokenizer.json): `pipe` encodes
    // the prompts with it beside pipe-torch's start, and pipe-torch still refuses.
    let other = p.path().join("encoders/other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::os::unix::fs::symlink(
        common::minilm().join("model.onnx"),
        other.join("model.onnx"),
    )
    .expect("link");
    let tok = std::fs::read_to_string(common::minilm().join("tokenizer.json")).expect("tokenizer");
    std::fs::write(other.join("tokenizer.json"), tok + "\n").expect("write");
    let pipeline = p.read("pipeline.yaml");
    p.write(
        "pipeline.yaml",
        &format!(
            "{pipeline}  generate2:\n    uses: motion.generate\n    deps: [train/model.safetensors, \
             train/config.json, encoders/other]\n    params: [generate]\n    outs: [samples, generated.parquet]\n"
        ),
    );
    let o = p.run(&[
        "generate",
        "-vv",
        "a walk",
        "--stage",
        "generate2",
        "--out",
        "ne",
    ]);
    assert_ne!(o.code(), 0);
    for said in [
        "prompts encoded beside pipe-torch's start",
        "the handed-over prompt vectors do not fit this model",
        "was trained with the text encoder",
    ] {
        assert!(o.stderr().contains(said), "{said}: {}", o.stderr());
    }
    assert_eq!(files(&p.path().join("ne")), Vec::<String>::new());
    p.write("pipeline.yaml", &pipeline);
    // A checkpoint from before the training-sentence bank (TRAIN_VERSION < 4):
    // retrieval says what to do; without retrieval it still generates.
    run_python(
        "import sys\nfrom safetensors.numpy import load_file, save_file\n\
         t = load_file(sys.argv[1]); del t['text_bank']; save_file(t, sys.argv[1])",
        &[weights.to_str().expect("utf-8 path")],
    );
    fails_and_writes_nothing(
        &p,
        &["a walk", "--set", "generate.retrieval=5"],
        "retrain it (`pipe run train`) or set retrieval: 0",
        "nb",
    );
    generate(&p, &["a walk", "--seconds", "2", "--out", "nb"]).success();
    // A damaged model in the store: a clear error naming the file, nothing written.
    std::fs::write(&weights, b"not a model").expect("damage");
    fails_and_writes_nothing(&p, &["a walk"], "model.safetensors", "y");
}

/// `pipe generate ARGS --out OUT` fails, saying `want`, and writes nothing into OUT.
fn fails_and_writes_nothing(p: &Project, args: &[&str], want: &str, out: &str) {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--out", out]);
    let o = generate(p, &a);
    assert_ne!(o.code(), 0);
    assert!(o.stderr().contains(want), "{}", o.stderr());
    assert_eq!(files(&p.path().join(out)), Vec::<String>::new());
}

#[test]
fn generate_and_evaluate_stages_end_the_pipeline() {
    let p = motion_project(TINY);
    let r = p.run_json(&[], 0);
    assert_eq!(r["ok"], true, "{r}");
    let g = p.entries("generate")[0].clone();
    let samples = files(&g.join("samples"));
    assert_eq!(samples.len(), 2 * 2 * 5, "{samples:?}");
    let e = p.entries("evaluate")[0].clone();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.join("metrics.json")).expect("metrics"))
            .expect("json");
    eprintln!("{m:#}");
    // Foot skating on the MMM body, for the generated and the dataset's motions.
    for k in ["foot_skating_m_per_s", "real_foot_skating_m_per_s"] {
        let v = m[k].as_f64().unwrap_or(-1.0);
        assert!(v > 0.0 && v < 5.0, "{k}: {m}");
    }
    // The criteria label the dataset's own motions (130 of them) right.
    assert!(
        m["criteria_accuracy_real"].as_f64().expect("criteria") >= 0.95,
        "{m}"
    );
    assert_eq!(m["real_motions"], 130);
    assert_eq!(m["generated"], 13 * 2 * 2 * 2);
    for k in [
        "accuracy_heldout",
        "accuracy_train_sentences",
        "probe_accuracy_heldout",
        "diversity",
        "drift_in_place_m_per_s",
    ] {
        let v = m[k].as_f64().unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&v), "{k}: {m}");
    }
    assert!(
        m["diversity"].as_f64().unwrap_or(0.0) > 0.0,
        "seeds give different motions"
    );
    // With retrieval on (3 nearest): the share of held-out sentences' neighbours
    // that ask for their action.
    let purity = m["retrieval_purity_heldout"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&purity), "{m}");
    // How far the samples are from the training motions, next to how far the
    // training motions are from each other (both RMS in normalised features).
    for k in ["nearest_train_distance", "real_nearest_train_distance"] {
        let v = m[k].as_f64().unwrap_or(-1.0);
        assert!(v > 0.0 && v < 10.0, "{k}: {m}");
    }
    let code = r#"
import sys, polars as pl
d = sys.argv[1]
m = pl.read_parquet(d + "/metrics.parquet")
assert set(m["set"]) == {"heldout", "train"} and m.height == 26, m
s = pl.read_parquet(d + "/samples.parquet")
assert s.height == 104 and {"label", "heading_change", "rise_m"} <= set(s.columns)
assert s["nearest_train_rms"].null_count() == 0 and s["nearest_train_rms"].min() > 0
g = pl.read_parquet(sys.argv[2] + "/generated.parquet")
assert g.height == 4
print("ok")
"#;
    assert_eq!(
        run_python(
            code,
            &[e.to_str().expect("utf8"), g.to_str().expect("utf8")]
        )
        .trim(),
        "ok"
    );
    let out = p.run(&["exp", "show", "--json"]).success();
    assert!(
        out.stdout().contains("evaluate.accuracy_heldout"),
        "{}",
        out.stdout()
    );
}

#[test]
fn interrupting_pipe_generate_stops_the_training_it_waits_for() {
    let p = motion_project(TINY);
    let child = p.spawn(&[
        "generate",
        "a walk",
        "--set",
        "train.steps=100000",
        "--out",
        "o",
    ]);
    let scratch = p.path().join("artifacts/.scratch/train");
    common::wait_for(300.0, "the training stage to start", || {
        std::fs::read_dir(&scratch).is_ok_and(|mut d| d.next().is_some())
    });
    // SIGINT to `pipe` alone (a terminal's Ctrl-C reaches both processes): it passes
    // it on to pipe-torch, waits for it to stop the training, and ends with its code.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = common::Out(child.wait_with_output().expect("wait"));
    assert_eq!(out.0.status.code(), Some(130), "{}", out.stderr());
    assert!(
        out.stderr().contains("train") && out.stderr().contains("interrupted"),
        "{}",
        out.stderr()
    );
    assert_eq!(files(&p.path().join("o")), Vec::<String>::new());
}

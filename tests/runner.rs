//! The runner contract, driven through the real binary on `cmd:` stages.

mod common;

use common::{kill9, pairs, wait_for, Project};

const CHAIN: &str = r#"config: configs/base.yaml
stages:
  prep:
    cmd: 'echo prep >> calls.log; tr a-z A-Z < $PIPE_DEP_0 > $PIPE_OUT/clean.txt'
    deps: [data/raw.txt]
    params: [prep]
    outs: [clean.txt]
  feat:
    cmd: 'echo feat >> calls.log; head -c ${feat.width} $PIPE_DEP_0 > $PIPE_OUT/feat.txt'
    deps: [prep/clean.txt]
    params: [feat]
    outs: [feat.txt]
  train:
    cmd: 'echo train >> calls.log; (cat $PIPE_DEP_0; echo " lr=${train.lr}") > $PIPE_OUT/model.txt; echo "{\"loss\": ${train.lr}}" > $PIPE_OUT/metrics.json'
    deps: [feat/feat.txt]
    params: [train]
    outs: [model.txt, metrics.json]
"#;

const CONFIG: &str = "prep:\n  mode: upper\nfeat:\n  width: 100\ntrain:\n  lr: 0.1\n  epochs: 2\n";

fn chain() -> Project {
    Project::new()
        .file("pipeline.yaml", CHAIN)
        .file("configs/base.yaml", CONFIG)
        .file("data/raw.txt", "hello world\n")
}

fn calls(p: &Project) -> Vec<String> {
    p.read("calls.log").lines().map(String::from).collect()
}

#[test]
fn second_run_with_nothing_changed_is_all_cached() {
    let p = chain();
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "ran"), ("feat", "ran"), ("train", "ran")])
    );
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "cached"), ("feat", "cached"), ("train", "cached")])
    );
    assert_eq!(calls(&p), ["prep", "feat", "train"]);
    let model = p.entries("train");
    assert_eq!(model.len(), 1);
    assert_eq!(
        std::fs::read_to_string(model[0].join("model.txt")).unwrap_or_default(),
        "HELLO WORLD\n lr=0.1\n"
    );
}

#[test]
fn a_parameter_change_reruns_exactly_its_readers_and_going_back_is_instant() {
    let p = chain();
    p.statuses(&[]);
    assert_eq!(
        p.statuses(&["--set", "train.lr=0.01"]),
        pairs(&[("prep", "cached"), ("feat", "cached"), ("train", "ran")])
    );
    assert_eq!(
        p.statuses(&["--set", "feat.width=3"]),
        pairs(&[("prep", "cached"), ("feat", "ran"), ("train", "ran")])
    );
    // Back to the original config: everything is still in the run-cache.
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "cached"), ("feat", "cached"), ("train", "cached")])
    );
    assert_eq!(
        calls(&p),
        ["prep", "feat", "train", "train", "feat", "train"]
    );
}

#[test]
fn an_upstream_rerun_with_identical_bytes_leaves_dependents_cached() {
    let p = chain();
    p.statuses(&[]);
    // `prep` reads the whole `prep` section, so this re-runs it, but its output is the same.
    p.write(
        "configs/base.yaml",
        &CONFIG.replace("mode: upper", "mode: UPPER"),
    );
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "ran"), ("feat", "cached"), ("train", "cached")])
    );
    // A changed input file re-runs everything downstream of it.
    p.write("data/raw.txt", "other words\n");
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "ran"), ("feat", "ran"), ("train", "ran")])
    );
}

#[test]
fn status_says_why_a_stage_is_stale() {
    let p = chain();
    let st = p.run(&["status", "--json"]).success();
    let v: serde_json::Value = serde_json::from_str(&st.stdout()).expect("json");
    assert!(
        v["stages"]
            .as_array()
            .expect("arr")
            .iter()
            .all(|s| s["state"] == "never-run"),
        "{v}"
    );
    p.statuses(&[]);
    p.write("configs/base.yaml", &CONFIG.replace("lr: 0.1", "lr: 0.5"));
    let v: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--json"]).success().stdout()).expect("json");
    let states: Vec<(String, String)> = v["stages"]
        .as_array()
        .expect("arr")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").into(),
                s["state"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        pairs(&[
            ("prep", "up-to-date"),
            ("feat", "up-to-date"),
            ("train", "stale")
        ])
    );
    assert_eq!(
        v["stages"][2]["reasons"][0],
        "param `train` changed ({\"epochs\":2,\"lr\":0.1} → {\"epochs\":2,\"lr\":0.5})"
    );
    p.write("data/raw.txt", "changed\n");
    let v: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--json"]).success().stdout()).expect("json");
    assert_eq!(v["stages"][0]["reasons"][0], "input `data/raw.txt` changed");
    assert_eq!(v["stages"][1]["reasons"][0], "upstream `prep` is stale");
}

#[test]
fn force_reruns_one_stage() {
    let p = chain();
    p.statuses(&[]);
    assert_eq!(
        p.statuses(&["--force", "feat"]),
        pairs(&[("prep", "cached"), ("feat", "ran"), ("train", "cached")])
    );
    assert_eq!(
        p.entries("feat").len(),
        1,
        "the forced entry replaced the old one"
    );
}

#[test]
fn a_failed_stage_skips_its_dependents_and_records_nothing() {
    let p = chain();
    p.write(
        "pipeline.yaml",
        &CHAIN.replace(
            "head -c ${feat.width}",
            "echo broken >&2; exit 3; head -c ${feat.width}",
        ),
    );
    let v = p.run_json(&[], 1);
    assert_eq!(
        common::statuses(&v),
        pairs(&[("prep", "ran"), ("feat", "failed"), ("train", "skipped")])
    );
    let err = v["stages"][1]["error"].as_str().unwrap_or("");
    assert!(
        err.contains("exited with status 3") && err.contains("broken"),
        "{err}"
    );
    assert!(p.entries("feat").is_empty());
    assert!(
        std::fs::read_dir(p.path().join("artifacts/.tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "temp dir cleaned"
    );
}

#[test]
fn a_missing_declared_output_fails_the_stage() {
    let p = Project::new().file(
        "pipeline.yaml",
        "stages:\n  a:\n    cmd: 'true'\n    outs: [o.txt]\n",
    );
    let v = p.run_json(&[], 1);
    assert!(
        v["stages"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("declared output `o.txt` was not written"),
        "{v}"
    );
}

#[test]
fn env_and_params_reach_a_cmd_stage() {
    let p = Project::new()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  a:\n    cmd: 'cp $PIPE_PARAMS $PIPE_OUT/p.json; echo \"$PIPE_STAGE ${s.v} $$${HOME:+x}\" > $PIPE_OUT/e.txt; test -d $PIPE_SCRATCH; basename $PIPE_DEP_0 >> $PIPE_OUT/e.txt'\n    deps: [in.txt]\n    params: [s.v]\n    outs: [p.json, e.txt]\n",
        )
        .file("c.yaml", "s:\n  v: [1, 2]\n")
        .file("in.txt", "x");
    p.statuses(&[]);
    let e = p.entries("a");
    let params: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e[0].join("p.json")).unwrap_or_default())
            .expect("json");
    assert_eq!(params, serde_json::json!({"s.v": [1, 2]}));
    let text = std::fs::read_to_string(e[0].join("e.txt")).unwrap_or_default();
    assert!(text.starts_with("a [1,2] "), "{text}");
    assert!(text.ends_with("in.txt\n"), "{text}");
}

#[test]
fn parallel_stages_overlap_and_resource_tokens_serialise() {
    let stage = |name: &str, res: &str| {
        format!("  {name}:\n    cmd: 'date +%s.%N > $PIPE_OUT/t; sleep 0.6; date +%s.%N >> $PIPE_OUT/t'\n    outs: [t]\n{res}")
    };
    let spans = |p: &Project| -> Vec<(f64, f64)> {
        ["x", "y"]
            .iter()
            .map(|s| {
                let t = std::fs::read_to_string(p.entries(s)[0].join("t")).unwrap_or_default();
                let v: Vec<f64> = t.lines().filter_map(|l| l.parse().ok()).collect();
                (v[0], v[1])
            })
            .collect()
    };
    let overlap = |s: &[(f64, f64)]| s[0].0 < s[1].1 && s[1].0 < s[0].1;

    let p = Project::new().file(
        "pipeline.yaml",
        &format!("stages:\n{}{}", stage("x", ""), stage("y", "")),
    );
    p.statuses(&["-j", "2"]);
    assert!(
        overlap(&spans(&p)),
        "independent stages run together with -j 2: {:?}",
        spans(&p)
    );

    let gpu = "    resources: {gpu: 1}\n";
    let p = Project::new().file(
        "pipeline.yaml",
        &format!("stages:\n{}{}", stage("x", gpu), stage("y", gpu)),
    );
    p.statuses(&["-j", "2"]);
    assert!(!overlap(&spans(&p)), "one gpu token: {:?}", spans(&p));

    let p = Project::new().file(
        "pipeline.yaml",
        &format!("stages:\n{}{}", stage("x", ""), stage("y", "")),
    );
    p.statuses(&["-j", "1"]);
    assert!(!overlap(&spans(&p)), "-j 1: {:?}", spans(&p));
}

#[test]
fn kill_9_of_the_runner_leaves_nothing_that_looks_complete() {
    let p = chain();
    p.write(
        "pipeline.yaml",
        &CHAIN.replace("echo feat >> calls.log;", "echo feat >> calls.log; echo $$ > feat.pid; echo partial > $PIPE_OUT/feat.txt; sleep 30;"),
    );
    let mut child = p.spawn(&["run", "-q"]);
    wait_for(20.0, "feat to start", || {
        p.path().join("feat.pid").exists() && !p.read("feat.pid").is_empty()
    });
    kill9(child.id());
    let _ = child.wait();
    // The orphaned stage dies too (as it would with its machine or on Ctrl-C).
    if let Ok(pid) = p.read("feat.pid").trim().parse::<u32>() {
        kill9(pid);
    }
    assert!(
        p.entries("feat").is_empty(),
        "no complete entry for the killed stage"
    );
    assert_eq!(p.entries("prep").len(), 1);
    p.write("pipeline.yaml", CHAIN);
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "cached"), ("feat", "ran"), ("train", "ran")])
    );
    // `gc` removes the dead process's temporary directory.
    let gc = p.run(&["gc"]).success();
    assert!(gc.stdout().contains(".tmp/feat-"), "{}", gc.stdout());
}

#[test]
fn kill_9_of_a_stage_fails_it_and_the_next_run_redoes_only_it() {
    let p = chain();
    p.write(
        "pipeline.yaml",
        &CHAIN.replace(
            "echo feat >> calls.log;",
            "echo feat >> calls.log; echo $$ > feat.pid; sleep 30;",
        ),
    );
    let child = p.spawn(&["run", "--json", "-q"]);
    wait_for(20.0, "feat to start", || !p.read("feat.pid").is_empty());
    if let Ok(pid) = p.read("feat.pid").trim().parse::<u32>() {
        kill9(pid);
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        common::statuses(&v),
        pairs(&[("prep", "ran"), ("feat", "failed"), ("train", "skipped")])
    );
    assert!(
        v["stages"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("killed by a signal"),
        "{v}"
    );
    p.write("pipeline.yaml", CHAIN);
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "cached"), ("feat", "ran"), ("train", "ran")])
    );
}

#[test]
fn a_resumable_stage_resumes_from_its_scratch_after_kill_9() {
    // Counts to 5, one step per 0.2 s, checkpointing each step in $PIPE_SCRATCH.
    let script = r#"i=$(cat $PIPE_SCRATCH/step 2>/dev/null || echo 0); echo "start $i" >> starts.log; echo $$ > long.pid
while [ $i -lt 5 ]; do sleep 0.2; i=$((i+1)); echo $i > $PIPE_SCRATCH/step.tmp; mv $PIPE_SCRATCH/step.tmp $PIPE_SCRATCH/step; done
echo "done $i" > $PIPE_OUT/result.txt"#;
    let p = Project::new().file(
        "pipeline.yaml",
        &format!(
            "stages:\n  long:\n    cmd: |\n{}\n    outs: [result.txt]\n",
            indent(script, 6)
        ),
    );
    let mut child = p.spawn(&["run", "-q"]);
    wait_for(20.0, "two checkpoints", || {
        std::fs::read_dir(p.path().join("artifacts/.scratch/long"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| {
                std::fs::read_to_string(e.path().join("step"))
                    .unwrap_or_default()
                    .trim()
                    .parse::<u32>()
                    .unwrap_or(0)
                    >= 2
            })
            .unwrap_or(false)
    });
    if let Ok(pid) = p.read("long.pid").trim().parse::<u32>() {
        kill9(pid);
    }
    kill9(child.id());
    let _ = child.wait();
    assert!(p.entries("long").is_empty());
    assert_eq!(p.statuses(&[]), pairs(&[("long", "ran")]));
    let starts: Vec<String> = p.read("starts.log").lines().map(String::from).collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0], "start 0");
    assert_ne!(
        starts[1], "start 0",
        "the second attempt resumed: {starts:?}"
    );
    assert_eq!(
        std::fs::read_to_string(p.entries("long")[0].join("result.txt")).unwrap_or_default(),
        "done 5\n"
    );
    assert!(
        !p.path().join("artifacts/.scratch/long").exists(),
        "scratch removed once published"
    );
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_runs_started_together_compute_each_stage_once() {
    let p = chain();
    p.write(
        "pipeline.yaml",
        &CHAIN.replace(
            "echo prep >> calls.log;",
            "echo prep >> calls.log; sleep 0.5;",
        ),
    );
    let a = p.spawn(&["run", "--json", "-q"]);
    let b = p.spawn(&["run", "--json", "-q"]);
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let mut c = calls(&p);
    c.sort();
    assert_eq!(
        c,
        ["feat", "prep", "train"],
        "each stage computed exactly once"
    );
    let sa: serde_json::Value = serde_json::from_slice(&a.stdout).expect("json");
    let sb: serde_json::Value = serde_json::from_slice(&b.stdout).expect("json");
    assert_eq!(sa["stages"][2]["key"], sb["stages"][2]["key"]);
}

#[test]
fn an_input_edited_while_its_stage_runs_is_not_recorded_under_the_old_digest() {
    let p = chain();
    p.write(
        "pipeline.yaml",
        &CHAIN.replace(
            "echo prep >> calls.log;",
            "echo prep >> calls.log; touch prep.started; sleep 1;",
        ),
    );
    let child = p.spawn(&["run", "--json", "-q"]);
    wait_for(20.0, "prep to start", || {
        p.path().join("prep.started").exists()
    });
    p.write("data/raw.txt", "edited during the run\n");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["stages"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("changed while the stage ran"),
        "{v}"
    );
    assert!(p.entries("prep").is_empty());
    // The next run uses the new content.
    p.statuses(&[]);
    let feat = p.entries("feat");
    assert_eq!(
        std::fs::read_to_string(feat[0].join("feat.txt")).unwrap_or_default(),
        "EDITED DURING THE RUN\n"
    );
}

#[test]
fn verify_finds_a_flipped_byte_and_quarantine_makes_the_next_run_recompute() {
    let p = chain();
    p.statuses(&[]);
    p.run(&["verify"]).success();
    let f = p.entries("feat")[0].join("feat.txt");
    let mut bytes = std::fs::read(&f).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&f, bytes).expect("write");
    let v = p.run(&["verify"]);
    assert_eq!(v.code(), 3, "{}", v.stdout());
    assert!(
        v.stdout().contains("feat.txt: content changed"),
        "{}",
        v.stdout()
    );
    assert_eq!(p.run(&["verify", "--quarantine"]).code(), 3);
    p.run(&["verify"]).success();
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("prep", "cached"), ("feat", "ran"), ("train", "cached")])
    );
}

/// The chain with `configs/sweeps/s.yaml`: feat.width × train.lr, 2 × 2.
fn chain_with_2x2_sweep() -> Project {
    chain().file(
        "configs/sweeps/s.yaml",
        "target: train\ngrid:\n  feat.width: [3, 5]\n  train.lr: [0.1, 0.2]\n",
    )
}

#[test]
fn a_2x2_sweep_over_a_chain_runs_the_shared_first_stage_once() {
    let p = chain_with_2x2_sweep();
    let o = p
        .run(&["sweep", "configs/sweeps/s.yaml", "--json", "-q"])
        .success();
    let rows: serde_json::Value = serde_json::from_str(&o.stdout()).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(4));
    let c = calls(&p);
    assert_eq!(c.iter().filter(|x| *x == "prep").count(), 1, "{c:?}");
    assert_eq!(c.iter().filter(|x| *x == "feat").count(), 2, "{c:?}");
    assert_eq!(c.iter().filter(|x| *x == "train").count(), 4, "{c:?}");
    // The table shows the swept parameters and the metric, per variant.
    assert_eq!(rows[3]["feat.width"], 5.0);
    assert_eq!(rows[3]["train.lr"], 0.2);
    assert_eq!(rows[3]["train.loss"], 0.2);
    let show = p.run(&["exp", "show"]).success().stdout();
    assert!(
        show.contains("train.loss") && show.contains("feat.width"),
        "{show}"
    );
}

#[test]
fn sweep_check_validates_every_variant_and_runs_nothing() {
    let p = chain_with_2x2_sweep();
    let o = p
        .run(&["sweep", "--check", "configs/sweeps/s.yaml"])
        .success();
    assert!(
        o.stdout().contains("4 variants, all valid"),
        "{}",
        o.stdout()
    );
    assert!(calls(&p).is_empty(), "nothing ran");
    let p = p.file(
        "configs/sweeps/bad.yaml",
        "variants:\n  - {train.lr: 0.2}\n  - {train.lrr: 0.2}\n",
    );
    let o = p.run(&["sweep", "--check", "configs/sweeps/bad.yaml"]);
    assert_eq!(o.code(), 2);
    assert!(
        o.stderr().contains("variant 1") && o.stderr().contains("train.lrr"),
        "{}",
        o.stderr()
    );
}

/// The sweeps shipped in configs/sweeps stay valid over the demo config they build on
/// (a renamed or removed parameter would otherwise only show when someone runs one).
#[test]
fn the_shipped_sweeps_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("configs/sweeps"))
        .expect("configs/sweeps")
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let out = common::Out(
            std::process::Command::new(common::bin())
                .arg("-C")
                .arg(root)
                .args(["sweep", "--check"])
                .arg(&f)
                .output()
                .expect("run pipe"),
        )
        .success()
        .stdout();
        assert!(out.contains("all valid"), "{}: {out}", f.display());
    }
}

#[test]
fn gc_keeps_what_runs_refer_to_and_drops_the_rest() {
    let p = chain();
    p.statuses(&[]);
    p.statuses(&["--set", "train.lr=0.3"]);
    assert_eq!(p.entries("train").len(), 2);
    p.run(&["gc"]).success();
    assert_eq!(p.entries("train").len(), 2, "both are in run records");
    p.run(&["gc", "--only-current"]).success();
    // `latest` is the lr=0.3 run; the current config is lr=0.1: both are kept.
    assert_eq!(p.entries("train").len(), 2);
    p.statuses(&[]);
    let dry = p.run(&["gc", "--only-current", "--dry-run"]).success();
    let old = p.entries("train").into_iter().find(|e| {
        !std::fs::read_to_string(e.join("model.txt"))
            .unwrap_or_default()
            .contains("lr=0.1")
    });
    let old = old.expect("the lr=0.3 entry").display().to_string();
    assert!(
        dry.stdout().contains(&format!("would remove {old}")),
        "{}",
        dry.stdout()
    );
    assert_eq!(p.entries("train").len(), 2, "dry run removes nothing");
    p.run(&["gc", "--only-current"]).success();
    assert_eq!(p.entries("train").len(), 1);
}

#[test]
fn pipe_without_libtorch_runs_light_pipelines_itself_and_hands_model_ones_on() {
    // `pipe` links no libtorch: a bad job file is its own error...
    let o = common::Out(
        std::process::Command::new(common::bin())
            .args(["exec-stage", "--job", "/nonexistent/job.json"])
            .output()
            .expect("run"),
    );
    assert_eq!(o.code(), 4, "{}", o.stderr());
    assert!(
        o.stderr()
            .contains("failed to read job file /nonexistent/job.json"),
        "{}",
        o.stderr()
    );
    // ...and a model stage's job is not one of its kinds.
    let job = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        job.path(),
        r#"{"stage":"train","kind":"motion.train","key":"k","project_dir":"/","out_dir":"/",
            "outs":[],"deps":[],"params":{},"scratch_dir":"/","progress_file":"/dev/null"}"#,
    )
    .expect("write");
    let o = common::Out(
        std::process::Command::new(common::bin())
            .args(["exec-stage", "--job"])
            .arg(job.path())
            .output()
            .expect("run"),
    );
    assert!(
        o.stderr()
            .contains("this binary has no stage kind `motion.train`"),
        "{}",
        o.stderr()
    );
    // With `pipe-torch` out of reach, a command that needs libtorch says so.
    let dir = tempfile::tempdir().expect("tmp");
    let lone = dir.path().join("pipe");
    std::fs::copy(common::bin(), &lone).expect("copy");
    let o = common::Out(
        std::process::Command::new(&lone)
            .args(["generate", "a person walks"])
            .current_dir(dir.path())
            .output()
            .expect("run"),
    );
    assert_eq!(o.code(), 2, "{}", o.stderr());
    assert!(o.stderr().contains("`pipe-torch`"), "{}", o.stderr());
}

//! What users read: `--help`, `pipe status`, `pipe dag`, `pipe show`, as snapshots
//! with paths, keys, run ids and times redacted.

mod common;

use common::{redact, Project};

fn project() -> Project {
    Project::new()
        .file(
            "pipeline.yaml",
            "config: configs/c.yaml\nstages:\n  extract:\n    desc: raw text to upper case\n    cmd: 'tr a-z A-Z < $PIPE_DEP_0 > $PIPE_OUT/data.txt'\n    deps: [data/raw.txt]\n    outs: [data.txt]\n  train:\n    cmd: 'cat $PIPE_DEP_0 > $PIPE_OUT/model.txt; echo ${train.lr} >> $PIPE_OUT/model.txt'\n    deps: [extract/data.txt]\n    params: [train.lr]\n    outs: [model.txt]\n    resources: {gpu: 1}\n",
        )
        .file("configs/c.yaml", "train:\n  lr: 0.1\n")
        .file("data/raw.txt", "abc\n")
}

#[test]
fn help_texts() {
    let p = Project::new();
    let mut all = String::new();
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["status", "--help"],
        &["sweep", "--help"],
        &["exp", "show", "--help"],
    ] {
        let o = p.run(args).success();
        all.push_str(&format!("## pipe {}\n{}\n", args.join(" "), o.stdout()));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn status_dag_and_show() {
    let p = project();
    let mut all = String::new();
    let mut add = |title: &str, args: &[&str]| {
        let o = p.run(args).success();
        all.push_str(&format!("## {title}\n{}\n", redact(&o.stdout(), p.path())));
    };
    add("status before any run", &["status"]);
    add("dag", &["dag"]);
    add("dag --dot", &["dag", "--dot"]);
    add("run", &["run", "-q"]);
    add("status after a run", &["status"]);
    add(
        "status with a changed parameter",
        &["status", "--set", "train.lr=0.2"],
    );
    add("show", &["show", "train"]);
    insta::assert_snapshot!(all);
}

//! Invalid pipelines, configs and command lines: a clear error naming the file,
//! the stage and the key, exit code 2, and nothing written. Messages are snapshots.

mod common;

use common::{redact, Project};

const GOOD: &str = "config: c.yaml\nstages:\n  a:\n    cmd: 'echo ${x.n} > $PIPE_OUT/o'\n    deps: [in.txt]\n    params: [x]\n    outs: [o]\n  b:\n    cmd: 'cp $PIPE_DEP_0 $PIPE_OUT/o'\n    deps: [a/o]\n    outs: [o]\n";

fn case(pipeline: &str, config: &str, args: &[&str]) -> String {
    let p = Project::new()
        .file("pipeline.yaml", pipeline)
        .file("c.yaml", config)
        .file("in.txt", "x");
    let o = p.run(args);
    assert_eq!(
        o.code(),
        2,
        "{pipeline}\n{config}\n{args:?}: expected exit 2\nstdout: {}\nstderr: {}",
        o.stdout(),
        o.stderr()
    );
    assert!(
        !p.path().join("artifacts").exists(),
        "nothing may be written on invalid input"
    );
    assert!(o.stderr().starts_with("error: "), "{}", o.stderr());
    redact(&o.stderr(), p.path())
}

#[test]
fn invalid_inputs_give_clear_errors_and_write_nothing() {
    let cfg = "x:\n  n: 1\n";
    let cases: Vec<(&str, String)> = vec![
        ("bad yaml", case("stages:\n  a: [unclosed\n", cfg, &["run"])),
        (
            "unknown stage key",
            case(
                &GOOD.replace("    outs: [o]\n  b:", "    outz: [o]\n  b:"),
                cfg,
                &["run"],
            ),
        ),
        (
            "unknown top-level key",
            case(&format!("{GOOD}extra: 1\n"), cfg, &["run"]),
        ),
        (
            "duplicate stage",
            case(
                &format!("{GOOD}  a:\n    cmd: x\n    outs: [o]\n"),
                cfg,
                &["run"],
            ),
        ),
        (
            "cycle",
            case(
                &GOOD.replace("deps: [in.txt]", "deps: [b/o]"),
                cfg,
                &["run"],
            ),
        ),
        (
            "missing producer",
            case(&GOOD.replace("deps: [a/o]", "deps: [a/p]"), cfg, &["run"]),
        ),
        (
            "output outside the store",
            case(
                &GOOD.replace("outs: [o]\n  b:", "outs: [../o]\n  b:"),
                cfg,
                &["run"],
            ),
        ),
        (
            "bad param reference",
            case(
                &GOOD.replace("params: [x]", "params: [x, y.z]"),
                cfg,
                &["run"],
            ),
        ),
        (
            "undeclared placeholder",
            case(&GOOD.replace("params: [x]", "params: []"), cfg, &["run"]),
        ),
        (
            "unknown config key",
            case(GOOD, "x:\n  n: 1\ny:\n  m: 2\n", &["run"]),
        ),
        ("config not a mapping", case(GOOD, "- 1\n- 2\n", &["run"])),
        ("nan in config", case(GOOD, "x:\n  n: .nan\n", &["run"])),
        (
            "unknown --set key",
            case(GOOD, cfg, &["run", "--set", "x.q=1"]),
        ),
        ("malformed --set", case(GOOD, cfg, &["run", "--set", "x.n"])),
        (
            "missing config file",
            case(GOOD, cfg, &["run", "--config", "nope.yaml"]),
        ),
        ("unknown target", case(GOOD, cfg, &["run", "zzz"])),
        (
            "unknown --force",
            case(GOOD, cfg, &["run", "--force", "zzz"]),
        ),
        (
            "unknown kind",
            case(
                "stages:\n  a:\n    uses: no.such\n    outs: [o]\n",
                cfg,
                &["run"],
            ),
        ),
        (
            "missing input",
            case(
                &GOOD.replace("deps: [in.txt]", "deps: [missing.txt]"),
                cfg,
                &["run"],
            ),
        ),
        ("zero jobs", case(GOOD, cfg, &["run", "-j", "0"])),
    ];
    let all: String = cases
        .iter()
        .map(|(name, msg)| format!("## {name}\n{msg}"))
        .collect();
    insta::assert_snapshot!(all);
}

#[test]
fn bad_sweep_files_are_rejected_before_any_variant_runs() {
    let p = Project::new()
        .file("pipeline.yaml", GOOD)
        .file("c.yaml", "x:\n  n: 1\n")
        .file("in.txt", "x")
        .file("s1.yaml", "grid:\n  x.n: [1, 2]\n  x.zz: [3]\n")
        .file("s2.yaml", "grid:\n  x.n: 5\n")
        .file("s3.yaml", "target: a\n");
    let mut msgs = String::new();
    for f in ["s1.yaml", "s2.yaml", "s3.yaml"] {
        let o = p.run(&["sweep", f]);
        assert_eq!(o.code(), 2, "{f}: {}", o.stderr());
        msgs.push_str(&redact(&o.stderr(), p.path()));
    }
    assert!(!p.path().join("artifacts").exists(), "no variant ran");
    insta::assert_snapshot!(msgs);
}

#[test]
fn no_pipeline_here() {
    let p = Project::new();
    let o = p.run(&["status"]);
    assert_eq!(o.code(), 2);
    assert!(o.stderr().contains("no pipeline.yaml in"), "{}", o.stderr());
}

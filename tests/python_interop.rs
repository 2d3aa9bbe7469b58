//! Files users open from Python: `pipe exp show --parquet` in pyarrow and polars.

mod common;

use common::{run_python, Project};

#[test]
fn exp_show_parquet_opens_in_pyarrow_and_polars() {
    let p = Project::new()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  t:\n    cmd: 'echo \"{\\\"loss\\\": ${t.lr}, \\\"acc\\\": {\\\"val\\\": 0.5}}\" > $PIPE_OUT/metrics.json'\n    params: [t.lr]\n    outs: [metrics.json]\n",
        )
        .file("c.yaml", "t:\n  lr: 0.1\n");
    p.run(&["run", "-q"]).success();
    p.run(&["run", "-q", "--set", "t.lr=0.25"]).success();
    let out = p.path().join("exp.parquet");
    p.run(&["exp", "show", "--parquet", out.to_str().expect("utf8")])
        .success();
    let code = r#"
import sys, pyarrow.parquet as pq, polars as pl
t = pq.read_table(sys.argv[1])
df = pl.read_parquet(sys.argv[1])
assert t.num_rows == 2, t
assert df.columns == ["run", "sweep", "target", "status", "seconds", "t.lr", "t.acc.val", "t.loss"], df.columns
assert df["t.lr"].to_list() == [0.1, 0.25]
assert df["t.loss"].to_list() == [0.1, 0.25]
assert df["status"].to_list() == ["ok", "ok"]
assert t.schema.field("t.lr").type == "double"
print("ok")
"#;
    assert_eq!(
        run_python(code, &[out.to_str().expect("utf8")]).trim(),
        "ok"
    );
}

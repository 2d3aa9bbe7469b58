//! motion.stats through the real binary: normalisation over the train split and a
//! dataset summary that opens in polars; only its own parameters re-run it.

mod common;

use common::{pairs, run_python, Project};

#[test]
fn stats_normalise_over_train_and_summarise_the_dataset() {
    let p = Project::new()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  synth:\n    uses: kit.synth\n    params: [synth]\n    outs: [kit]\n  extract:\n    uses: kit.extract\n    deps: [synth/kit]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n  stats:\n    uses: motion.stats\n    deps: [extract/motions.parquet]\n    params: [stats]\n    outs: [norm.json, summary.parquet, by_sentences.parquet, joint_ranges.parquet, metrics.json]\n",
        )
        .file("c.yaml", "synth:\n  count: 52\nextract:\n  fps: 20\n  split: {val: 0.2, test: 0.2, seed: 1}\nstats:\n  std_floor: 0.001\n");
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("synth", "ran"), ("extract", "ran"), ("stats", "ran")])
    );
    assert_eq!(
        p.statuses(&["--set", "stats.std_floor=0.01"]),
        pairs(&[("synth", "cached"), ("extract", "cached"), ("stats", "ran")])
    );
    let dir = p.entries("stats").into_iter().find(|d| {
        std::fs::read_to_string(d.join("norm.json"))
            .unwrap_or_default()
            .contains("\"std\"")
    });
    let dir = dir.expect("a stats entry");
    let motions = p.entries("extract")[0].join("motions.parquet");
    let code = r#"
import sys, json, polars as pl
d, motions = sys.argv[1], sys.argv[2]
norm = json.load(open(d + "/norm.json"))
assert len(norm["features"]) == 50 and len(norm["mean"]) == 50 and len(norm["std"]) == 50
assert norm["features"][:4] == ["root_height", "root_vel_forward", "root_vel_right", "heading_vel"], norm["features"][:4]
assert all(s >= 0.001 for s in norm["std"])
m = pl.read_parquet(motions)
train = m.filter(pl.col("split") == "train")
assert norm["motions"] == train.height and norm["frames"] == train["frames"].sum(), (norm["motions"], norm["frames"])
# Root height mean over train frames, recomputed from the Parquet file.
z = [f[2] / 1000 for rp in train["root_position"].to_list() for f in rp]
assert abs(sum(z) / len(z) - norm["mean"][0]) < 1e-4, (sum(z) / len(z), norm["mean"][0])
s = pl.read_parquet(d + "/summary.parquet")
assert sorted(s["split"].to_list()) == sorted(m["split"].unique().to_list())
assert s["motions"].sum() == m.height and s["frames"].sum() == m["frames"].sum()
b = pl.read_parquet(d + "/by_sentences.parquet")
assert b["motions"].sum() == m.height and set(b["num_sentences"].to_list()) <= {0, 1, 2, 3}
r = pl.read_parquet(d + "/joint_ranges.parquet")
assert r.height == 44 and (r["min_rad"] <= r["max_rad"]).all()
print("ok")
"#;
    let out = run_python(
        code,
        &[dir.to_str().expect("utf8"), motions.to_str().expect("utf8")],
    );
    assert_eq!(out.trim(), "ok");
    let bad = p.run(&["run", "--set", "stats.std_floor=0"]);
    assert_eq!(bad.code(), 2);
    assert!(
        bad.stderr().contains("stats.std_floor must be in (0, 1)"),
        "{}",
        bad.stderr()
    );
}

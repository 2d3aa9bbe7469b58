//! KIT-ML ingestion through the real binary: the real motion 00001, synthetic data,
//! every kind of bad input, and the files opened from Python (polars, pyarrow).

mod common;

use std::path::PathBuf;

use common::{pairs, redact, run_python, Project};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_xml() -> String {
    std::fs::read_to_string(repo().join("data/kit/00001_mmm.xml")).expect("data/kit/00001_mmm.xml")
}

const EXTRACT_ONLY: &str = "config: c.yaml\nstages:\n  extract:\n    uses: kit.extract\n    deps: [data/kit]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n";

#[test]
fn the_real_motion_00001_extracts_to_378_frames_travelling_1_36_m() {
    let p = Project::new()
        .file("pipeline.yaml", EXTRACT_ONLY)
        .file("c.yaml", "extract:\n  fps: 100\n")
        .file("data/kit/00001_mmm.xml", &real_xml())
        .file(
            "data/kit/00001_annotations.json",
            "[\"A person is walking forwards.\"]",
        );
    p.run(&["run", "-q"]).success();
    let dir = p.entries("extract")[0].clone();
    let code = r#"
import sys, math, json, re
import polars as pl, pyarrow.parquet as pq
d, xml = sys.argv[1], sys.argv[2]
m = pl.read_parquet(d + "/motions.parquet")
t = pq.read_table(d + "/motions.parquet")
assert m.height == 1 and t.num_rows == 1
row = m.row(0, named=True)
assert row["frames"] == 378 and row["fps"] == 100.0, (row["frames"], row["fps"])
assert abs(row["height_m"] - 1.82) < 1e-6 and row["num_sentences"] == 1
rp = row["root_position"]
travel = math.hypot(rp[-1][0] - rp[0][0], rp[-1][1] - rp[0][1]) / 1000
assert abs(travel - 1.36) < 0.01, travel
names = json.loads(t.schema.metadata[b"pipe.joint_names"])
assert len(names) == 44 and names[0] == "BLNx_joint"
# Same numbers as the XML (float32 precision).
src = [list(map(float, s.split())) for s in re.findall(r"<JointPosition>([^<]*)<", open(xml).read())]
jp = row["joint_position"]
err = max(abs(a - b) for fa, fb in zip(src, jp) for a, b in zip(fa, fb))
assert err < 1e-6, err
texts = pl.read_parquet(d + "/texts.parquet")
assert texts["sentence"].to_list() == ["A person is walking forwards."]
print("ok", travel, row["source_digest"])
"#;
    let out = run_python(
        code,
        &[
            dir.to_str().expect("utf8"),
            repo()
                .join("data/kit/00001_mmm.xml")
                .to_str()
                .expect("utf8"),
        ],
    );
    assert!(out.starts_with("ok"), "{out}");
    // The digest of the source file (taken from the runner, which hashed `data/kit`).
    let want = blake3::hash(&std::fs::read(repo().join("data/kit/00001_mmm.xml")).expect("read"));
    assert_eq!(
        out.split_whitespace().nth(2),
        Some(want.to_hex().as_str()),
        "{out}"
    );
}

/// A project whose `synth` stage writes `count` motions.
fn synth_project(count: usize) -> Project {
    Project::new()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  synth:\n    uses: kit.synth\n    params: [synth]\n    outs: [kit]\n  extract:\n    uses: kit.extract\n    deps: [synth/kit]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n",
        )
        .file("c.yaml", &format!("synth:\n  count: {count}\n  seed: 3\nextract:\n  fps: 20\n"))
}

#[test]
fn changing_extract_params_reruns_extraction_only() {
    let p = synth_project(13);
    assert_eq!(
        p.statuses(&[]),
        pairs(&[("synth", "ran"), ("extract", "ran")])
    );
    assert_eq!(
        p.statuses(&["--set", "extract.fps=12.5"]),
        pairs(&[("synth", "cached"), ("extract", "ran")])
    );
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.entries("extract")[0].join("metrics.json")).unwrap_or_default(),
    )
    .expect("metrics");
    assert!(m["motions"].as_u64().unwrap_or(0) >= 12, "{m}");
    // Each motion's source digest is its file's blake3 (the runner's, from the
    // upstream manifest): the same as hashing the file.
    let kit = p.entries("synth")[0].join("kit");
    let entry = p.entries("extract")[0].clone();
    let out = run_python(
        "import sys, polars as pl\nfor r in pl.read_parquet(sys.argv[1] + '/motions.parquet').iter_rows(named=True): print(r['id'], r['source_digest'])",
        &[entry.to_str().expect("utf8")],
    );
    let mut n = 0;
    for line in out.lines() {
        let (id, digest) = line.split_once(' ').expect("id digest");
        let bytes = std::fs::read(kit.join(format!("{id}_mmm.xml"))).expect("source file");
        assert_eq!(digest, blake3::hash(&bytes).to_hex().as_str(), "{id}");
        n += 1;
    }
    assert!(n >= 12, "{out}");
}

#[test]
fn bad_extract_and_synth_params_are_rejected_before_running() {
    let p = synth_project(13);
    let mut msgs = String::new();
    for (args, code) in [
        (&["run", "--set", "extract.fps=0"][..], 2),
        (&["run", "--set", "synth.count=0"][..], 2),
        (&["run", "--set", "extract.channels=[CoM]"][..], 2),
    ] {
        let o = p.run(args);
        assert_eq!(o.code(), code, "{args:?}: {}", o.stderr());
        msgs.push_str(&redact(&o.stderr(), p.path()));
    }
    p.write(
        "c.yaml",
        "synth:\n  count: 13\n  colour: red\nextract:\n  fps: 20\n",
    );
    let o = p.run(&["run"]);
    assert_eq!(o.code(), 2);
    msgs.push_str(&redact(&o.stderr(), p.path()));
    assert!(!p.path().join("artifacts").exists());
    insta::assert_snapshot!(msgs);
}

/// Edit the real file: replace the n-th match of `from` with `to`.
fn edit_nth(text: &str, from: &str, to: &str, n: usize) -> String {
    let mut idx = 0;
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        out.push_str(&rest[..i]);
        out.push_str(if idx == n { to } else { from });
        rest = &rest[i + from.len()..];
        idx += 1;
    }
    out.push_str(rest);
    out
}

/// The values of one element in frame `frame` of the real file.
fn frame_values(xml: &str, tag: &str, frame: usize) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .match_indices(&open)
        .nth(frame)
        .map(|(i, _)| i + open.len())
        .unwrap_or(0);
    let end = start + xml[start..].find('<').unwrap_or(0);
    xml[start..end].to_string()
}

fn without_joints(xml: &str, drop: &[&str]) -> String {
    let order: Vec<&str> = xml
        .split("<Joint name='")
        .skip(1)
        .map(|s| s.split('\'').next().unwrap_or(""))
        .collect();
    let keep: Vec<bool> = order.iter().map(|n| !drop.contains(n)).collect();
    let mut out = String::new();
    for line in xml.lines() {
        let t = line.trim_start();
        if drop.iter().any(|d| t == format!("<Joint name='{d}'/>")) {
            continue;
        }
        if let Some(vals) = t
            .strip_prefix("<JointPosition>")
            .and_then(|r| r.strip_suffix("</JointPosition>"))
        {
            let v: Vec<&str> = vals
                .split_whitespace()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect();
            out.push_str(&format!(
                "\t\t\t\t<JointPosition>{} </JointPosition>\n\t\t\t\t<CoM>1 2 3</CoM>\n",
                v.join(" ")
            ));
            continue;
        }
        if t.starts_with("<JointVelocity>") || t.starts_with("<JointAcceleration>") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn bad_dataset(p: &Project) {
    // Good motions from kit.synth, copied into the project's data folder.
    let src = synth_project(26);
    src.run(&["run", "-q", "synth"]).success();
    let kit = src.entries("synth")[0].join("kit");
    let dest = p.path().join("data/kit");
    std::fs::create_dir_all(&dest).expect("mkdir");
    for e in std::fs::read_dir(&kit).expect("synth output").flatten() {
        std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy");
    }
    let xml = real_xml();
    let ann = "[\"A person walks.\"]";
    let first_jp = frame_values(&xml, "JointPosition", 10);
    let fewer = first_jp
        .trim()
        .rsplit_once(' ')
        .map(|(a, _)| a.to_string())
        .unwrap_or_default();
    let rp5 = frame_values(&xml, "RootPosition", 5);
    let bad: Vec<(&str, String)> = vec![
        ("90001", xml[..xml.len() / 2].to_string()),
        ("90002", xml.replacen(&first_jp, &format!("{fewer} "), 1)),
        ("90003", edit_nth(&xml, &rp5, "1142.97 nan 973.526", 0)),
        (
            "90004",
            edit_nth(
                &xml,
                "<Timestep>0.05</Timestep>",
                "<Timestep>abc</Timestep>",
                0,
            ),
        ),
        ("90005", {
            let a = xml.find("<JointOrder>").unwrap_or(0);
            let b = xml
                .find("</JointOrder>")
                .map(|i| i + "</JointOrder>".len())
                .unwrap_or(0);
            format!("{}{}", &xml[..a], &xml[b..])
        }),
        ("90006", {
            let a = xml
                .find("<MotionFrames>")
                .map(|i| i + "<MotionFrames>".len())
                .unwrap_or(0);
            let b = xml.find("</MotionFrames>").unwrap_or(0);
            format!("{}{}", &xml[..a], &xml[b..])
        }),
        (
            "90007",
            without_joints(&xml, &["LHx_joint", "LHy_joint", "LHz_joint", "LKx_joint"]),
        ),
        (
            "90008",
            without_joints(
                &xml,
                &["LFx_joint", "LMrot_joint", "RFx_joint", "RMrot_joint"],
            ),
        ),
        ("90009", xml.clone()),
        ("90010", xml.clone()),
        ("90011", xml.clone()),
        ("90012", xml.clone()),
        ("90014", xml.clone()),
    ];
    for (id, text) in &bad {
        std::fs::write(dest.join(format!("{id}_mmm.xml")), text).expect("write");
        let a: &[u8] = match *id {
            "90009" => b"[\"A person walks \xff\xfe.\"]",
            "90010" => b"[\"A person walks.\", \"   \", \"\"]",
            "90011" => b"[\"A person walks.\",",
            "90014" => b"[]",
            _ => ann.as_bytes(),
        };
        if *id != "90012" {
            std::fs::write(dest.join(format!("{id}_annotations.json")), a).expect("write");
        }
    }
    std::fs::create_dir_all(dest.join("sub")).expect("mkdir");
    std::fs::write(dest.join("sub/00001_mmm.xml"), &xml).expect("dup");
    // A 1 GB file (sparse: no disk used), never read.
    let big = std::fs::File::create(dest.join("90013_mmm.xml")).expect("big");
    big.set_len(1 << 30).expect("set_len");
    std::fs::write(dest.join("90013_annotations.json"), ann).expect("write");
}

#[test]
fn every_bad_input_is_explained_and_no_good_motion_is_lost() {
    let p = Project::new().file("pipeline.yaml", EXTRACT_ONLY).file(
        "c.yaml",
        "extract:\n  fps: 20\n  max_reject_fraction: 0.5\n",
    );
    bad_dataset(&p);
    p.run(&["run", "-q"]).success();
    let dir = p.entries("extract")[0].clone();
    let code = r#"
import sys, polars as pl
d = sys.argv[1]
m = pl.read_parquet(d + "/motions.parquet")
r = pl.read_parquet(d + "/rejects.parquet")
ids = set(m["id"].to_list())
good = {f"{i:05d}" for i in range(1, 27)}
assert good <= ids, sorted(good - ids)
assert ids - good == {"90008", "90010", "90014"}, sorted(ids - good)
legacy = m.filter(pl.col("id") == "90008").row(0, named=True)
assert legacy["missing_joints"] == ["LFx_joint", "LMrot_joint", "RFx_joint", "RMrot_joint"], legacy["missing_joints"]
assert m.filter(pl.col("id") == "90014")["has_text"].to_list() == [False]
assert m.filter(pl.col("id") == "90010")["num_sentences"].to_list() == [1]
for row in r.sort("file").iter_rows(named=True):
    print(row["file"], "|", row["kind"], "|", row["line"], "|", row["frame"], "|", row["element"], "|", row["reason"])
"#;
    let out = run_python(code, &[dir.to_str().expect("utf8")]);
    let expect = [
        ("90001_mmm.xml | invalid", "truncated"),
        (
            "90002_mmm.xml | invalid | 142 | 10 | JointPosition",
            "expected 44 values, found 43",
        ),
        (
            "90003_mmm.xml | invalid | 100 | 5 | RootPosition",
            "non-finite value `nan`",
        ),
        ("90004_mmm.xml | invalid", "non-numeric value `abc`"),
        ("90005_mmm.xml | invalid", "joint order is missing"),
        ("90006_mmm.xml | invalid", "empty <MotionFrames>"),
        ("90007_mmm.xml | invalid", "only the foot joints"),
        (
            "90008_mmm.xml | warning",
            "per-frame elements not extracted: CoM",
        ),
        ("90009_annotations.json | invalid", "not valid UTF-8"),
        ("90010_annotations.json | sentence", "sentence 1 is empty"),
        ("90011_annotations.json | invalid", "malformed JSON"),
        ("90012_mmm.xml | invalid", "missing annotations file"),
        ("90013_mmm.xml | invalid", "over extract.max_file_mb"),
        ("sub/00001_mmm.xml | invalid", "duplicate id 00001"),
    ];
    for (prefix, reason) in expect {
        assert!(
            out.lines()
                .any(|l| l.starts_with(prefix) && l.contains(reason)),
            "no reject `{prefix} … {reason}` in:\n{out}"
        );
    }
    // With the default threshold (10%) this folder is too broken: the stage fails and says why.
    p.write("c.yaml", "extract:\n  fps: 20\n");
    let o = p.run(&["run", "--json", "-q"]);
    assert_eq!(o.code(), 1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout()).expect("json");
    let err = v["stages"][0]["error"].as_str().unwrap_or("");
    assert!(
        err.contains("above extract.max_reject_fraction = 0.1") && err.contains("90001_mmm.xml"),
        "{err}"
    );
}

#[test]
fn kit_check_says_what_is_wrong_and_where() {
    let p = Project::new();
    bad_dataset(&p);
    let dir = p.path().join("data/kit");
    let files: Vec<String> = [
        "00001_mmm.xml",
        "90002_mmm.xml",
        "90003_mmm.xml",
        "90005_mmm.xml",
        "90007_mmm.xml",
        "90008_mmm.xml",
    ]
    .iter()
    .map(|f| dir.join(f).display().to_string())
    .collect();
    let mut args = vec!["kit", "check"];
    args.extend(files.iter().map(String::as_str));
    let o = p.run(&args);
    assert_eq!(o.code(), 1, "bad files found: exit 1");
    insta::assert_snapshot!(redact(&o.stdout(), p.path()));
    let ok = p
        .run(&[
            "kit",
            "check",
            repo()
                .join("data/kit/00001_mmm.xml")
                .to_str()
                .expect("utf8"),
        ])
        .success();
    assert!(
        ok.stdout()
            .contains("ok: 378 frames, 3.77 s at 100.0 Hz, 44 joints, height 1.82 m"),
        "{}",
        ok.stdout()
    );
}

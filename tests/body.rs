//! The body from the command line: `pipe export` (BVH checked by an independent
//! reader, bvhio from PyPI), `pipe render`, mirroring, and bad input.

mod common;

use common::{python, repo, Project};
use pipe_kit::joints::KIT_JOINTS;
use pipe_kit::synth::{generate, Action, Rng};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).expect("json on stdout")
}

fn real() -> String {
    repo().join("data/kit/00001_mmm.xml").display().to_string()
}

/// A synthetic motion (kit.synth's generator) written as MMM XML.
fn synthetic(p: &Project, action: Action, name: &str) -> String {
    let mut rng = Rng::new(7);
    let g = generate(action, 1.7, 3.0, 20.0, &mut rng);
    let m = pipe_kit::mmm::Motion {
        name: name.into(),
        height_m: Some(1.7),
        joint_names: KIT_JOINTS.iter().map(|s| s.to_string()).collect(),
        timesteps: (0..g.root_position.len())
            .map(|i| i as f64 / 20.0)
            .collect(),
        root_position: g.root_position,
        root_rotation: g.root_rotation,
        joint_position: g.joints,
        ..Default::default()
    };
    let path = p.path().join(format!("{name}.xml"));
    pipe_kit::mmm::write_file(&path, &m).expect("write xml");
    path.display().to_string()
}

/// `pipe export bvh` and `pipe export positions` of a motion into the project:
/// the two files and the point names.
fn export(p: &Project, motion: &str, extra: &[&str]) -> (String, String, String) {
    let bvh = p.path().join("m.bvh").display().to_string();
    let npy = p.path().join("m.npy").display().to_string();
    let mut a = vec!["export", "bvh", motion, "-o", &bvh];
    a.extend(extra);
    p.run(&a).success();
    let mut a = vec!["export", "positions", motion, "-o", &npy, "--json"];
    a.extend(extra);
    let v = json(&p.run(&a).success().stdout());
    let names: Vec<&str> = v["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    let names = names.join(",");
    (bvh, npy, names)
}

/// bvhio's world positions of our BVH against our forward kinematics.
fn bvhio_check(p: &Project, motion: &str, extra: &[&str]) -> serde_json::Value {
    let (bvh, npy, names) = export(p, motion, extra);
    let o = std::process::Command::new(python())
        .arg(repo().join("tests/bvh_check.py"))
        .args([&bvh, &npy, &names])
        .output()
        .expect("python");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "bvhio disagrees: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(out.trim()).expect("json")
}

/// Blender's own BVH importer (Debian's package, headless) against our FK.
fn blender_check(p: &Project, motion: &str, extra: &[&str]) -> serde_json::Value {
    let (bvh, npy, names) = export(p, motion, extra);
    let o = std::process::Command::new("blender")
        .args(["-b", "--factory-startup", "--python"])
        .arg(repo().join("tests/blender_check.py"))
        .args(["--", &bvh, &npy, &names])
        .output()
        .expect("cannot run blender: scripts/test installs it (scripts/install-blender)");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("BLENDER_CHECK "))
        .unwrap_or_default();
    assert!(
        !line.is_empty(),
        "no result from Blender:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    assert!(o.status.success(), "Blender disagrees: {v}");
    v
}

#[test]
fn blender_imports_our_bvh_and_puts_every_bone_on_our_joints() {
    let p = Project::new();
    let v = blender_check(&p, &real(), &[]);
    assert_eq!(v["bones"], 21, "{v}");
    assert_eq!(v["frames"], 378, "{v}");
    assert!(v["worst_mm"].as_f64().expect("worst") < 1.0, "{v}");
    let s = synthetic(&p, Action::WaveLeft, "wave");
    let v = blender_check(&p, &s, &["--mirror"]);
    assert!(v["worst_mm"].as_f64().expect("worst") < 1.0, "{v}");
}

#[test]
fn bvhio_reads_our_bvh_and_finds_our_joint_positions() {
    let p = Project::new();
    let v = bvhio_check(&p, &real(), &[]);
    assert_eq!(v["frames"], 378);
    assert_eq!(v["joints"].as_array().map(Vec::len), Some(21), "{v}");
    assert!(v["worst_mm"].as_f64().expect("worst") < 1.0, "{v}");
    let s = synthetic(&p, Action::Kick, "kick");
    let v = bvhio_check(&p, &s, &[]);
    assert!(v["worst_mm"].as_f64().expect("worst") < 1.0, "{v}");
    // Mirrored, too.
    let v = bvhio_check(&p, &s, &["--mirror"]);
    assert!(v["worst_mm"].as_f64().expect("worst") < 1.0, "{v}");
}

#[test]
fn export_formats_read_back_to_the_same_motion() {
    let p = Project::new();
    let d = p.path().display().to_string();
    p.run(&["export", "xml", &real(), "-o", &format!("{d}/a.xml")])
        .success();
    p.run(&[
        "export",
        "npy",
        &format!("{d}/a.xml"),
        "-o",
        &format!("{d}/a.npy"),
    ])
    .success();
    // The .npy back to XML (fps and height given, as the .npy holds neither).
    p.run(&[
        "export",
        "xml",
        &format!("{d}/a.npy"),
        "--fps",
        "100",
        "--height",
        "1.82",
        "-o",
        &format!("{d}/b.xml"),
    ])
    .success();
    let read = |f: &str| {
        pipe_kit::mmm::read_file(&p.path().join(f), Default::default()).expect("read back")
    };
    let (orig, a, b) = (
        pipe_kit::mmm::read_file(std::path::Path::new(&real()), Default::default()).expect("00001"),
        read("a.xml"),
        read("b.xml"),
    );
    assert_eq!(a.frames(), 378);
    assert_eq!(a.height_m, Some(1.82));
    let worst = |x: &pipe_kit::mmm::Motion, y: &pipe_kit::mmm::Motion| {
        let mut w: f64 = 0.0;
        for f in 0..x.frames() {
            for k in 0..3 {
                w = w.max((x.root_position[f][k] - y.root_position[f][k]).abs() / 1000.0);
                w = w.max((x.root_rotation[f][k] - y.root_rotation[f][k]).abs());
            }
        }
        w
    };
    assert!(worst(&orig, &a) < 1e-5, "{}", worst(&orig, &a));
    assert!(worst(&a, &b) < 1e-4, "{}", worst(&a, &b));
    assert!((b.timesteps[377] - 3.77).abs() < 1e-9);
}

#[test]
fn render_writes_a_contact_sheet_and_an_animation() {
    let p = Project::new();
    let d = p.path().display().to_string();
    let o = p
        .run(&[
            "render",
            &real(),
            "-o",
            &d,
            "--caption",
            "a person walks forward",
        ])
        .success();
    let files: Vec<String> = o.stdout().lines().map(|l| l.trim().to_string()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let png = std::fs::read(&files[0]).expect("png");
    assert_eq!(&png[1..4], b"PNG");
    let gif = std::fs::read(&files[1]).expect("gif");
    assert_eq!(&gif[..6], b"GIF89a");
    // Read back by an independent decoder: 8 panels of 180 px, 38 frames at 10 fps.
    let out = common::run_python(
        "import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]); g = Image.open(sys.argv[2])\nprint(im.size[0], g.n_frames)",
        &[&files[0], &files[1]],
    );
    assert_eq!(out.trim(), "1440 38");
    // Mirrored: its own file names.
    let o = p
        .run(&["render", &real(), "-o", &d, "--mirror", "--no-gif"])
        .success();
    assert!(
        o.stdout().trim().ends_with("00001_mmm_mirrored.png"),
        "{}",
        o.stdout()
    );
}

#[test]
fn bad_motions_get_a_clear_error_and_nothing_is_written() {
    let p = Project::new();
    let d = p.path().display().to_string();
    let good = std::fs::read_to_string(real()).expect("00001");
    // A NaN joint angle in frame 2.
    let first = good.find("<JointPosition>").expect("joints") + "<JointPosition>".len();
    let second = good[first..].find("<JointPosition>").expect("2") + first + 15;
    let third = good[second..].find("<JointPosition>").expect("3") + second + 15;
    let mut nan = good.clone();
    nan.insert_str(third, "nan ");
    let nan = {
        // Replace the first value instead of adding one.
        let end = nan[third + 4..].find(' ').expect("space") + third + 4;
        format!("{}{}", &nan[..third + 4], &nan[end..])
    };
    p.write("nan.xml", &nan);
    let unknown = good.replacen("<Joint name='BPx_joint'/>", "<Joint name='Tail_joint'/>", 1);
    let unknown = if unknown == good {
        good.replacen("name=\"BPx_joint\"", "name=\"Tail_joint\"", 1)
    } else {
        unknown
    };
    assert_ne!(unknown, good, "the joint name is in the file");
    p.write("unknown.xml", &unknown);
    let start = good.find("<MotionFrames>").expect("frames") + "<MotionFrames>".len();
    let end = good.find("</MotionFrames>").expect("end");
    p.write("empty.xml", &format!("{}{}", &good[..start], &good[end..]));
    let one_end =
        good[start..].find("</MotionFrame>").expect("one") + start + "</MotionFrame>".len();
    p.write("one.xml", &format!("{}{}", &good[..one_end], &good[end..]));
    p.write("x.txt", "hello");
    let cases: [(&[&str], &str); 8] = [
        (&["nan.xml"], "frame 2"),
        (&["unknown.xml"], "Tail_joint"),
        (&["empty.xml"], "no frames"),
        (&["missing.xml"], "missing.xml"),
        (&["x.txt"], ".txt"),
        (&["one.xml", "--height", "0"], "--height"),
        (&["one.xml", "--fps=-3"], "--fps"),
        (&["nosuchid"], "not a motion file"),
    ];
    for (args, want) in cases {
        let mut a = vec!["export", "bvh"];
        let src = if args[0].ends_with(".xml") || args[0].ends_with(".txt") {
            format!("{d}/{}", args[0])
        } else {
            args[0].to_string()
        };
        a.push(&src);
        a.extend(&args[1..]);
        let out = format!("{d}/out.bvh");
        a.extend(["-o", &out]);
        let o = p.run(&a);
        assert_eq!(o.code(), 2, "{args:?}: {}", o.stderr());
        assert!(
            o.stderr().contains(want),
            "{args:?}: want `{want}` in: {}",
            o.stderr()
        );
        assert!(!o.stderr().contains("panicked"), "{}", o.stderr());
        assert!(!p.path().join("out.bvh").exists(), "{args:?} wrote a file");
    }
    // A single frame is a pose: every output works.
    p.run(&[
        "export",
        "bvh",
        &format!("{d}/one.xml"),
        "-o",
        &format!("{d}/one.bvh"),
    ])
    .success();
    assert!(p.read("one.bvh").contains("Frames: 1\n"));
    p.run(&["render", &format!("{d}/one.xml"), "-o", &d])
        .success();
    // An output folder that does not exist.
    let o = p.run(&[
        "export",
        "bvh",
        &real(),
        "-o",
        &format!("{d}/no/such/x.bvh"),
    ]);
    assert_eq!(o.code(), 2, "{}", o.stderr());
    assert!(o.stderr().contains("no such folder"), "{}", o.stderr());
}

#[test]
fn a_dataset_motion_by_id_comes_from_the_extract_stage() {
    let p = Project::new()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  extract:\n    uses: kit.extract\n    deps: [KIT-ML]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n",
        )
        .file(
            "c.yaml",
            "extract:\n  fps: 20\n  min_seconds: 0.5\n  max_seconds: 10\n  channels: []\n  split: {val: 0.0, test: 0.0, seed: 0}\n  max_reject_fraction: 0.1\n  max_file_mb: 64\n",
        );
    std::os::unix::fs::symlink(repo().join("data/kit"), p.path().join("KIT-ML")).expect("link");
    let d = p.path().display().to_string();
    let o = p.run(&["render", "00001", "-o", &d, "--no-gif"]).success();
    assert!(o.stdout().contains("00001.png"), "{}", o.stdout());
    let v = json(
        &p.run(&[
            "export",
            "positions",
            "00001",
            "-o",
            &format!("{d}/p.npy"),
            "--json",
        ])
        .success()
        .stdout(),
    );
    // Resampled to 20 fps by extraction; the subject's height from the file.
    assert_eq!(v["fps"], 20.0);
    assert_eq!(v["height_m"], 1.82);
    assert_eq!(v["frames"], 76);
    let o = p.run(&["export", "bvh", "00002", "-o", &format!("{d}/x.bvh")]);
    assert_eq!(o.code(), 2);
    assert!(
        o.stderr().contains("no motion `00002`") && o.stderr().contains("00001"),
        "{}",
        o.stderr()
    );
}

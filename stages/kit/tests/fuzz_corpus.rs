//! Regression test from fuzzing (`cargo fuzz run mmm_parse`, see stages/kit/fuzz):
//! every input of the kept corpus, and any crash artifact, must give a motion or
//! an error — never a panic —, the same result from `parse` (fast frame scanner)
//! and `parse_general` (the pull parser alone), and a parsed motion must write and
//! read back equal.

use std::path::Path;

use pipe_kit::mmm::{parse, parse_general, to_xml, Channels};

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn fuzz_corpus_and_artifacts_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = inputs(&root.join("corpus/mmm_parse"));
    files.extend(inputs(&root.join("artifacts/mmm_parse")));
    assert!(
        files.len() > 100,
        "the kept corpus is missing: {}",
        files.len()
    );
    let mut parsed = 0;
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        for ch in [
            Channels::default(),
            Channels {
                joint_velocity: true,
                joint_acceleration: true,
            },
        ] {
            let got = parse(&data, ch);
            assert_eq!(got, parse_general(&data, ch), "{}", f.display());
            if let Ok(m) = got {
                parsed += 1;
                let _ = pipe_kit::extract::canonicalize(m.clone(), 20.0);
                let back =
                    parse(to_xml(&m).as_bytes(), Channels::default()).expect("own output parses");
                assert_eq!(back.joint_position, m.joint_position, "{}", f.display());
            }
        }
    }
    assert!(parsed > 0, "some corpus inputs are valid documents");
}

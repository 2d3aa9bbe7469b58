//! `pipe verify`: re-hash every stored artifact and compare with its manifest.
//! Corrupted entries can be moved aside (`--quarantine`) so the next run recomputes them.

use std::io::Write;

use rayon::prelude::*;

use crate::cache::hash::digest_path;
use crate::cache::store::Store;
use crate::error::{Error, IoContext, Result};

pub struct Problem {
    pub stage: String,
    pub key: String,
    pub what: String,
}

pub fn verify(store: &Store, stage: Option<&str>) -> Result<(usize, Vec<Problem>)> {
    let entries: Vec<(String, String)> = store
        .entries()?
        .into_iter()
        .filter(|(s, _)| stage.is_none_or(|want| want == s))
        .collect();
    let problems: Vec<Vec<Problem>> = entries
        .par_iter()
        .map(|(s, k)| check_entry(store, s, k))
        .collect::<Result<_>>()?;
    Ok((entries.len(), problems.into_iter().flatten().collect()))
}

fn check_entry(store: &Store, stage: &str, key: &str) -> Result<Vec<Problem>> {
    let dir = store.entry_dir(stage, key);
    let problem = |what: String| Problem {
        stage: stage.into(),
        key: key.into(),
        what,
    };
    let Some(m) = store.manifest(stage, key).ok().flatten() else {
        return Ok(vec![problem(format!(
            "{}: manifest unreadable",
            dir.display()
        ))]);
    };
    let now = digest_path(&dir, None)?;
    let mut out = Vec::new();
    for f in &m.files {
        match now.files.iter().find(|n| n.path == f.path) {
            None => out.push(problem(format!("{}: missing", dir.join(&f.path).display()))),
            Some(n) if n.digest != f.digest || n.size != f.size => out.push(problem(format!(
                "{}: content changed (blake3 {} in the manifest, {} now)",
                dir.join(&f.path).display(),
                &f.digest[..16],
                &n.digest[..16]
            ))),
            _ => {}
        }
    }
    for n in &now.files {
        if n.path != crate::spec::MANIFEST_NAME && !m.files.iter().any(|f| f.path == n.path) {
            out.push(problem(format!(
                "{}: not in the manifest",
                dir.join(&n.path).display()
            )));
        }
    }
    Ok(out)
}

/// Move corrupted entries to `artifacts/.corrupt/` so they are no longer cache hits.
pub fn quarantine(store: &Store, problems: &[Problem]) -> Result<Vec<std::path::PathBuf>> {
    let mut moved = Vec::new();
    let base = store.root.join(".corrupt");
    for p in problems {
        let src = store.entry_dir(&p.stage, &p.key);
        if !src.exists() {
            continue;
        }
        std::fs::create_dir_all(&base).at(&base)?;
        let dest = base.join(format!("{}-{}-{}", p.stage, p.key, std::process::id()));
        std::fs::rename(&src, &dest).at(&src)?;
        moved.push(dest);
    }
    Ok(moved)
}

pub fn print(out: &mut dyn Write, checked: usize, problems: &[Problem]) -> Result<()> {
    let w = |e: std::io::Error| Error::io("<stdout>", e);
    for p in problems {
        writeln!(out, "corrupt: {}", p.what).map_err(w)?;
    }
    writeln!(
        out,
        "verified {checked} entries: {}",
        if problems.is_empty() {
            "all intact".to_string()
        } else {
            format!("{} problems", problems.len())
        }
    )
    .map_err(w)
}

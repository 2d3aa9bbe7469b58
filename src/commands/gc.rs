//! `pipe gc`: delete store entries nothing refers to. An entry is kept when a run
//! record lists it (so `pipe exp show` stays reproducible and going back to an old
//! config stays instant), when it is a stage's `latest`, or when it is current for
//! the project's config. With `--only-current` only the last two count. Temporary
//! directories of dead processes are removed too.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use crate::commands::status;
use crate::error::{Error, IoContext, Result};
use crate::project::Project;
use crate::runs::RunRecord;
use crate::spec::StageKinds;

pub struct GcPlan {
    pub remove: Vec<PathBuf>,
    pub bytes: u64,
    pub kept: usize,
}

pub fn plan(project: &Project, kinds: &StageKinds, only_current: bool) -> Result<GcPlan> {
    let store = &project.store;
    let mut keep: BTreeSet<(String, String)> = BTreeSet::new();
    if !only_current {
        for r in RunRecord::load_all(&store.runs_dir())? {
            for s in r.stages {
                if let Some(k) = s.key {
                    keep.insert((s.name, k));
                }
            }
        }
    }
    for s in &project.pipeline.stages {
        if let Some(k) = store.latest(&s.name) {
            keep.insert((s.name.clone(), k));
        }
    }
    for st in status::status(project, kinds, None)? {
        if let Some(k) = st.key {
            keep.insert((st.name, k));
        }
    }
    let mut remove = Vec::new();
    let mut kept = 0;
    for (s, k) in store.entries()? {
        if keep.contains(&(s.clone(), k.clone())) {
            kept += 1;
        } else {
            remove.push(store.entry_dir(&s, &k));
            let log = store.log_path(&s, &k);
            if log.exists() {
                remove.push(log);
            }
        }
    }
    // Temporary directories whose owner process is gone (a crash or kill -9).
    if let Ok(rd) = std::fs::read_dir(store.root.join(".tmp")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name
                .trim_end_matches(".job")
                .rsplit('-')
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            // SAFETY: kill(pid, 0) only checks whether the process exists.
            let alive = pid.is_some_and(|p| unsafe { libc::kill(p, 0) } == 0);
            if !alive {
                remove.push(e.path());
            }
        }
    }
    let bytes = remove.iter().map(|p| du(p)).sum();
    Ok(GcPlan {
        remove,
        bytes,
        kept,
    })
}

fn du(p: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

pub fn apply(plan: &GcPlan) -> Result<()> {
    for p in &plan.remove {
        if p.is_dir() {
            std::fs::remove_dir_all(p).at(p)?;
        } else {
            std::fs::remove_file(p).at(p)?;
        }
    }
    Ok(())
}

pub fn print(out: &mut dyn Write, plan: &GcPlan, dry_run: bool) -> Result<()> {
    let w = |e: std::io::Error| Error::io("<stdout>", e);
    for p in &plan.remove {
        writeln!(
            out,
            "{} {}",
            if dry_run { "would remove" } else { "removed" },
            p.display()
        )
        .map_err(w)?;
    }
    writeln!(
        out,
        "{} {} paths ({:.1} MB), kept {} entries",
        if dry_run { "would remove" } else { "removed" },
        plan.remove.len(),
        plan.bytes as f64 / 1e6,
        plan.kept
    )
    .map_err(w)
}

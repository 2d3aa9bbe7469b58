//! `pipe run`: compute the target and everything upstream, reusing cached stages,
//! and write a run record.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::json;

use crate::error::{Error, Result};
use crate::exec::{self, Display, Plan, StageResult, Status};
use crate::project::Project;
use crate::runs::{RunRecord, StageRecord, SweepTag};
use crate::spec::StageKinds;
use crate::util;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub target: Option<String>,
    pub force: Vec<String>,
    pub jobs: usize,
    pub quiet: bool,
    pub sweep: Option<SweepTag>,
}

pub struct RunReport {
    pub run_id: String,
    pub target: Option<String>,
    pub ok: bool,
    pub interrupted: bool,
    pub seconds: f64,
    pub stages: Vec<StageResult>,
}

impl RunReport {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "run_id": self.run_id,
            "target": self.target,
            "ok": self.ok,
            "stages": self.stages.iter().map(|s| {
                let mut v = json!({
                    "name": s.name,
                    "key": s.key,
                    "status": s.status.as_str(),
                    "seconds": s.seconds,
                });
                if let (Some(e), Some(o)) = (&s.error, v.as_object_mut()) {
                    o.insert("error".into(), json!(e));
                }
                v
            }).collect::<Vec<_>>(),
        })
    }

    pub fn summary(&self) -> String {
        let count = |st: Status| self.stages.iter().filter(|s| s.status == st).count();
        format!(
            "run {}: {} ran, {} cached, {} failed, {} skipped in {:.2}s",
            self.run_id,
            count(Status::Ran),
            count(Status::Cached),
            count(Status::Failed),
            count(Status::Skipped),
            self.seconds
        )
    }
}

pub fn run(project: &Project, kinds: &StageKinds, opts: &RunOptions) -> Result<RunReport> {
    let p = &project.pipeline;
    let stages = p.closure(opts.target.as_deref())?;
    let mut force = BTreeSet::new();
    for f in &opts.force {
        let Some(i) = p.stage_index(f) else {
            return Err(Error::Usage(format!("--force: unknown stage `{f}`")));
        };
        if !stages.contains(&i) {
            return Err(Error::Usage(format!(
                "--force: stage `{f}` is not part of this run's target"
            )));
        }
        force.insert(i);
    }
    // Missing external inputs are an error before anything runs.
    for &i in &stages {
        let s = &p.stages[i];
        for (written, d) in &s.deps {
            if let crate::spec::Dep::External(rel) = d {
                if !p.root.join(rel).exists() {
                    return Err(Error::invalid(
                        &p.file,
                        format!("stage `{}`, key `deps`", s.name),
                        format!("input `{written}` does not exist"),
                    ));
                }
            }
        }
    }
    let run_id = util::new_run_id();
    let started = util::now_unix();
    let t0 = std::time::Instant::now();
    let plan = Plan {
        pipeline: p,
        config: &project.config,
        kinds,
        store: &project.store,
        stages,
        force,
        jobs: opts.jobs,
        run_id: run_id.clone(),
    };
    let mut display = Display::new(opts.quiet);
    let results = exec::execute(&plan, &mut display)?;
    let ok = results
        .iter()
        .all(|r| matches!(r.status, Status::Ran | Status::Cached));
    let report = RunReport {
        run_id: run_id.clone(),
        target: opts.target.clone(),
        ok,
        interrupted: exec::interrupted(),
        seconds: t0.elapsed().as_secs_f64(),
        stages: results,
    };
    let record = RunRecord {
        run_id,
        target: opts.target.clone(),
        ok,
        started_unix: started,
        seconds: report.seconds,
        config_file: project
            .config
            .file
            .as_ref()
            .map(|f| f.display().to_string()),
        overrides: project.config.overrides.clone(),
        params: project.config.root.clone(),
        sweep: opts.sweep.clone(),
        stages: report.stages.iter().map(StageRecord::from_result).collect(),
    };
    record.save(&project.store.runs_dir())?;
    Ok(report)
}

/// Print a report: JSON on stdout with `--json`, otherwise a one-line summary.
pub fn print_report(
    out: &mut dyn Write,
    report: &RunReport,
    json_out: bool,
) -> std::io::Result<()> {
    if json_out {
        writeln!(out, "{}", report.to_json())
    } else {
        writeln!(out, "{}", report.summary())
    }
}

//! The scheduler: runs the stages of a plan in dependency order, up to `-j` at a
//! time, within the pipeline's resource capacities (e.g. one GPU), skipping the
//! downstream of a failed stage. Each stage is computed on its own thread, which
//! waits on the stage's child process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::display::Display;
use super::worker::{run_stage, Done, StageCtx};
use crate::cache::hash::StatCache;
use crate::cache::store::{Manifest, Store};
use crate::error::Result;
use crate::spec::{Config, Pipeline, StageKinds};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ran,
    Cached,
    Failed,
    /// Not run because an upstream stage failed.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ran => "ran",
            Status::Cached => "cached",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StageResult {
    pub name: String,
    pub key: Option<String>,
    pub status: Status,
    pub seconds: f64,
    pub error: Option<String>,
    pub manifest: Option<Manifest>,
}

pub struct Plan<'a> {
    pub pipeline: &'a Pipeline,
    pub config: &'a Config,
    pub kinds: &'a StageKinds,
    pub store: &'a Store,
    /// Stage indices in run order.
    pub stages: Vec<usize>,
    pub force: BTreeSet<usize>,
    pub jobs: usize,
    pub run_id: String,
}

enum State {
    Waiting,
    Running,
    Finished(Box<StageResult>),
}

/// Shared with the display: what is running, since when, and its progress file.
pub(crate) type Running = Mutex<BTreeMap<String, (Instant, Option<PathBuf>)>>;

pub fn execute(plan: &Plan<'_>, display: &mut Display) -> Result<Vec<StageResult>> {
    let p = plan.pipeline;
    let stat_cache = Mutex::new(StatCache::load(&plan.store.stat_cache_path()));
    let cx = StageCtx {
        pipeline: p,
        config: plan.config,
        kinds: plan.kinds,
        store: plan.store,
        stat_cache: &stat_cache,
        run_id: &plan.run_id,
    };
    let n = plan.stages.len();
    let pos: BTreeMap<usize, usize> = plan
        .stages
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k))
        .collect();
    let mut states: Vec<State> = (0..n).map(|_| State::Waiting).collect();
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    let mut running_count = 0usize;
    let running: Running = Mutex::new(BTreeMap::new());
    let jobs = plan.jobs.max(1);
    let (tx, rx) = mpsc::channel::<(usize, StageResult)>();

    std::thread::scope(|scope| {
        loop {
            // Start whatever is ready, in run order.
            for k in 0..n {
                if !matches!(states[k], State::Waiting) {
                    continue;
                }
                let idx = plan.stages[k];
                let stage = &p.stages[idx];
                let mut ready = true;
                let mut blocked_by: Option<String> = None;
                let mut upstream: BTreeMap<usize, Manifest> = BTreeMap::new();
                for u in stage.upstream() {
                    match pos.get(&u).map(|&uk| &states[uk]) {
                        Some(State::Finished(r)) => match (&r.status, &r.manifest) {
                            (Status::Ran | Status::Cached, Some(m)) => {
                                upstream.insert(u, m.clone());
                            }
                            _ => blocked_by = Some(r.name.clone()),
                        },
                        _ => ready = false,
                    }
                }
                if let Some(b) = blocked_by {
                    let r = StageResult {
                        name: stage.name.clone(),
                        key: None,
                        status: Status::Skipped,
                        seconds: 0.0,
                        error: Some(format!("upstream stage `{b}` did not succeed")),
                        manifest: None,
                    };
                    display.finished(&r);
                    states[k] = State::Finished(Box::new(r));
                    continue;
                }
                if !ready || running_count >= jobs || super::launch::interrupted() {
                    continue;
                }
                let fits = stage.resources.iter().all(|(r, need)| {
                    let cap = p.resources.get(r).copied().unwrap_or(1);
                    used.get(r).copied().unwrap_or(0) + need <= cap
                });
                if !fits {
                    continue;
                }
                for (r, need) in &stage.resources {
                    *used.entry(r.clone()).or_default() += need;
                }
                running_count += 1;
                states[k] = State::Running;
                running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(stage.name.clone(), (Instant::now(), None));
                let tx = tx.clone();
                let force = plan.force.contains(&idx);
                let cx = &cx;
                let running = &running;
                scope.spawn(move || {
                    let t0 = Instant::now();
                    let name = stage.name.clone();
                    let on_key = |_key: &str, progress: PathBuf| {
                        if let Some(e) = running
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_mut(&name)
                        {
                            e.1 = Some(progress);
                        }
                    };
                    let r = match run_stage(cx, idx, &upstream, force, &on_key) {
                        Ok(done) => {
                            let (status, m) = match done {
                                Done::Cached(m) => (Status::Cached, m),
                                Done::Ran(m) => (Status::Ran, m),
                            };
                            StageResult {
                                name: name.clone(),
                                key: Some(m.key.clone()),
                                status,
                                seconds: t0.elapsed().as_secs_f64(),
                                error: None,
                                manifest: Some(m),
                            }
                        }
                        Err((key, e)) => StageResult {
                            name: name.clone(),
                            key,
                            status: Status::Failed,
                            seconds: t0.elapsed().as_secs_f64(),
                            error: Some(e),
                            manifest: None,
                        },
                    };
                    let _ = tx.send((k, r));
                });
            }
            if running_count == 0 {
                // Nothing running and nothing more could start: done (or interrupted).
                break;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((k, r)) => {
                    running_count -= 1;
                    for (res, need) in &p.stages[plan.stages[k]].resources {
                        if let Some(u) = used.get_mut(res) {
                            *u -= need;
                        }
                    }
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&r.name);
                    display.finished(&r);
                    if r.status == Status::Ran || r.status == Status::Cached {
                        if let Some(key) = &r.key {
                            let _ = plan.store.set_latest(&r.name, key);
                        }
                    }
                    states[k] = State::Finished(Box::new(r));
                }
                Err(_) => display.tick(&running),
            }
        }
    });

    let mut out = Vec::with_capacity(n);
    for (k, st) in states.into_iter().enumerate() {
        out.push(match st {
            State::Finished(r) => *r,
            _ => StageResult {
                name: p.stages[plan.stages[k]].name.clone(),
                key: None,
                status: Status::Skipped,
                seconds: 0.0,
                error: Some("interrupted before it started".into()),
                manifest: None,
            },
        });
    }
    let mut sc = stat_cache.into_inner().unwrap_or_else(|e| e.into_inner());
    tracing::debug!(
        hits = sc.hits,
        misses = sc.misses,
        bytes = sc.bytes_hashed,
        "stat cache"
    );
    sc.save()?;
    Ok(out)
}

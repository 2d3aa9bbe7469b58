//! Computing one stage: hash its inputs, build its key, reuse a complete entry or
//! take the key's lock, run the stage into a private directory, check that its
//! inputs did not change meanwhile and its outputs exist, hash them, write the
//! manifest and publish atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use pipe_stage_api::JobSpec;
use tracing::{debug, info_span};

use super::launch::{self, Launch};
use crate::cache::hash::{self, digest_path, FileDigest, StatCache};
use crate::cache::key::{InputMaterial, KeyMaterial, KindMaterial, KEY_SCHEMA};
use crate::cache::store::{Manifest, OutputRecord, Store};
use crate::error::{Error, IoContext};
use crate::spec::{Config, Dep, KindRef, Pipeline, Stage, StageKinds};

/// Why a stage's inputs could not be resolved.
#[derive(Debug)]
pub enum InputError {
    /// An upstream output is not available (the upstream stage has not run).
    Upstream(String),
    /// An external input is missing or unreadable.
    External(String),
}

/// What a stage reads, as the runner resolved it.
pub struct Inputs {
    pub material: KeyMaterial,
    /// Dependency paths in declared order.
    pub paths: Vec<PathBuf>,
    /// Per dependency: each file's digest by path relative to the dependency.
    pub digests: Vec<BTreeMap<String, String>>,
}

/// The key material of a stage, given its upstream manifests (index → manifest).
pub fn compute_material(
    p: &Pipeline,
    s: &Stage,
    config: &Config,
    kinds: &StageKinds,
    store: &Store,
    upstream: &BTreeMap<usize, Manifest>,
    stat_cache: &Mutex<StatCache>,
) -> std::result::Result<Inputs, InputError> {
    let mut inputs = Vec::with_capacity(s.deps.len());
    let mut paths = Vec::with_capacity(s.deps.len());
    let mut digests = Vec::with_capacity(s.deps.len());
    for (written, dep) in &s.deps {
        match dep {
            Dep::Stage { stage, out } => {
                let up = &p.stages[*stage];
                let Some(m) = upstream.get(stage) else {
                    return Err(InputError::Upstream(up.name.clone()));
                };
                let Some(rec) = m.outputs.get(out) else {
                    return Err(InputError::Upstream(up.name.clone()));
                };
                inputs.push(InputMaterial {
                    dep: written.clone(),
                    digest: rec.digest.clone(),
                });
                paths.push(store.entry_dir(&up.name, &m.key).join(out));
                // The manifest lists the entry's files relative to the entry.
                let prefix = format!("{out}/");
                digests.push(
                    m.files
                        .iter()
                        .filter_map(|f| {
                            let rel = if f.path == *out {
                                ""
                            } else {
                                f.path.strip_prefix(&prefix)?
                            };
                            Some((rel.to_string(), f.digest.clone()))
                        })
                        .collect(),
                );
            }
            Dep::External(rel) => {
                let abs = p.root.join(rel);
                let t = digest_path(&abs, Some(stat_cache)).map_err(|e| {
                    InputError::External(format!(
                        "dependency `{written}` of stage `{}`: {e}",
                        s.name
                    ))
                })?;
                inputs.push(InputMaterial {
                    dep: written.clone(),
                    digest: t.digest,
                });
                paths.push(abs);
                digests.push(t.files.into_iter().map(|f| (f.path, f.digest)).collect());
            }
        }
    }
    let (kind, environment) = match &s.kind {
        KindRef::Cmd(c) => (KindMaterial::Cmd { command: c.clone() }, BTreeMap::new()),
        KindRef::Uses(name) => match kinds.get(name) {
            Some(k) => (
                KindMaterial::Uses {
                    name: name.clone(),
                    version: k.version(),
                },
                k.environment(&p.root),
            ),
            None => (
                KindMaterial::Uses {
                    name: name.clone(),
                    version: 0,
                },
                BTreeMap::new(),
            ),
        },
    };
    Ok(Inputs {
        material: KeyMaterial {
            schema: KEY_SCHEMA,
            stage: s.name.clone(),
            kind,
            outs: s.outs.clone(),
            params: p.params_of(s, config),
            inputs,
            environment,
        },
        paths,
        digests,
    })
}

pub(crate) enum Done {
    Cached(Manifest),
    Ran(Manifest),
}

pub(crate) struct StageCtx<'a> {
    pub pipeline: &'a Pipeline,
    pub config: &'a Config,
    pub kinds: &'a StageKinds,
    pub store: &'a Store,
    pub stat_cache: &'a Mutex<StatCache>,
    pub run_id: &'a str,
}

/// Compute (or reuse) one stage. `Err` carries a user-facing reason.
pub(crate) fn run_stage(
    cx: &StageCtx<'_>,
    idx: usize,
    upstream: &BTreeMap<usize, Manifest>,
    force: bool,
    on_key: &dyn Fn(&str, PathBuf),
) -> std::result::Result<Done, (Option<String>, String)> {
    let s = &cx.pipeline.stages[idx];
    let inputs = compute_material(
        cx.pipeline,
        s,
        cx.config,
        cx.kinds,
        cx.store,
        upstream,
        cx.stat_cache,
    )
    .map_err(|e| match e {
        InputError::Upstream(u) => (None, format!("upstream stage `{u}` has no outputs")),
        InputError::External(m) => (None, m),
    })?;
    let material = &inputs.material;
    let key = material.key();
    let _span = info_span!("stage", name = %s.name, key = %&key[..8]).entered();
    debug!(material = %String::from_utf8_lossy(&material.canonical()), "stage key material");
    let err = |m: String| (Some(key.clone()), m);
    let fail = |e: Error| (Some(key.clone()), e.to_string());

    if !force {
        if let Some(m) = cx.store.manifest(&s.name, &key).map_err(fail)? {
            return Ok(Done::Cached(m));
        }
    }
    let _lock = cx.store.lock(&s.name, &key).map_err(fail)?;
    if !force {
        // Another process may have computed it while we waited for the lock.
        if let Some(m) = cx.store.manifest(&s.name, &key).map_err(fail)? {
            return Ok(Done::Cached(m));
        }
    }
    if launch::interrupted() {
        return Err(err("interrupted".into()));
    }

    let tmp = cx.store.temp_dir(&s.name, &key).map_err(fail)?;
    let job_dir = tmp.with_extension("job");
    let result = attempt(cx, s, &key, &inputs, &tmp, &job_dir, force, on_key);
    let _ = std::fs::remove_dir_all(&job_dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(Done::Ran).map_err(err)
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    cx: &StageCtx<'_>,
    s: &Stage,
    key: &str,
    inputs: &Inputs,
    tmp: &Path,
    job_dir: &Path,
    force: bool,
    on_key: &dyn Fn(&str, PathBuf),
) -> std::result::Result<Manifest, String> {
    let io = |e: Error| e.to_string();
    let material = &inputs.material;
    std::fs::create_dir_all(job_dir).at(job_dir).map_err(io)?;
    let scratch = cx.store.scratch_dir(&s.name, key);
    std::fs::create_dir_all(&scratch).at(&scratch).map_err(io)?;
    let log = cx.store.log_path(&s.name, key);
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d).at(d).map_err(io)?;
    }
    let spec = JobSpec {
        stage: s.name.clone(),
        kind: match &s.kind {
            KindRef::Uses(k) => k.clone(),
            KindRef::Cmd(_) => "cmd".into(),
        },
        key: key.to_string(),
        project_dir: cx.pipeline.root.clone(),
        out_dir: tmp.to_path_buf(),
        outs: s.outs.clone(),
        deps: inputs.paths.clone(),
        dep_digests: inputs.digests.clone(),
        params: material.params.clone(),
        scratch_dir: scratch.clone(),
        progress_file: job_dir.join("progress"),
    };
    let params_file = job_dir.join("params.json");
    let params_json = serde_json::to_vec_pretty(&spec.params).map_err(|e| e.to_string())?;
    std::fs::write(&params_file, params_json)
        .at(&params_file)
        .map_err(io)?;
    on_key(key, spec.progress_file.clone());

    let started = std::time::SystemTime::now();
    let t0 = Instant::now();
    let command;
    let job_file = job_dir.join("job.json");
    let launch_kind = match &s.kind {
        KindRef::Cmd(c) => {
            command = crate::spec::substitute_params(c, cx.config);
            Launch::Shell(&command)
        }
        KindRef::Uses(_) => {
            let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
            std::fs::write(&job_file, bytes).at(&job_file).map_err(io)?;
            Launch::Builtin {
                job_file: &job_file,
                exe: cx.kinds.executable(&spec.kind),
            }
        }
    };
    let child = launch::spawn(launch_kind, &spec, &params_file, &log)
        .map_err(|e| format!("failed to start: {e}"))?;
    let status = launch::wait(child).map_err(|e| format!("failed waiting for the stage: {e}"))?;
    let seconds = t0.elapsed().as_secs_f64();
    if launch::interrupted() {
        return Err("interrupted".into());
    }
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        };
        return Err(format!(
            "{how}; log: {}{}",
            log.display(),
            log_tail(&log, 15)
        ));
    }
    for o in &s.outs {
        if std::fs::symlink_metadata(tmp.join(o)).is_err() {
            return Err(format!(
                "declared output `{o}` was not written (a stage writes its outputs under $PIPE_OUT); log: {}",
                log.display()
            ));
        }
    }
    // Inputs are hashed before the stage runs; if one changed meanwhile, this result
    // belongs to neither version and must not be recorded.
    for (inp, (written, dep)) in material.inputs.iter().zip(&s.deps) {
        if let Dep::External(rel) = dep {
            let now = digest_path(&cx.pipeline.root.join(rel), Some(cx.stat_cache)).map_err(io)?;
            if now.digest != inp.digest {
                return Err(format!(
                    "input `{written}` changed while the stage ran; the result was not recorded (run again to use the new content)"
                ));
            }
        }
    }
    let tree = digest_path(tmp, None).map_err(io)?;
    let mut outputs = BTreeMap::new();
    for o in &s.outs {
        outputs.insert(o.clone(), output_record(&tree.files, o));
    }
    let metrics = read_metrics(tmp);
    let manifest = Manifest {
        stage: s.name.clone(),
        key: key.to_string(),
        material: material.clone(),
        outputs,
        files: tree.files,
        run_id: cx.run_id.to_string(),
        host: hostname(),
        started_unix: started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        seconds,
        metrics,
    };
    cx.store.publish(tmp, &manifest, force).map_err(io)?;
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(parent) = scratch.parent() {
        let _ = std::fs::remove_dir(parent); // only succeeds when empty
    }
    Ok(manifest)
}

/// Digest of one declared output from the already-hashed files of the entry.
fn output_record(files: &[FileDigest], out: &str) -> OutputRecord {
    if let Some(f) = files.iter().find(|f| f.path == out) {
        return OutputRecord {
            digest: f.digest.clone(),
            is_dir: false,
            bytes: f.size,
        };
    }
    let prefix = format!("{out}/");
    let inner: Vec<FileDigest> = files
        .iter()
        .filter_map(|f| {
            f.path.strip_prefix(&prefix).map(|rest| FileDigest {
                path: rest.to_string(),
                size: f.size,
                digest: f.digest.clone(),
            })
        })
        .collect();
    OutputRecord {
        digest: hash::combine(&inner),
        is_dir: true,
        bytes: inner.iter().map(|f| f.size).sum(),
    }
}

/// A stage's `metrics.json` (at the top of its outputs), if it wrote a valid one.
fn read_metrics(dir: &Path) -> Option<serde_json::Value> {
    let b = std::fs::read(dir.join("metrics.json")).ok()?;
    serde_json::from_slice(&b).ok()
}

fn log_tail(log: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return String::new();
    }
    let start = all.len().saturating_sub(lines);
    let mut s = String::from("\n  last lines of the log:");
    for l in &all[start..] {
        s.push_str("\n  | ");
        s.push_str(l);
    }
    s
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

//! `pipe status`: for each stage, whether its outputs for the current config and
//! inputs exist (`up-to-date`), exist only for other inputs (`stale`, with the
//! reasons), or never existed (`never-run`). Nothing runs; inputs are hashed through
//! the stat cache, so an unchanged dataset costs stat calls.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use crate::cache::hash::StatCache;
use crate::cache::store::Manifest;
use crate::error::Result;
use crate::exec::{compute_material, InputError};
use crate::project::Project;
use crate::spec::StageKinds;
use crate::util::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    UpToDate,
    Stale,
    NeverRun,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::UpToDate => "up-to-date",
            State::Stale => "stale",
            State::NeverRun => "never-run",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageState {
    pub name: String,
    pub state: State,
    pub reasons: Vec<String>,
    /// The key for the current config and inputs, when it can be known without running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip)]
    pub manifest: Option<Manifest>,
}

pub fn status(
    project: &Project,
    kinds: &StageKinds,
    target: Option<&str>,
) -> Result<Vec<StageState>> {
    let p = &project.pipeline;
    let store = &project.store;
    let stat_cache = Mutex::new(StatCache::load(&store.stat_cache_path()));
    let mut done: BTreeMap<usize, Manifest> = BTreeMap::new();
    let mut states: BTreeMap<usize, State> = BTreeMap::new();
    let mut out = Vec::new();
    for i in p.closure(target)? {
        let s = &p.stages[i];
        let latest = store.latest(&s.name);
        let (state, reasons, key, manifest) =
            match compute_material(p, s, &project.config, kinds, store, &done, &stat_cache) {
                Ok(crate::exec::Inputs { material, .. }) => {
                    let key = material.key();
                    match store.manifest(&s.name, &key)? {
                        Some(m) => (State::UpToDate, vec![], Some(key), Some(m)),
                        None => match latest.as_deref().map(|k| store.manifest(&s.name, k)) {
                            Some(Ok(Some(old))) => {
                                let mut r = material.diff(&old.material);
                                if r.is_empty() {
                                    r.push("previous result is missing".into());
                                }
                                (State::Stale, r, Some(key), None)
                            }
                            Some(_) => (
                                State::Stale,
                                vec!["previous result is missing".into()],
                                Some(key),
                                None,
                            ),
                            None => (State::NeverRun, vec![], Some(key), None),
                        },
                    }
                }
                Err(InputError::Upstream(u)) => {
                    let up = p.stage_index(&u).and_then(|ui| states.get(&ui).copied());
                    let why = match up {
                        Some(State::NeverRun) => format!("upstream `{u}` never ran"),
                        _ => format!("upstream `{u}` is stale"),
                    };
                    let st = if latest.is_some() {
                        State::Stale
                    } else {
                        State::NeverRun
                    };
                    (st, vec![why], None, None)
                }
                Err(InputError::External(m)) => {
                    let st = if latest.is_some() {
                        State::Stale
                    } else {
                        State::NeverRun
                    };
                    (st, vec![m], None, None)
                }
            };
        if let Some(m) = &manifest {
            done.insert(i, m.clone());
        }
        states.insert(i, state);
        out.push(StageState {
            name: s.name.clone(),
            state,
            reasons,
            key,
            manifest,
        });
    }
    let _ = stat_cache.into_inner().map(|mut c| c.save());
    Ok(out)
}

pub fn print(out: &mut dyn Write, states: &[StageState], json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::json!({ "stages": states }));
    }
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.state.as_str().to_string(),
                s.reasons.join("; "),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(&["stage".into(), "state".into(), "why".into()], &rows)
    )
}

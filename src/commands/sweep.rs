//! `pipe sweep FILE`: run every variant of a YAML sweep (a grid and/or a list of
//! overrides over a base config). Variants share every upstream stage whose key is
//! the same: the cache does that, nothing special is needed here.
//!
//! ```yaml
//! base: configs/demo.yaml      # optional; the pipeline's config by default
//! target: train                # optional; every stage by default
//! grid:                        # cartesian product, in the order written
//!   train.lr: [1.0e-3, 3.0e-4]
//!   model.layers: [2, 4]
//! variants:                    # and/or an explicit list
//!   - {train.lr: 1.0e-2, model.layers: 1}
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::commands::run::{self, RunOptions, RunReport};
use crate::error::{Error, IoContext, Result};
use crate::project::{ConfigChoice, Project};
use crate::runs::SweepTag;
use crate::spec::{Override, StageKinds};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    base: Option<String>,
    target: Option<String>,
    grid: Option<serde_yaml::Mapping>,
    variants: Option<Vec<serde_yaml::Mapping>>,
}

#[derive(Debug, Clone)]
pub struct Sweep {
    pub file: PathBuf,
    pub base: Option<PathBuf>,
    pub target: Option<String>,
    pub variants: Vec<Vec<Override>>,
}

fn key_of(file: &Path, k: &serde_yaml::Value, place: &str) -> Result<String> {
    k.as_str().map(str::to_string).ok_or_else(|| {
        Error::invalid(
            file,
            place,
            format!("keys must be dotted strings, found {k:?}"),
        )
    })
}

impl Sweep {
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).at(file)?;
        let raw: RawSweep = serde_yaml::from_str(&text).map_err(|e| Error::yaml(file, &e))?;
        let conv = |v: &serde_yaml::Value, place: &str| {
            crate::spec::yaml_to_json(v).map_err(|e| Error::invalid(file, place, e))
        };
        let mut variants: Vec<Vec<Override>> = Vec::new();
        if let Some(grid) = &raw.grid {
            let mut points: Vec<Vec<Override>> = vec![vec![]];
            for (k, v) in grid {
                let key = key_of(file, k, "grid")?;
                let place = format!("grid, key `{key}`");
                let Some(values) = v.as_sequence().filter(|s| !s.is_empty()) else {
                    return Err(Error::invalid(
                        file,
                        place,
                        "expected a non-empty list of values",
                    ));
                };
                let mut next = Vec::new();
                for p in &points {
                    for val in values {
                        let mut q = p.clone();
                        q.push(Override {
                            key: key.clone(),
                            value: conv(val, &place)?,
                        });
                        next.push(q);
                    }
                }
                points = next;
            }
            variants.extend(points);
        }
        for (i, m) in raw.variants.iter().flatten().enumerate() {
            let mut v = Vec::new();
            for (k, val) in m {
                let key = key_of(file, k, &format!("variants[{i}]"))?;
                v.push(Override {
                    key: key.clone(),
                    value: conv(val, &format!("variants[{i}], key `{key}`"))?,
                });
            }
            variants.push(v);
        }
        if variants.is_empty() || variants.iter().any(Vec::is_empty) {
            return Err(Error::invalid(
                file,
                "document",
                "a sweep needs a non-empty `grid:` and/or `variants:`, and no variant may be empty",
            ));
        }
        Ok(Sweep {
            file: file.to_path_buf(),
            base: raw.base.map(PathBuf::from),
            target: raw.target,
            variants,
        })
    }
}

/// Every variant opened and validated (config keys, stage parameters, target).
pub fn check(dir: &Path, kinds: &StageKinds, sw: &Sweep) -> Result<Vec<Project>> {
    let mut projects = Vec::new();
    for (i, v) in sw.variants.iter().enumerate() {
        let choice = ConfigChoice {
            file: sw.base.clone(),
            overrides: v.clone(),
        };
        let p = Project::open(dir, &choice, kinds).map_err(|e| match e {
            Error::Usage(m) => Error::invalid(&sw.file, format!("variant {i}"), m),
            other => other,
        })?;
        if let Some(t) = &sw.target {
            p.pipeline
                .closure(Some(t))
                .map_err(|e| Error::invalid(&sw.file, "target", e.to_string()))?;
        }
        projects.push(p);
    }
    Ok(projects)
}

/// Validate every variant first (so a typo in the last one does not waste the
/// first ones' compute), then run them in order.
pub fn sweep(
    dir: &Path,
    kinds: &StageKinds,
    sw: &Sweep,
    jobs: usize,
    quiet: bool,
) -> Result<(String, Vec<RunReport>)> {
    let projects = check(dir, kinds, sw)?;
    let id = crate::util::new_run_id();
    let mut reports = Vec::new();
    for (i, p) in projects.iter().enumerate() {
        if crate::exec::interrupted() {
            break;
        }
        if !quiet {
            let desc: Vec<String> = sw.variants[i]
                .iter()
                .map(|o| format!("{}={}", o.key, o.value))
                .collect();
            eprintln!("variant {}/{}: {}", i + 1, projects.len(), desc.join(" "));
        }
        let opts = RunOptions {
            target: sw.target.clone(),
            force: vec![],
            jobs,
            quiet,
            sweep: Some(SweepTag {
                id: id.clone(),
                file: sw.file.display().to_string(),
                variant: i,
            }),
        };
        reports.push(run::run(p, kinds, &opts)?);
    }
    Ok((id, reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_a_cartesian_product_plus_variants() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let f = d.path().join("s.yaml");
        std::fs::write(
            &f,
            "grid:\n  a.x: [1, 2]\n  b.y: [p, q]\nvariants:\n  - {a.x: 9}\n",
        )
        .at(&f)?;
        let s = Sweep::load(&f)?;
        assert_eq!(s.variants.len(), 5);
        assert_eq!(s.variants[1][1].value, serde_json::json!("q"));
        assert_eq!(s.variants[4][0].value, serde_json::json!(9));
        std::fs::write(&f, "grid:\n  a.x: []\n").at(&f)?;
        assert!(Sweep::load(&f).is_err());
        std::fs::write(&f, "gird:\n  a.x: [1]\n").at(&f)?;
        assert!(Sweep::load(&f)
            .map_err(|e| e.to_string())
            .err()
            .is_some_and(|e| e.contains("unknown field `gird`")));
        Ok(())
    }
}

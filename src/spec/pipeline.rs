//! The validated pipeline: stages with resolved dependencies, a topological order,
//! and every check that must pass before anything runs (unknown keys, duplicate
//! names, cycles, missing producers, paths outside the project, bad parameter
//! references). Every error names the file, the stage and the key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::config::Config;
use super::raw::{RawPipeline, RawStage};
use crate::error::{Error, IoContext, Result};

pub use pipe_stage_api::Registry as StageKinds;

/// How a stage does its work.
#[derive(Debug, Clone, PartialEq)]
pub enum KindRef {
    /// A built-in kind registered by the binary.
    Uses(String),
    /// A shell command (`sh -c`), with `${section.key}` placeholders.
    Cmd(String),
}

/// One dependency of a stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Dep {
    /// An output of an upstream stage: `STAGE/OUT`.
    Stage { stage: usize, out: String },
    /// A file or folder of the project, relative to the project directory.
    External(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub kind: KindRef,
    /// Deps as written (for messages and keys) and as resolved.
    pub deps: Vec<(String, Dep)>,
    pub params: Vec<String>,
    pub outs: Vec<String>,
    pub resources: BTreeMap<String, u32>,
    pub desc: Option<String>,
}

impl Stage {
    pub fn upstream(&self) -> impl Iterator<Item = usize> + '_ {
        self.deps.iter().filter_map(|(_, d)| match d {
            Dep::Stage { stage, .. } => Some(*stage),
            Dep::External(_) => None,
        })
    }

    pub fn kind_label(&self) -> String {
        match &self.kind {
            KindRef::Uses(k) => format!("uses {k}"),
            KindRef::Cmd(_) => "cmd".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The project directory (where `pipeline.yaml` is).
    pub root: PathBuf,
    pub file: PathBuf,
    /// The default config file named by `config:`, relative to the project.
    pub default_config: Option<PathBuf>,
    pub resources: BTreeMap<String, u32>,
    /// In declaration order.
    pub stages: Vec<Stage>,
    /// Indices of `stages` in a dependency-respecting order.
    pub order: Vec<usize>,
}

/// Reserved file name inside an artifact entry.
pub const MANIFEST_NAME: &str = ".manifest.json";

impl Pipeline {
    /// Read and validate `pipeline.yaml` in `root`. Parameter references are checked
    /// separately by [`Pipeline::check_config`], once the config is known.
    pub fn load(root: &Path, kinds: &StageKinds) -> Result<Self> {
        let file = root.join("pipeline.yaml");
        let text = std::fs::read_to_string(&file).at(&file)?;
        Self::parse(root, &file, &text, kinds)
    }

    pub fn parse(root: &Path, file: &Path, text: &str, kinds: &StageKinds) -> Result<Self> {
        let raw: RawPipeline = serde_yaml::from_str(text).map_err(|e| Error::yaml(file, &e))?;
        let inv = |place: String, reason: String| Error::invalid(file, place, reason);

        // Names first, so deps can refer to stages declared later.
        let mut names: Vec<String> = Vec::new();
        let mut raws: Vec<RawStage> = Vec::new();
        for (k, v) in &raw.stages {
            let Some(name) = k.as_str() else {
                return Err(inv(
                    "stages".into(),
                    format!("stage names must be strings, found {k:?}"),
                ));
            };
            check_name(name).map_err(|r| inv(format!("stage `{name}`"), r))?;
            if names.iter().any(|n| n == name) {
                return Err(inv(
                    format!("stage `{name}`"),
                    "duplicate stage name".into(),
                ));
            }
            let rs: RawStage = serde_yaml::from_value(v.clone())
                .map_err(|e| inv(format!("stage `{name}`"), e.to_string()))?;
            names.push(name.to_string());
            raws.push(rs);
        }
        if names.is_empty() {
            return Err(inv("stages".into(), "the pipeline has no stages".into()));
        }
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();

        let mut stages = Vec::with_capacity(raws.len());
        for (name, rs) in names.iter().zip(raws) {
            let at = |key: &str| format!("stage `{name}`, key `{key}`");
            let kind = match (rs.uses, rs.cmd) {
                (Some(u), None) => {
                    if kinds.get(&u).is_none() {
                        let known: Vec<_> = kinds.names().collect();
                        return Err(inv(
                            at("uses"),
                            format!(
                                "unknown stage kind `{u}` (known: {})",
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        ));
                    }
                    KindRef::Uses(u)
                }
                (None, Some(c)) => {
                    if c.trim().is_empty() {
                        return Err(inv(at("cmd"), "empty command".into()));
                    }
                    KindRef::Cmd(c)
                }
                (Some(_), Some(_)) => {
                    return Err(inv(
                        at("uses"),
                        "a stage has either `uses:` or `cmd:`, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(inv(
                        format!("stage `{name}`"),
                        "missing `uses:` or `cmd:`".into(),
                    ))
                }
            };
            if rs.outs.is_empty() {
                return Err(inv(
                    at("outs"),
                    "a stage must declare at least one output".into(),
                ));
            }
            let mut seen = BTreeSet::new();
            for o in &rs.outs {
                check_relative(o).map_err(|r| inv(at("outs"), format!("output `{o}` {r}")))?;
                if o == MANIFEST_NAME {
                    return Err(inv(at("outs"), format!("`{MANIFEST_NAME}` is reserved")));
                }
                if !seen.insert(o.clone()) {
                    return Err(inv(at("outs"), format!("duplicate output `{o}`")));
                }
            }
            let mut deps = Vec::new();
            for d in &rs.deps {
                check_relative(d).map_err(|r| inv(at("deps"), format!("dependency `{d}` {r}")))?;
                let first = d.split('/').next().unwrap_or("");
                let dep = if let Some(&si) = index.get(first) {
                    let out = d[first.len()..].trim_start_matches('/');
                    if out.is_empty() {
                        return Err(inv(
                            at("deps"),
                            format!("dependency `{d}` must name an output: `{first}/OUT`"),
                        ));
                    }
                    Dep::Stage {
                        stage: si,
                        out: out.to_string(),
                    }
                } else {
                    Dep::External(PathBuf::from(d))
                };
                deps.push((d.clone(), dep));
            }
            let mut params = Vec::new();
            for p in &rs.params {
                if p.is_empty() || p.split('.').any(str::is_empty) {
                    return Err(inv(
                        at("params"),
                        format!("invalid parameter reference `{p}`"),
                    ));
                }
                params.push(p.clone());
            }
            stages.push(Stage {
                name: name.clone(),
                kind,
                deps,
                params,
                outs: rs.outs,
                resources: rs.resources,
                desc: rs.desc,
            });
        }

        // Producers: every STAGE/OUT must be a declared output of STAGE.
        for s in &stages {
            for (written, d) in &s.deps {
                if let Dep::Stage { stage, out } = d {
                    let up = &stages[*stage];
                    if !up.outs.iter().any(|o| o == out) {
                        return Err(inv(
                            format!("stage `{}`, key `deps`", s.name),
                            format!(
                                "no stage produces `{written}`: stage `{}` declares outputs {}",
                                up.name,
                                up.outs
                                    .iter()
                                    .map(|o| format!("`{o}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            for (r, n) in &s.resources {
                let cap = raw.resources.get(r).copied().unwrap_or(1);
                if *n > cap {
                    return Err(inv(
                        format!("stage `{}`, key `resources`", s.name),
                        format!("needs {n} `{r}` but the pipeline has {cap}"),
                    ));
                }
            }
        }

        let order = topo_order(&stages).map_err(|cycle| {
            inv(
                format!("stage `{}`, key `deps`", cycle[0]),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            )
        })?;

        let default_config = match raw.config {
            Some(c) => {
                check_relative(&c).map_err(|r| inv("config".into(), format!("`{c}` {r}")))?;
                Some(PathBuf::from(c))
            }
            None => None,
        };

        Ok(Pipeline {
            root: root.to_path_buf(),
            file: file.to_path_buf(),
            default_config,
            resources: raw.resources,
            stages,
            order,
        })
    }

    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The stages needed for `target` (itself and everything upstream), in run order.
    /// `None` means every stage.
    pub fn closure(&self, target: Option<&str>) -> Result<Vec<usize>> {
        let Some(t) = target else {
            return Ok(self.order.clone());
        };
        let Some(ti) = self.stage_index(t) else {
            return Err(Error::Usage(format!(
                "unknown stage `{t}` (stages: {})",
                self.stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let mut need = vec![false; self.stages.len()];
        let mut stack = vec![ti];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut need[i], true) {
                continue;
            }
            stack.extend(self.stages[i].upstream());
        }
        Ok(self.order.iter().copied().filter(|&i| need[i]).collect())
    }

    /// Check parameter references against a config: each reference exists, every
    /// config key is read by some stage, `${...}` placeholders are declared, and
    /// built-in kinds accept their parameters.
    pub fn check_config(&self, config: &Config, kinds: &StageKinds) -> Result<()> {
        let cfile = config.file.clone().unwrap_or_else(|| self.file.clone());
        for s in &self.stages {
            for p in &s.params {
                if config.get(p).is_none() {
                    return Err(Error::invalid(
                        &self.file,
                        format!("stage `{}`, key `params`", s.name),
                        format!("parameter `{p}` is not in {}", config.display_file()),
                    ));
                }
            }
            if let KindRef::Cmd(c) = &s.kind {
                for var in placeholders(c).map_err(|r| {
                    Error::invalid(&self.file, format!("stage `{}`, key `cmd`", s.name), r)
                })? {
                    let declared = s
                        .params
                        .iter()
                        .any(|p| var == *p || var.starts_with(&format!("{p}.")));
                    if !declared {
                        return Err(Error::invalid(
                            &self.file,
                            format!("stage `{}`, key `cmd`", s.name),
                            format!("`${{{var}}}` is not among the stage's params (add it to `params:`)"),
                        ));
                    }
                    if config.get(&var).is_none() {
                        return Err(Error::invalid(
                            &self.file,
                            format!("stage `{}`, key `cmd`", s.name),
                            format!("`${{{var}}}` is not in {}", config.display_file()),
                        ));
                    }
                }
            }
            if let KindRef::Uses(k) = &s.kind {
                if let Some(kind) = kinds.get(k) {
                    kind.validate_params(&self.params_of(s, config))
                        .map_err(|r| {
                            Error::invalid(&cfile, format!("stage `{}` ({k})", s.name), r)
                        })?;
                }
            }
        }
        for leaf in config.leaf_keys() {
            let read = self.stages.iter().any(|s| {
                s.params.iter().any(|p| {
                    leaf == *p
                        || leaf.starts_with(&format!("{p}."))
                        || p.starts_with(&format!("{leaf}."))
                })
            });
            if !read {
                return Err(Error::invalid(
                    &cfile,
                    format!("key `{leaf}`"),
                    "unknown config key: no stage reads it",
                ));
            }
        }
        Ok(())
    }

    /// The resolved parameters a stage reads, keyed by its references.
    pub fn params_of(&self, s: &Stage, config: &Config) -> BTreeMap<String, Value> {
        s.params
            .iter()
            .map(|p| (p.clone(), config.get(p).cloned().unwrap_or(Value::Null)))
            .collect()
    }
}

/// `${a.b}` references in a command. `$${` escapes a literal `${`.
pub(crate) fn placeholders(cmd: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = cmd;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            rest = &rest[i + 2..];
            continue;
        }
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated `${` in command".into());
        };
        let var = &after[..end];
        if var.is_empty()
            || var.split('.').any(|p| {
                p.is_empty()
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        {
            return Err(format!(
                "invalid placeholder `${{{var}}}`: expected `${{section.key}}`"
            ));
        }
        out.push(var.to_string());
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// Substitute `${a.b}` placeholders with rendered values (`$${` → `${`).
pub(crate) fn substitute(cmd: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut rest = cmd;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(end) => {
                let var = &after[..end];
                out.push_str(&lookup(var).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty stage name".into());
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("a stage name must not start with `.` or `-`".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("a stage name may contain only letters, digits, `_`, `-` and `.`".into());
    }
    Ok(())
}

/// A path written in `pipeline.yaml` must be relative and stay where it is put.
fn check_relative(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    let path = Path::new(p);
    for c in path.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => return Err("must not contain `.` components".into()),
            Component::ParentDir => return Err("must not leave its directory (`..`)".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("must be a relative path".into())
            }
        }
    }
    Ok(())
}

/// Kahn's algorithm in declaration order; on a cycle, returns the stage names on it.
fn topo_order(stages: &[Stage]) -> std::result::Result<Vec<usize>, Vec<String>> {
    let n = stages.len();
    let mut indeg = vec![0usize; n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in stages.iter().enumerate() {
        let ups: BTreeSet<usize> = s.upstream().collect();
        indeg[i] = ups.len();
        for u in ups {
            down[u].push(i);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &down[i] {
            indeg[d] -= 1;
            if indeg[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk upstream from any stage left over until a stage repeats: that is a cycle.
    let Some(start) = (0..n).find(|&i| indeg[i] > 0) else {
        return Err(vec!["<unknown>".into()]);
    };
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let Some(next) = stages[cur].upstream().find(|&u| indeg[u] > 0) else {
            return Err(vec![stages[cur].name.clone()]);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // `path` follows dependencies upstream; reversed, it is the direction data flows.
            let mut cyc: Vec<String> = path[pos..]
                .iter()
                .rev()
                .map(|&i| stages[i].name.clone())
                .collect();
            cyc.push(cyc[0].clone());
            return Err(cyc);
        }
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Pipeline> {
        Pipeline::parse(
            Path::new("/p"),
            Path::new("/p/pipeline.yaml"),
            yaml,
            &StageKinds::new(),
        )
    }

    #[test]
    fn invalid_pipelines_are_rejected_with_place() {
        let cases: &[(&str, &str)] = &[
            ("stages:\n  a: {cmd: x, outs: [o], depz: []}\n", "unknown field `depz`"),
            ("stages:\n  a: {cmd: x, outs: [o]}\n  a: {cmd: y, outs: [o]}\n", "duplicate"),
            ("stages:\n  a: {cmd: x, deps: [b/o], outs: [o]}\n  b: {cmd: y, deps: [a/o], outs: [o]}\n", "dependency cycle"),
            ("stages:\n  a: {cmd: x, deps: [b/p], outs: [o]}\n  b: {cmd: y, outs: [o]}\n", "no stage produces `b/p`"),
            ("stages:\n  a: {cmd: x, outs: [../o]}\n", "must not leave"),
            ("stages:\n  a: {cmd: x, outs: [/abs]}\n", "must be a relative path"),
            ("stages:\n  a: {uses: nope, outs: [o]}\n", "unknown stage kind `nope`"),
            ("stages:\n  a: {cmd: x}\n", "at least one output"),
            ("stages:\n  a: {outs: [o]}\n", "missing `uses:` or `cmd:`"),
            ("stages:\n  a: {cmd: x, outs: [o], resources: {gpu: 2}}\n", "needs 2 `gpu`"),
            ("stages: {}\n", "no stages"),
            ("stages:\n  a: {cmd: x, outs: [o]}\nextra: 1\n", "unknown field `extra`"),
            ("stages:\n  .a: {cmd: x, outs: [o]}\n", "must not start"),
        ];
        for (yaml, want) in cases {
            let err = parse(yaml).expect_err(yaml).to_string();
            assert!(err.contains(want), "{yaml}\n=> {err}\nwanted {want}");
            assert!(err.starts_with("/p/pipeline.yaml"), "{err}");
        }
    }

    #[test]
    fn cycle_message_names_the_loop() {
        let err = parse("stages:\n  a: {cmd: x, deps: [c/o], outs: [o]}\n  b: {cmd: y, deps: [a/o], outs: [o]}\n  c: {cmd: y, deps: [b/o], outs: [o]}\n")
            .expect_err("cycle")
            .to_string();
        assert!(
            err.contains("a -> b -> c -> a")
                || err.contains("b -> c -> a -> b")
                || err.contains("c -> a -> b -> c"),
            "{err}"
        );
    }

    #[test]
    fn closure_and_order() {
        let p = parse("stages:\n  c: {cmd: x, deps: [b/o], outs: [o]}\n  b: {cmd: y, deps: [a/o, data/in.txt], outs: [o]}\n  a: {cmd: z, outs: [o]}\n  lone: {cmd: z, outs: [o]}\n")
            .expect("valid");
        let names = |v: Vec<usize>| {
            v.into_iter()
                .map(|i| p.stages[i].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(p.closure(Some("c")).expect("c")), ["a", "b", "c"]);
        assert_eq!(names(p.closure(Some("a")).expect("a")), ["a"]);
        assert_eq!(p.closure(None).expect("all").len(), 4);
        assert!(p.closure(Some("zz")).is_err());
        assert_eq!(p.stages[1].deps[1].1, Dep::External("data/in.txt".into()));
    }

    #[test]
    fn placeholders_and_substitution() {
        assert_eq!(
            placeholders("echo ${a.b} $${x} ${c}").expect("ok"),
            ["a.b", "c"]
        );
        assert!(placeholders("echo ${a").is_err());
        assert!(placeholders("echo ${a b}").is_err());
        let s = substitute("echo ${a.b} $${x}", |k| (k == "a.b").then(|| "1".into()));
        assert_eq!(s, "echo 1 ${x}");
    }

    #[test]
    fn config_checks() {
        let p = parse("stages:\n  a: {cmd: 'echo ${train.lr}', params: [train.lr], outs: [o]}\n")
            .expect("valid");
        let kinds = StageKinds::new();
        let cfg = |v: Value| Config {
            file: Some("c.yaml".into()),
            root: v,
            overrides: vec![],
        };
        p.check_config(&cfg(serde_json::json!({"train": {"lr": 1}})), &kinds)
            .expect("ok");
        let e = p
            .check_config(
                &cfg(serde_json::json!({"train": {"lr": 1, "lrr": 2}})),
                &kinds,
            )
            .expect_err("unread");
        assert!(e.to_string().contains("train.lrr"), "{e}");
        let e = p
            .check_config(&cfg(serde_json::json!({"train": {}})), &kinds)
            .expect_err("missing");
        assert!(e.to_string().contains("`train.lr` is not in c.yaml"), "{e}");
        let p2 = parse("stages:\n  a: {cmd: 'echo ${train.lr}', outs: [o]}\n").expect("valid");
        let e = p2
            .check_config(&cfg(serde_json::json!({})), &kinds)
            .expect_err("undeclared");
        assert!(
            e.to_string().contains("not among the stage's params"),
            "{e}"
        );
    }
}

//! The contract between the runner and a built-in stage kind.
//!
//! The runner knows nothing about what a stage does; a stage knows nothing about
//! scheduling. They meet here: the runner writes a [`JobSpec`] (JSON) and starts
//! `pipe exec-stage --job FILE` as a child process; the binary looks the kind up in
//! its [`Registry`] and calls [`StageKind::run`] with a [`StageContext`].
//! `cmd:` stages receive the same information as environment variables
//! (see [`ENV_OUT`] and friends).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable: the stage's (temporary) output directory.
pub const ENV_OUT: &str = "PIPE_OUT";
/// Environment variable prefix: `PIPE_DEP_0`, `PIPE_DEP_1`, … are the dependency paths.
pub const ENV_DEP_PREFIX: &str = "PIPE_DEP_";
/// Environment variable: a JSON file holding the parameters the stage reads.
pub const ENV_PARAMS: &str = "PIPE_PARAMS";
/// Environment variable: a scratch directory that survives a crash (for resumable stages).
pub const ENV_SCRATCH: &str = "PIPE_SCRATCH";
/// Environment variable: a file the stage may append progress lines to (`DONE TOTAL [MESSAGE]`).
pub const ENV_PROGRESS: &str = "PIPE_PROGRESS";
/// Environment variable: the stage name.
pub const ENV_STAGE: &str = "PIPE_STAGE";
/// Environment variable: the stage key (hex).
pub const ENV_KEY: &str = "PIPE_KEY";

/// Everything a stage needs to run, written by the runner as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Stage name in `pipeline.yaml`.
    pub stage: String,
    /// Registered kind name (`uses:`).
    pub kind: String,
    /// Stage key, hex.
    pub key: String,
    /// The project directory (where `pipeline.yaml` is); the stage's working directory.
    pub project_dir: PathBuf,
    /// Where the stage must write its declared outputs.
    pub out_dir: PathBuf,
    /// Declared output names, relative to `out_dir`.
    pub outs: Vec<String>,
    /// Dependency paths in declared order (upstream outputs or external files/folders).
    pub deps: Vec<PathBuf>,
    /// For each dependency (declared order), the blake3 digest (hex) of each of its
    /// files by path relative to the dependency (`""` when it is a file): what the
    /// runner hashed for the stage key, so a stage that records digests of its
    /// inputs need not read and hash them again. May be empty (then hash yourself).
    #[serde(default)]
    pub dep_digests: Vec<BTreeMap<String, String>>,
    /// The resolved parameters the stage declared it reads, keyed by reference
    /// (`"train"` or `"train.lr"`).
    pub params: BTreeMap<String, serde_json::Value>,
    /// A directory that persists across crashes of this stage key (checkpoints).
    pub scratch_dir: PathBuf,
    /// File to append progress lines to.
    pub progress_file: PathBuf,
}

/// What a running stage sees.
pub struct StageContext {
    spec: JobSpec,
}

impl StageContext {
    pub fn new(spec: JobSpec) -> Self {
        Self { spec }
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Path of a declared output inside the stage's output directory.
    pub fn out(&self, name: &str) -> PathBuf {
        self.spec.out_dir.join(name)
    }

    /// The `i`-th dependency path, or an error naming the stage when it has fewer deps.
    pub fn dep(&self, i: usize) -> anyhow::Result<&Path> {
        self.spec.deps.get(i).map(PathBuf::as_path).ok_or_else(|| {
            anyhow::anyhow!(
                "stage `{}` needs at least {} dependencies, has {}",
                self.spec.stage,
                i + 1,
                self.spec.deps.len()
            )
        })
    }

    /// The runner's blake3 digest (hex) of the file `rel` (relative to the `i`-th
    /// dependency; `""` for a dependency that is a file), if it has one.
    pub fn dep_file_digest(&self, i: usize, rel: &str) -> Option<&str> {
        self.spec
            .dep_digests
            .get(i)
            .and_then(|m| m.get(rel))
            .map(String::as_str)
    }

    /// A parameter by the reference the stage declared (`"train"` or `"train.lr"`).
    pub fn param(&self, reference: &str) -> Option<&serde_json::Value> {
        self.spec.params.get(reference)
    }

    pub fn scratch(&self) -> &Path {
        &self.spec.scratch_dir
    }

    /// Report progress to the runner's display. Errors are ignored: progress is advisory.
    pub fn progress(&self, done: u64, total: u64, message: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.progress_file)
        {
            let message = message.replace('\n', " ");
            let _ = writeln!(f, "{done} {total} {message}");
        }
    }
}

/// A built-in stage kind, registered by the binary under a name used in `uses:`.
pub trait StageKind: Send + Sync {
    /// The name in `uses:` (e.g. `kit.extract`).
    fn name(&self) -> &'static str;
    /// Implementation version: bump it when the outputs for the same inputs change.
    /// It is part of the stage key.
    fn version(&self) -> u32;
    /// Environment facts that change the output (e.g. a library version or the device
    /// kind), for a project in `project_dir`. Part of the stage key.
    fn environment(&self, _project_dir: &Path) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// Check the parameters before anything runs. The error names the offending key.
    fn validate_params(&self, _params: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        Ok(())
    }
    /// Do the work: read deps and params, write the declared outputs under `ctx.out(..)`.
    fn run(&self, ctx: &StageContext) -> anyhow::Result<()>;
}

/// The set of kinds a binary knows, and for some of them another executable that
/// runs their jobs (`EXE exec-stage --job FILE`): one that starts faster because it
/// links less (the runner otherwise re-invokes its own executable).
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn StageKind>>,
    executables: BTreeMap<&'static str, std::path::PathBuf>,
    /// Kinds another executable provides (listed in messages, not runnable here).
    elsewhere: std::collections::BTreeSet<&'static str>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, kind: Box<dyn StageKind>) {
        self.kinds.insert(kind.name(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&dyn StageKind> {
        self.kinds.get(name).map(|b| b.as_ref())
    }

    /// Every kind name, this executable's and those provided elsewhere, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let all: std::collections::BTreeSet<&'static str> = self
            .kinds
            .keys()
            .copied()
            .chain(self.elsewhere.iter().copied())
            .collect();
        all.into_iter()
    }

    /// Note a kind that another executable provides (for messages listing kinds).
    pub fn know_elsewhere(&mut self, name: &'static str) {
        self.elsewhere.insert(name);
    }

    /// Run the jobs of kind `name` with `exe` (which must register the kind too).
    pub fn set_executable(&mut self, name: &str, exe: std::path::PathBuf) {
        if let Some((&k, _)) = self.kinds.get_key_value(name) {
            self.executables.insert(k, exe);
        }
    }

    /// The executable for jobs of kind `name`, if not the runner's own.
    pub fn executable(&self, name: &str) -> Option<&Path> {
        self.executables.get(name).map(|p| p.as_path())
    }
}

/// Keep freed memory in the process for reuse instead of handing it back to the
/// kernel. Allocations above glibc's threshold (up to 32 MB when it adapts, 128 KB
/// at first) are each served by their own `mmap` and unmapped on free, so a process
/// that allocates many large buffers pays page faults and zeroing for every one of
/// them again. Measured: `kit.extract` ~10 % of its time (~96,000 page faults for
/// 2,000 motions); loading the 90 MB text encoder in ONNX Runtime 0.61 → 0.48 s.
/// For processes whose memory is bounded by what they hold at once anyway.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Parse the config section `name` a stage declared it reads (`params: [name]`) into
/// `T`; an absent section gives `T::default()`. The error names the section and the
/// key in it: `train.steps: invalid type: string "abc", expected u64`, or with
/// `deny_unknown_fields`, `extract: unknown field `fsp`, expected one of …`.
pub fn section<T: serde::de::DeserializeOwned + Default>(
    params: &BTreeMap<String, serde_json::Value>,
    name: &str,
) -> Result<T, String> {
    match params.get(name) {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        // The error names the key inside the section too (`train.steps: invalid
        // type ...`), not just the section.
        Some(v) => serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            use serde_path_to_error::Segment;
            let mut at: Vec<String> = e
                .path()
                .iter()
                .map(|s| match s {
                    Segment::Seq { index } => format!("[{index}]"),
                    Segment::Map { key } => format!(".{key}"),
                    Segment::Enum { variant } => format!(".{variant}"),
                    Segment::Unknown => ".?".into(),
                })
                .collect();
            let reason = e.into_inner().to_string();
            // An unknown key is named by the message; the place is its parent.
            if reason.starts_with("unknown field") {
                at.pop();
            }
            format!("{name}{}: {reason}", at.concat())
        }),
    }
}

/// Parse one progress line (`DONE TOTAL [MESSAGE]`).
pub fn parse_progress_line(line: &str) -> Option<(u64, u64, String)> {
    let mut it = line.splitn(3, ' ');
    let done = it.next()?.trim().parse().ok()?;
    let total = it.next()?.trim().parse().ok()?;
    let msg = it.next().unwrap_or("").trim().to_string();
    Some((done, total, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct K;
    impl StageKind for K {
        fn name(&self) -> &'static str {
            "k"
        }
        fn version(&self) -> u32 {
            1
        }
        fn run(&self, _: &StageContext) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn executables_are_set_only_for_registered_kinds() {
        let mut r = Registry::new();
        r.register(Box::new(K));
        r.set_executable("k", PathBuf::from("/x/pipe-stage"));
        r.set_executable("other", PathBuf::from("/x/y"));
        assert_eq!(r.executable("k"), Some(Path::new("/x/pipe-stage")));
        assert_eq!(r.executable("other"), None);
        r.know_elsewhere("a.b");
        assert_eq!(r.names().collect::<Vec<_>>(), ["a.b", "k"]);
        assert!(r.get("a.b").is_none());
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(
            parse_progress_line("3 10 epoch 1"),
            Some((3, 10, "epoch 1".to_string()))
        );
        assert_eq!(parse_progress_line("3 10"), Some((3, 10, String::new())));
        assert_eq!(parse_progress_line("x 10"), None);
        assert_eq!(parse_progress_line(""), None);
    }

    #[test]
    fn section_errors_name_the_key() {
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct Inner {
            rate: f64,
        }
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct Train {
            steps: u64,
            opt: Inner,
            sizes: Vec<u32>,
        }
        let p = |v: serde_json::Value| BTreeMap::from([("train".to_string(), v)]);
        let err = |v| section::<Train>(&p(v), "train").err().unwrap_or_default();
        assert_eq!(
            err(serde_json::json!({"steps": "abc"})),
            "train.steps: invalid type: string \"abc\", expected u64"
        );
        assert_eq!(
            err(serde_json::json!({"opt": {"rate": true}})),
            "train.opt.rate: invalid type: boolean `true`, expected f64"
        );
        assert_eq!(
            err(serde_json::json!({"sizes": [1, -2]})),
            "train.sizes[1]: invalid value: integer `-2`, expected u32"
        );
        assert!(err(serde_json::json!({"stpes": 3})).starts_with("train: unknown field `stpes`"));
        assert!(err(serde_json::json!({"opt": {"rat": 1}}))
            .starts_with("train.opt: unknown field `rat`, expected `rate`"));
        assert!(err(serde_json::json!(5)).starts_with("train: invalid type: integer `5`"));
        let ok: Train = section(&p(serde_json::json!({"steps": 7})), "train").unwrap_or_default();
        assert_eq!(ok.steps, 7);
    }
}

//! The artifact store under `artifacts/`:
//!
//! ```text
//! artifacts/<stage>/<key>/         outputs + .manifest.json (complete entries only)
//! artifacts/<stage>/latest         key of the entry the last run used
//! artifacts/.tmp/                  entries being written (renamed into place when done)
//! artifacts/.scratch/<stage>/<key> resumable state of unfinished stages
//! artifacts/.locks/                one lock file per stage key
//! artifacts/.logs/<stage>-<key>.log  stage stdout/stderr
//! artifacts/.runs/<run>.json       run records
//! artifacts/.cache/stat.json       the stat cache
//! ```
//!
//! An entry is complete iff its directory exists: it is only ever created by renaming
//! a finished temporary directory that already holds its manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hash::FileDigest;
use super::key::KeyMaterial;
use crate::error::{Error, IoContext, Result};
use crate::spec::MANIFEST_NAME;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub digest: String,
    pub is_dir: bool,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: String,
    pub key: String,
    pub material: KeyMaterial,
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Every file of the entry (relative to it), for `pipe verify`.
    pub files: Vec<FileDigest>,
    pub run_id: String,
    pub host: String,
    pub started_unix: f64,
    pub seconds: f64,
    /// The stage's `metrics.json`, if it wrote one among its outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: PathBuf) -> Self {
        Store { root }
    }

    pub fn entry_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    pub fn stat_cache_path(&self) -> PathBuf {
        self.root.join(".cache").join("stat.json")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join(".runs")
    }

    pub fn log_path(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(".logs").join(format!("{stage}-{key}.log"))
    }

    pub fn scratch_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(".scratch").join(stage).join(key)
    }

    /// A fresh private directory for one attempt at computing an entry.
    pub fn temp_dir(&self, stage: &str, key: &str) -> Result<PathBuf> {
        let base = self.root.join(".tmp");
        std::fs::create_dir_all(&base).at(&base)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("{stage}-{key}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).at(&dir)?;
        Ok(dir)
    }

    /// Read the manifest of a complete entry; `None` when there is no such entry.
    pub fn manifest(&self, stage: &str, key: &str) -> Result<Option<Manifest>> {
        let p = self.entry_dir(stage, key).join(MANIFEST_NAME);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                Error::io(&p, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Move a finished temporary directory into place. With `replace`, an existing
    /// entry (a `--force` re-run) is moved aside first and then deleted.
    pub fn publish(&self, tmp: &Path, manifest: &Manifest, replace: bool) -> Result<PathBuf> {
        let mpath = tmp.join(MANIFEST_NAME);
        let bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::io(&mpath, std::io::Error::other(e)))?;
        write_synced(&mpath, &bytes)?;
        let dest = self.entry_dir(&manifest.stage, &manifest.key);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).at(&parent)?;
        if dest.exists() {
            if !replace {
                // Someone else published the same key meanwhile; theirs is as good.
                std::fs::remove_dir_all(tmp).at(tmp)?;
                return Ok(dest);
            }
            let aside = self.temp_dir(&manifest.stage, &format!("{}-old", manifest.key))?;
            std::fs::remove_dir(&aside).at(&aside)?;
            std::fs::rename(&dest, &aside).at(&dest)?;
            std::fs::rename(tmp, &dest).at(&dest)?;
            std::fs::remove_dir_all(&aside).at(&aside)?;
        } else {
            std::fs::rename(tmp, &dest).at(&dest)?;
        }
        if let Ok(d) = File::open(&parent) {
            let _ = d.sync_all();
        }
        Ok(dest)
    }

    pub fn latest(&self, stage: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(stage).join("latest"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn set_latest(&self, stage: &str, key: &str) -> Result<()> {
        let dir = self.root.join(stage);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let p = dir.join("latest");
        let tmp = dir.join(format!(".latest.{}", std::process::id()));
        std::fs::write(&tmp, key).at(&tmp)?;
        std::fs::rename(&tmp, &p).at(&p)
    }

    /// Take the exclusive lock of a stage key, waiting for another process that holds it.
    pub fn lock(&self, stage: &str, key: &str) -> Result<KeyLock> {
        let f = self.open_lock(stage, key)?;
        let path = self.lock_path(stage, key);
        f.lock().at(&path)?;
        Ok(KeyLock { _file: f })
    }

    /// Take the lock only if nobody holds it.
    pub fn try_lock(&self, stage: &str, key: &str) -> Result<Option<KeyLock>> {
        let f = self.open_lock(stage, key)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(self.lock_path(stage, key), e)),
        }
    }

    fn lock_path(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(".locks").join(format!("{stage}-{key}.lock"))
    }

    fn open_lock(&self, stage: &str, key: &str) -> Result<File> {
        let p = self.lock_path(stage, key);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .at(&p)
    }

    /// Every complete entry: (stage, key).
    pub fn entries(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        for st in rd {
            let st = st.at(&self.root)?;
            let name = st.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !st.path().is_dir() {
                continue;
            }
            for k in std::fs::read_dir(st.path()).at(st.path())? {
                let k = k.at(st.path())?;
                if k.path().join(MANIFEST_NAME).is_file() {
                    out.push((name.clone(), k.file_name().to_string_lossy().to_string()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Held while computing a stage key; released when dropped (or when the process dies).
pub struct KeyLock {
    _file: File,
}

pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::{KindMaterial, KEY_SCHEMA};

    #[test]
    fn publish_is_all_or_nothing() -> Result<()> {
        let d = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = Store::new(d.path().join("artifacts"));
        let tmp = store.temp_dir("a", "k1")?;
        std::fs::write(tmp.join("o"), b"x").at("o")?;
        assert!(store.manifest("a", "k1")?.is_none());
        assert!(store.entries()?.is_empty(), "a temp dir is not an entry");
        let m = Manifest {
            stage: "a".into(),
            key: "k1".into(),
            material: KeyMaterial {
                schema: KEY_SCHEMA,
                stage: "a".into(),
                kind: KindMaterial::Cmd {
                    command: "c".into(),
                },
                outs: vec!["o".into()],
                params: Default::default(),
                inputs: vec![],
                environment: Default::default(),
            },
            outputs: Default::default(),
            files: vec![],
            run_id: "r".into(),
            host: "h".into(),
            started_unix: 0.0,
            seconds: 0.0,
            metrics: None,
        };
        let dest = store.publish(&tmp, &m, false)?;
        assert!(dest.join("o").is_file());
        assert_eq!(
            store.manifest("a", "k1")?.map(|m| m.key),
            Some("k1".to_string())
        );
        assert_eq!(store.entries()?, vec![("a".to_string(), "k1".to_string())]);
        // A second lock on the same key cannot be taken while the first is held.
        let l = store.lock("a", "k1")?;
        assert!(store.try_lock("a", "k1")?.is_none());
        drop(l);
        assert!(store.try_lock("a", "k1")?.is_some());
        Ok(())
    }
}

//! A project: the directory holding `pipeline.yaml`, its validated pipeline, the
//! config (default or `--config`, with `--set` overrides) and the artifact store.

use std::path::{Path, PathBuf};

use crate::cache::store::Store;
use crate::error::{Error, Result};
use crate::spec::{Config, Override, Pipeline, StageKinds};

pub struct Project {
    pub root: PathBuf,
    pub pipeline: Pipeline,
    pub config: Config,
    pub store: Store,
}

/// How the config is chosen.
#[derive(Debug, Clone, Default)]
pub struct ConfigChoice {
    /// `--config FILE`, relative to the project directory.
    pub file: Option<PathBuf>,
    pub overrides: Vec<Override>,
}

impl Project {
    pub fn open(dir: &Path, choice: &ConfigChoice, kinds: &StageKinds) -> Result<Self> {
        let root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        if !root.join("pipeline.yaml").is_file() {
            return Err(Error::Usage(format!(
                "no pipeline.yaml in {} (run inside a project or pass -C DIR)",
                root.display()
            )));
        }
        let pipeline = Pipeline::load(&root, kinds)?;
        let config = Self::load_config(&pipeline, choice)?;
        pipeline.check_config(&config, kinds)?;
        let store = Store::new(root.join("artifacts"));
        Ok(Project {
            root,
            pipeline,
            config,
            store,
        })
    }

    fn load_config(pipeline: &Pipeline, choice: &ConfigChoice) -> Result<Config> {
        let rel = choice
            .file
            .clone()
            .or_else(|| pipeline.default_config.clone());
        let mut config = match rel {
            Some(rel) => {
                let abs = pipeline.root.join(&rel);
                if !abs.is_file() {
                    return Err(Error::Usage(format!(
                        "config file {} not found (relative to {})",
                        rel.display(),
                        pipeline.root.display()
                    )));
                }
                let mut c = Config::load(&abs)?;
                c.file = Some(rel);
                c
            }
            None => Config::empty(),
        };
        config.apply(&choice.overrides)?;
        Ok(config)
    }
}

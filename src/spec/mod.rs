//! The pipeline specification: `pipeline.yaml` as written (`raw`) and as validated
//! (`pipeline`), plus the parameter config it reads (`config`).

mod config;
mod pipeline;
mod raw;

pub use config::{yaml_to_json, Config, Override};
pub use pipeline::MANIFEST_NAME;
pub use pipeline::{Dep, KindRef, Pipeline, Stage, StageKinds};

/// Replace `${section.key}` in a command with the config's values.
pub fn substitute_params(cmd: &str, config: &Config) -> String {
    pipeline::substitute(cmd, |k| config.get(k).map(config::render_value))
}

//! `pipeline.yaml` exactly as written: serde structs that reject unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    /// The default parameter file, relative to the project.
    pub config: Option<String>,
    /// Capacities of named resources (e.g. `gpu: 1`). Undeclared resources have capacity 1.
    #[serde(default)]
    pub resources: BTreeMap<String, u32>,
    /// Stage name → stage. Kept as a YAML mapping so declaration order survives.
    pub stages: serde_yaml::Mapping,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub uses: Option<String>,
    pub cmd: Option<String>,
    #[serde(default)]
    pub deps: Vec<String>,
    #[serde(default)]
    pub params: Vec<String>,
    #[serde(default)]
    pub outs: Vec<String>,
    #[serde(default)]
    pub resources: BTreeMap<String, u32>,
    /// Free text shown by `pipe dag`.
    pub desc: Option<String>,
}

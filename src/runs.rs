//! Run records: one JSON file per `pipe run` under `artifacts/.runs/`, holding the
//! config, overrides, stage keys, statuses, timings and metrics, so experiments can
//! be compared later (`pipe exp show`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::exec::{StageResult, Status};
use crate::spec::Override;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepTag {
    pub id: String,
    pub file: String,
    pub variant: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub key: Option<String>,
    pub status: Status,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub target: Option<String>,
    pub ok: bool,
    pub started_unix: f64,
    pub seconds: f64,
    pub config_file: Option<String>,
    pub overrides: Vec<Override>,
    /// The full resolved config.
    pub params: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepTag>,
    pub stages: Vec<StageRecord>,
}

impl StageRecord {
    pub fn from_result(r: &StageResult) -> Self {
        StageRecord {
            name: r.name.clone(),
            key: r.key.clone(),
            status: r.status,
            seconds: r.seconds,
            error: r.error.clone(),
            metrics: r.manifest.as_ref().and_then(|m| m.metrics.clone()),
        }
    }
}

impl RunRecord {
    pub fn save(&self, runs_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(runs_dir).at(runs_dir)?;
        let p = runs_dir.join(format!("{}.json", self.run_id));
        let tmp = runs_dir.join(format!(".{}.tmp", self.run_id));
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .at(&p)?;
        std::fs::write(&tmp, bytes).at(&tmp)?;
        std::fs::rename(&tmp, &p).at(&p)
    }

    /// All readable records, oldest first. Unreadable files are skipped with a warning.
    pub fn load_all(runs_dir: &Path) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(runs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(crate::error::Error::io(runs_dir, e)),
        };
        for e in rd {
            let e = e.at(runs_dir)?;
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
            {
                Some(r) => out.push(r),
                None => tracing::warn!(path = %p.display(), "skipping unreadable run record"),
            }
        }
        out.sort_by(|a, b| {
            a.started_unix
                .total_cmp(&b.started_unix)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }
}

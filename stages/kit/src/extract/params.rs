//! Parameters of `kit.extract` (config section `extract`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractParams {
    /// Target frame rate (Hz). KIT-ML is recorded at 100 Hz; other rates are
    /// resampled by linear interpolation at exact times k / fps (any ratio).
    pub fps: f64,
    /// Motions shorter than this (after resampling) are left out (listed in rejects).
    pub min_seconds: f64,
    /// Motions longer than this are left out (listed in rejects).
    pub max_seconds: f64,
    /// Optional per-frame channels to keep besides root position/rotation and joint
    /// positions: `joint_velocity`, `joint_acceleration`.
    pub channels: Vec<String>,
    /// Deterministic hash split, used when no split files are given.
    pub split: SplitParams,
    /// The stage fails when more than this fraction of motion files is invalid.
    pub max_reject_fraction: f64,
    /// Files larger than this are rejected without being read.
    pub max_file_mb: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SplitParams {
    pub val: f64,
    pub test: f64,
    pub seed: u64,
}

impl Default for SplitParams {
    fn default() -> Self {
        SplitParams {
            val: 0.05,
            test: 0.1,
            seed: 0,
        }
    }
}

impl Default for ExtractParams {
    fn default() -> Self {
        ExtractParams {
            fps: 100.0,
            min_seconds: 0.25,
            max_seconds: 60.0,
            channels: Vec::new(),
            split: SplitParams::default(),
            max_reject_fraction: 0.1,
            max_file_mb: 64.0,
        }
    }
}

impl ExtractParams {
    /// Parse from the stage's params (`{"extract": {...}}`) and check ranges.
    pub fn from_params(
        params: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let p: ExtractParams = pipe_stage_api::section(params, "extract")?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), String> {
        if !(self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(format!(
                "extract.fps must be in (0, 1000], got {}",
                self.fps
            ));
        }
        if !(self.min_seconds >= 0.0 && self.max_seconds > self.min_seconds) {
            return Err(format!(
                "extract.min_seconds ({}) must be >= 0 and below extract.max_seconds ({})",
                self.min_seconds, self.max_seconds
            ));
        }
        for c in &self.channels {
            if c != "joint_velocity" && c != "joint_acceleration" {
                return Err(format!("extract.channels: unknown channel `{c}` (known: joint_velocity, joint_acceleration)"));
            }
        }
        let s = &self.split;
        if !(s.val >= 0.0 && s.test >= 0.0 && s.val + s.test < 1.0) {
            return Err(format!(
                "extract.split: val ({}) and test ({}) must be >= 0 and sum below 1",
                s.val, s.test
            ));
        }
        if !(0.0..=1.0).contains(&self.max_reject_fraction) {
            return Err(format!(
                "extract.max_reject_fraction must be in [0, 1], got {}",
                self.max_reject_fraction
            ));
        }
        if self.max_file_mb <= 0.0 {
            return Err(format!(
                "extract.max_file_mb must be positive, got {}",
                self.max_file_mb
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: serde_json::Value) -> Result<ExtractParams, String> {
        ExtractParams::from_params(&[("extract".to_string(), v)].into())
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(
            p(serde_json::json!({})).expect("defaults"),
            ExtractParams::default()
        );
        assert_eq!(p(serde_json::json!({"fps": 20})).expect("fps").fps, 20.0);
        assert!(p(serde_json::json!({"fsp": 20}))
            .expect_err("typo")
            .contains("unknown field `fsp`"));
        assert!(p(serde_json::json!({"fps": 0})).is_err());
        assert!(p(serde_json::json!({"channels": ["CoM"]}))
            .expect_err("chan")
            .contains("CoM"));
        assert!(p(serde_json::json!({"split": {"val": 0.6, "test": 0.5}})).is_err());
    }
}

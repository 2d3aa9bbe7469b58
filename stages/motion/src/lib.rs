//! Motion modelling: the per-frame feature transform and its inverse (`features`),
//! normalisation statistics and the dataset summary (`stats`, `summary`; stage
//! `motion.stats`). Training and generation come next. Knows nothing about scheduling.

pub mod features;
pub mod stats;
mod summary;

pub fn kinds() -> Vec<Box<dyn pipe_stage_api::StageKind>> {
    vec![Box::new(stats::StatsStage)]
}

//! KIT Motion-Language data: the MMM XML reader and writer (`mmm`), the canonical
//! joint order (`joints`), extraction to Parquet (`extract`, stage `kit.extract`),
//! a synthetic KIT-format dataset (`synth`, stage `kit.synth`) and a file checker
//! (`check`, `pipe kit check`). Knows nothing about scheduling.

pub mod body;
pub mod check;
pub mod extract;
pub mod joints;
pub mod mmm;
pub mod synth;

/// The stage kinds of this crate, for the binary's registry.
pub fn kinds() -> Vec<Box<dyn pipe_stage_api::StageKind>> {
    vec![Box::new(extract::ExtractStage), Box::new(synth::SynthStage)]
}

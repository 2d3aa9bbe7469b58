//! KIT Motion-Language data: the MMM XML reader and writer (`mmm`), the canonical
//! joint order (`joints`), extraction to Parquet (`extract`, stage `kit.extract`),
//! a synthetic KIT-format dataset (`synth`, stage `kit.synth`) and a file checker
//! (`check`, `pipe kit check`). Knows nothing about scheduling.

pub mod joints;
pub mod mmm;

//! `pipe`: a YAML DAG of content-hashed stages. This library is the runner — the
//! pipeline spec and its validation, cache keys, the artifact store, executors, run
//! records and experiments. It knows nothing about motion: stage kinds are registered
//! by the binary from the crates under `stages/`.

pub mod cache;
pub mod cli;
pub mod commands;
pub mod entry;
pub mod error;
pub mod exec;
pub mod project;
pub mod runs;
pub mod spec;
pub mod util;

pub use error::{exit, Error, Result};

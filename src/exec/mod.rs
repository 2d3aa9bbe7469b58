//! Executing a plan: the scheduler (parallel stages, resource tokens), the worker
//! that computes one stage (hash inputs, key, lock, run, verify, publish), launching
//! stages as child processes, and the progress display.

mod display;
mod launch;
mod scheduler;
mod worker;

pub use display::Display;
pub use launch::{cancel_all, install_signal_handler, interrupted};
pub use scheduler::{execute, Plan, StageResult, Status};
pub use worker::{compute_material, InputError, Inputs};

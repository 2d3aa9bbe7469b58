//! What every `pipe` executable shares: error reporting with the documented exit
//! codes, logging set-up, and the child-process side of a built-in stage.

use std::io::Write;

use anyhow::Context;
use pipe_stage_api::{JobSpec, Registry, StageContext};

use crate::{exit, Error};

/// End the process with `code` now, once stdout and stderr are flushed, without
/// static destructors: those of libtorch and ONNX Runtime only delay the exit of a
/// command whose work is written and closed (~0.1–0.2 s of a ~0.9 s `pipe generate`).
pub fn exit_now(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process; no Rust state is used afterwards.
    unsafe { libc::_exit(code.into()) }
}

/// Print an error and its causes; the exit code it maps to.
pub fn report(e: &anyhow::Error) -> i32 {
    // A closed stdout (`pipe exp show | head`) is not an error.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return exit::OK;
    }
    let mut msg = format!("error: {e}");
    for cause in e.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    let _ = writeln!(std::io::stderr(), "{msg}");
    e.chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::exit_code)
        .unwrap_or(exit::INTERNAL)
}

/// Log to stderr at the level of `-v`/`-q` (or `PIPE_LOG`).
pub fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Child-process side of a `uses:` stage.
pub fn exec_stage(kinds: &Registry, job: &std::path::Path) -> anyhow::Result<i32> {
    let bytes =
        std::fs::read(job).with_context(|| format!("failed to read job file {}", job.display()))?;
    let spec: JobSpec = serde_json::from_slice(&bytes)
        .with_context(|| format!("invalid job file {}", job.display()))?;
    let kind = kinds
        .get(&spec.kind)
        .with_context(|| format!("this binary has no stage kind `{}`", spec.kind))?;
    let stage = spec.stage.clone();
    let ctx = StageContext::new(spec);
    kind.run(&ctx)
        .with_context(|| format!("stage `{stage}` ({}) failed", kind.name()))?;
    Ok(exit::OK)
}

//! `pipe-stage exec-stage --job FILE`: runs the jobs of the built-in stage kinds that
//! need no libtorch (kit.*, text.*, motion.stats, …) for the runner. It links neither
//! libtorch nor the model crate, so it starts in ~0.1 s where `pipe` takes ~0.3 s to
//! load libtorch; `pipe` uses it for those kinds when it is found beside itself.

use std::process::ExitCode;

use pipe::{entry, exit};
use pipe_stage_api::Registry;

fn main() -> ExitCode {
    entry::init_tracing(0, false);
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match args.as_slice() {
        [cmd, flag, job] if cmd == "exec-stage" && flag == "--job" => {
            let mut kinds = Registry::new();
            for k in pipe_kit::kinds()
                .into_iter()
                .chain(pipe_text::kinds())
                .chain(pipe_motion::kinds())
            {
                kinds.register(k);
            }
            entry::exec_stage(&kinds, std::path::Path::new(job))
                .unwrap_or_else(|e| entry::report(&e))
        }
        _ => {
            eprintln!(
                "usage: pipe-stage exec-stage --job FILE (started by `pipe run`, not for humans)"
            );
            exit::INVALID
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

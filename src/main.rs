//! `pipe`: the command line without libtorch. It starts in milliseconds, runs the
//! runner and every stage kind that needs no libtorch (kit.*, text.*, motion.stats),
//! and hands a command that needs libtorch (`generate`, or any runner command on a
//! pipeline with a `motion.*` model stage) to `pipe-torch` beside it.

use std::io::Write;
use std::process::ExitCode;

use pipe::cli::GlobalArgs;
use pipe::spec::StageKinds;

mod app;
mod motion_cli;

struct Light;

impl app::Flavor for Light {
    fn kinds(&self) -> StageKinds {
        let mut r = StageKinds::new();
        for k in app::light_kinds() {
            r.register(k);
        }
        for k in app::TORCH_KINDS {
            r.know_elsewhere(k);
        }
        r
    }
    fn has_torch(&self) -> bool {
        false
    }
    fn generate(
        &self,
        _: &GlobalArgs,
        _: app::GenerateArgs,
        _: &mut dyn Write,
    ) -> anyhow::Result<i32> {
        // Never reached: `app::run` hands `generate` to pipe-torch first.
        anyhow::bail!("internal error: `pipe generate` needs pipe-torch")
    }
}

fn main() -> ExitCode {
    ExitCode::from(app::run(&Light))
}

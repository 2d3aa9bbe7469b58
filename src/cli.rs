//! The command line (clap). Parsing only: `main.rs` dispatches to the library.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Options every subcommand takes. The binary's top-level parser (in `main.rs`,
/// which also adds the stage crates' own subcommands) flattens these.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Project directory (holding pipeline.yaml); default: the current directory
    #[arg(
        short = 'C',
        long = "dir",
        global = true,
        value_name = "DIR",
        default_value = "."
    )]
    pub dir: PathBuf,
    /// More logging on stderr (-v info, -vv debug: prints stage key material)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

pub const EXIT_CODES: &str =
    "Exit codes: 0 success, 1 a stage failed, 2 invalid command line, pipeline, config or sweep \
(nothing ran), 3 `verify` found corruption, 4 I/O or internal error, 130 interrupted.";

#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Parameter file (relative to the project); default: `config:` of pipeline.yaml
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a parameter, e.g. --set train.lr=3e-4 (the key must exist in the config)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline up to TARGET (default: every stage), reusing cached stages
    Run {
        /// Stage to compute (with everything upstream)
        target: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        /// Stages to run in parallel (default: number of CPUs)
        #[arg(short = 'j', long, value_name = "N")]
        jobs: Option<usize>,
        /// Re-run this stage even if its outputs are cached (repeatable)
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Print a JSON summary on stdout
        #[arg(long)]
        json: bool,
    },
    /// Show which stages are up to date, stale (and why) or never run
    Status {
        target: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// Print the stages in run order with their inputs and outputs
    Dag {
        /// Graphviz dot instead of text
        #[arg(long)]
        dot: bool,
    },
    /// Where a stage's current outputs are, and its manifest
    Show {
        stage: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete store entries no run record, `latest` pointer or current config refers to
    Gc {
        /// Only list what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Keep only entries of the current config and the latest runs (drop old experiments)
        #[arg(long)]
        only_current: bool,
    },
    /// Re-hash stored artifacts and report any that differ from their manifest
    Verify {
        /// Only this stage's entries
        stage: Option<String>,
        /// Move corrupted entries aside so the next run recomputes them
        #[arg(long)]
        quarantine: bool,
    },
    /// Run every variant of a sweep file (grid and/or list of overrides)
    Sweep {
        file: PathBuf,
        #[arg(short = 'j', long, value_name = "N")]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Only validate every variant (config keys, stage parameters); run nothing
        #[arg(long)]
        check: bool,
    },
    /// Experiments: compare runs
    Exp {
        #[command(subcommand)]
        command: ExpCommand,
    },
    /// Run one built-in stage (used by the runner; not for humans)
    #[command(hide = true)]
    ExecStage {
        #[arg(long, value_name = "FILE")]
        job: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    /// Runs side by side: differing parameters, status, duration, metrics
    Show {
        /// Only the runs of this sweep id
        #[arg(long)]
        sweep: Option<String>,
        /// Only the last N runs
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Also write the table as Parquet
        #[arg(long, value_name = "FILE")]
        parquet: Option<PathBuf>,
    },
}

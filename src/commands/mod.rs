//! One module per subcommand. Each takes a validated project and writes results to
//! the given writer (stdout in the binary), logs and progress to stderr.

pub mod dag;
pub mod exp;
pub mod gc;
pub mod run;
pub mod show;
pub mod status;
pub mod sweep;
pub mod verify;

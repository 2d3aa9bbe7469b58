//! Error classes of the runner and the exit codes they map to.

use std::path::PathBuf;

/// Documented exit codes (README "Exit codes").
pub mod exit {
    /// Everything requested succeeded.
    pub const OK: i32 = 0;
    /// At least one stage failed (the others that could run did).
    pub const STAGE_FAILED: i32 = 1;
    /// Invalid command line, pipeline, config or sweep file: nothing ran.
    pub const INVALID: i32 = 2;
    /// `pipe verify` found corrupted or missing artifacts.
    pub const CORRUPT: i32 = 3;
    /// An I/O or internal error of the runner itself.
    pub const INTERNAL: i32 = 4;
    /// Interrupted (Ctrl-C / SIGTERM).
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline, config or sweep file is invalid. `place` names the stage and key.
    #[error("{}: {place}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        place: String,
        reason: String,
    },
    /// A command-line argument is invalid.
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid(
        file: impl Into<PathBuf>,
        place: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            file: file.into(),
            place: place.into(),
            reason: reason.into(),
        }
    }

    /// A YAML syntax or schema error in `file`, placed at its line and column.
    pub fn yaml(file: impl Into<PathBuf>, e: &serde_yaml::Error) -> Self {
        let place = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()))
            .unwrap_or_else(|| "document".into());
        Error::invalid(file, place, e.to_string())
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } | Error::Usage(_) => exit::INVALID,
            Error::Io { .. } => exit::INTERNAL,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach the path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

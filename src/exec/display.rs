//! Progress for humans on stderr: a live line per running stage (elapsed time and
//! the progress the stage reports) on a terminal, plain log lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::scheduler::{Running, StageResult, Status};

pub struct Display {
    quiet: bool,
    live: Option<(
        MultiProgress,
        std::collections::BTreeMap<String, ProgressBar>,
    )>,
}

impl Display {
    pub fn new(quiet: bool) -> Self {
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Default::default(),
            )
        });
        Display { quiet, live }
    }

    /// Refresh running stages (terminal only).
    pub(crate) fn tick(&mut self, running: &Running) {
        let Some((mp, bars)) = &mut self.live else {
            return;
        };
        let running = running.lock().unwrap_or_else(|e| e.into_inner()).clone();
        bars.retain(|name, bar| {
            let keep = running.contains_key(name);
            if !keep {
                bar.finish_and_clear();
                mp.remove(bar);
            }
            keep
        });
        for (name, (started, progress)) in running {
            let bar = bars.entry(name.clone()).or_insert_with(|| {
                let b = mp.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:.bold} {elapsed:>5} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(name.clone());
                b.enable_steady_tick(Duration::from_millis(120));
                b
            });
            let _ = started;
            let msg = progress
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| {
                    t.lines()
                        .last()
                        .and_then(pipe_stage_api::parse_progress_line)
                })
                .map(|(d, t, m)| {
                    let pct = if t > 0 {
                        100.0 * d as f64 / t as f64
                    } else {
                        0.0
                    };
                    format!("{d}/{t} ({pct:.0}%) {m}")
                })
                .unwrap_or_default();
            bar.set_message(msg);
        }
    }

    pub(crate) fn finished(&mut self, r: &StageResult) {
        if let Some((mp, bars)) = &mut self.live {
            if let Some(b) = bars.remove(&r.name) {
                b.finish_and_clear();
                mp.remove(&b);
            }
        }
        if self.quiet && r.status != Status::Failed {
            return;
        }
        let line = match r.status {
            Status::Failed => format!(
                "failed  {} ({:.2}s): {}",
                r.name,
                r.seconds,
                r.error.as_deref().unwrap_or("")
            ),
            Status::Skipped => format!("skipped {}: {}", r.name, r.error.as_deref().unwrap_or("")),
            s => format!("{:<7} {} ({:.2}s)", s.as_str(), r.name, r.seconds),
        };
        match &self.live {
            Some((mp, _)) => {
                let _ = mp.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}

//! Starting a stage as a child process in its own process group, and cancelling
//! every running child on Ctrl-C / SIGTERM. A crash in a stage (libtorch, a shell
//! command) cannot take the runner down, and cancellation is just a signal.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pipe_stage_api::{
    JobSpec, ENV_DEP_PREFIX, ENV_KEY, ENV_OUT, ENV_PARAMS, ENV_PROGRESS, ENV_SCRATCH, ENV_STAGE,
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// True once Ctrl-C / SIGTERM was received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Route Ctrl-C and SIGTERM to [`cancel_all`]. Idempotent.
pub fn install_signal_handler() {
    let _ = ctrlc::set_handler(cancel_all);
}

/// Mark the run interrupted and send SIGTERM to every running stage's process group.
pub fn cancel_all() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let pids = CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for pid in pids {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
    }
}

/// How a stage is started.
pub(crate) enum Launch<'a> {
    /// `sh -c COMMAND` with the stage environment.
    Shell(&'a str),
    /// `pipe exec-stage --job FILE` (a built-in kind in a child process), or the
    /// same with the kind's own executable.
    Builtin {
        job_file: &'a Path,
        exe: Option<&'a Path>,
    },
}

/// Start the stage; stdout and stderr go to `log`.
pub(crate) fn spawn(
    launch: Launch<'_>,
    spec: &JobSpec,
    params_file: &Path,
    log: &Path,
) -> std::io::Result<Child> {
    let mut cmd = match launch {
        Launch::Shell(c) => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(c);
            cmd
        }
        Launch::Builtin { job_file, exe } => {
            let exe = match exe {
                Some(e) => e.to_path_buf(),
                None => std::env::current_exe()?,
            };
            let mut cmd = Command::new(exe);
            cmd.arg("exec-stage").arg("--job").arg(job_file);
            cmd
        }
    };
    let logf = std::fs::File::create(log)?;
    let env: BTreeMap<String, PathBuf> = spec
        .deps
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("{ENV_DEP_PREFIX}{i}"), d.clone()))
        .collect();
    cmd.current_dir(&spec.project_dir)
        .envs(env)
        .env(ENV_OUT, &spec.out_dir)
        .env(ENV_PARAMS, params_file)
        .env(ENV_SCRATCH, &spec.scratch_dir)
        .env(ENV_PROGRESS, &spec.progress_file)
        .env(ENV_STAGE, &spec.stage)
        .env(ENV_KEY, &spec.key)
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .process_group(0);
    let child = cmd.spawn()?;
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(child.id() as i32);
    Ok(child)
}

/// Wait for the child; on interruption, SIGTERM its group, then SIGKILL after a grace period.
pub(crate) fn wait(mut child: Child) -> std::io::Result<std::process::ExitStatus> {
    let pid = child.id() as i32;
    let mut term_sent: Option<Instant> = None;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if interrupted() {
            match term_sent {
                None => {
                    // SAFETY: signalling our own child's process group.
                    unsafe { libc::kill(-pid, libc::SIGTERM) };
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(5) => {
                    // SAFETY: as above.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pid);
    Ok(status)
}

//! The command line of both executables: parse it, call the library, map errors to
//! the documented exit codes (see `pipe --help`). `pipe` (src/main.rs) links no
//! libtorch and starts in milliseconds; a command that needs libtorch (generation, or
//! a pipeline with `motion.*` model stages) is handed to `pipe-torch` beside it
//! (src/bin/pipe-torch.rs), which links it (~0.3 s to load).

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pipe::cli::{Command, ConfigArgs, ExpCommand, GlobalArgs, EXIT_CODES};
use pipe::commands::{dag, exp, gc, run, show, status, sweep, verify};
use pipe::project::{ConfigChoice, Project};
use pipe::spec::{Override, Pipeline, StageKinds};
use pipe::{entry, exit, Error};

use crate::motion_cli;

/// A reproducible dataflow pipeline for text-to-motion: a YAML DAG of content-hashed stages.
///
/// Stages whose inputs (files, upstream outputs, parameters, implementation) are
/// unchanged are not re-run; their stored outputs are reused.
#[derive(Debug, Parser)]
#[command(name = "pipe", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Debug, Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Runner(Command),
    /// Embed sentences with the text encoder and print their cosine similarities
    Embed {
        #[arg(required = true, value_name = "SENTENCE")]
        sentences: Vec<String>,
        /// Encoder folder (model.onnx + tokenizer.json), relative to the project
        #[arg(long, value_name = "DIR", default_value = "encoders/all-minilm-l6-v2")]
        encoder: std::path::PathBuf,
        /// Print the vectors and similarities as JSON
        #[arg(long)]
        json: bool,
    },
    /// Generate motions from sentences with the trained model of the current config
    /// (training it first if needed); prints the files it wrote
    Generate(GenerateArgs),
    /// Write a motion (MMM .xml, .npy or dataset id) as BVH, joint positions, MMM XML or .npy
    Export(motion_cli::ExportArgs),
    /// Draw a motion as a stick-figure contact sheet (PNG) and animation (GIF)
    Render(motion_cli::RenderArgs),
    /// KIT-ML motion files: check what is wrong with them
    Kit {
        #[command(subcommand)]
        command: KitCommand,
    },
}

#[derive(Debug, clap::Args)]
#[allow(dead_code)] // read by pipe-torch only; `pipe` hands `generate` to it
pub(crate) struct GenerateArgs {
    #[arg(required = true, value_name = "PROMPT")]
    pub(crate) prompts: Vec<String>,
    /// Length of each motion in seconds, or `auto` (estimated from the text)
    #[arg(long, value_name = "S|auto")]
    pub(crate) seconds: Option<String>,
    /// Motions per prompt (different seeds)
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<usize>,
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// DDIM sampling steps (default: `generate.steps` of the config, else 50)
    #[arg(long, value_name = "N")]
    pub(crate) steps: Option<i64>,
    /// Classifier-free guidance scale (default: `generate.guidance`, else 2.5)
    #[arg(long, value_name = "G")]
    pub(crate) guidance: Option<f64>,
    /// Folder for the files (default: generated/<run id>/ in the project)
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<std::path::PathBuf>,
    /// The `motion.generate` stage whose model and encoder to use (default: the only one)
    #[arg(long, value_name = "STAGE")]
    pub(crate) stage: Option<String>,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Skip the .png/.gif previews (faster)
    #[arg(long)]
    pub(crate) no_previews: bool,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
enum KitCommand {
    /// Parse MMM XML files and say what is wrong and where (element, frame, line), or summarise them
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
    },
}

/// What differs between the two executables.
pub(crate) trait Flavor {
    /// The stage kinds this executable provides to `uses:`.
    fn kinds(&self) -> StageKinds;
    /// Whether it links libtorch (else commands that need it are handed on).
    fn has_torch(&self) -> bool;
    /// `pipe generate` (only with libtorch).
    fn generate(&self, g: &GlobalArgs, a: GenerateArgs, out: &mut dyn Write)
        -> anyhow::Result<i32>;
}

/// The kinds of `stages/model` (libtorch), known by name to the executable without it.
pub(crate) const TORCH_KINDS: [&str; 3] = ["motion.train", "motion.generate", "motion.evaluate"];

/// The kinds that need no libtorch.
pub(crate) fn light_kinds() -> Vec<Box<dyn pipe_stage_api::StageKind>> {
    pipe_kit::kinds()
        .into_iter()
        .chain(pipe_text::kinds())
        .chain(pipe_motion::kinds())
        .collect()
}

/// The executable named `name` beside this one, if it is there.
pub(crate) fn sibling(name: &str) -> Option<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join(name)))
        .filter(|e| e.is_file())
}

/// Set when `pipe` hands a command to `pipe-torch` (which clears it), so a
/// misbuilt pair cannot hand a command back and forth.
const DELEGATED: &str = "PIPE_DELEGATED";

/// Whether this command needs libtorch: generation, or a runner command on a
/// pipeline with a model stage (its keys include libtorch's version and devices).
fn needs_torch(cli: &Cli) -> bool {
    let pipeline = || pipeline_uses_torch(&cli.global.dir);
    match &cli.command {
        TopCommand::Generate(_) => true,
        TopCommand::Embed { .. } | TopCommand::Kit { .. } => false,
        TopCommand::Export(_) | TopCommand::Render(_) => pipeline(),
        TopCommand::Runner(c) => match c {
            Command::ExecStage { .. } | Command::Verify { .. } | Command::Exp { .. } => false,
            _ => pipeline(),
        },
    }
}

/// Whether `DIR/pipeline.yaml` has a stage whose `uses:` is a libtorch kind (an
/// unreadable file says no: the error is then reported without libtorch).
fn pipeline_uses_torch(dir: &std::path::Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("pipeline.yaml")) else {
        return false;
    };
    let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
        return false;
    };
    v.get("stages")
        .and_then(|s| s.as_mapping())
        .is_some_and(|m| {
            m.values().any(|st| {
                st.get("uses")
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| TORCH_KINDS.contains(&u))
            })
        })
}

/// `pipe-torch` beside this executable, ready to be given this command line.
fn torch_command() -> anyhow::Result<std::process::Command> {
    if std::env::var_os(DELEGATED).is_some() {
        anyhow::bail!("internal error: pipe-torch handed this command back to pipe");
    }
    let Some(exe) = sibling("pipe-torch") else {
        return Err(Error::Usage(
            "this command needs libtorch, which `pipe` does not link, and `pipe-torch` \
             (built beside `pipe` by cargo build) is not there; keep both executables together"
                .into(),
        )
        .into());
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(DELEGATED, "1");
    Ok(cmd)
}

/// Replace this process by `pipe-torch` with the same arguments.
fn hand_to_torch() -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = torch_command()?;
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("failed to start {:?}", cmd.get_program())))
}

/// Set by `pipe generate` on the `pipe-torch` it starts: the prompts' vectors come
/// on its stdin (one line of JSON, or nothing).
pub(crate) const PROMPTS_ON_STDIN: &str = "PIPE_PROMPTS_ON_STDIN";

/// `pipe generate`: `pipe-torch` does it, started at once, and this process encodes
/// the prompts meanwhile and hands their vectors over on the child's stdin. On two
/// cores libtorch's start-up (~0.3–0.5 s of static set-up before `main`) and ONNX
/// Runtime's (~0.2–0.5 s: library, session, one batch) then overlap instead of
/// following each other. Whatever keeps this side from encoding (no such stage, an
/// encoder that is a stage's output, a missing file) only leaves the encoding to
/// the child, which reports what is wrong; the child also uses the vectors only
/// where its own encoder would give the same bits.
fn generate_beside_torch(g: &GlobalArgs, a: &GenerateArgs) -> anyhow::Result<i32> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = torch_command()?;
    cmd.env(PROMPTS_ON_STDIN, "1")
        .stdin(std::process::Stdio::piped());
    // SAFETY: prctl is async-signal-safe; the child ends with this process (as the
    // single process that `exec` gave before).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to start {:?}", cmd.get_program()))?;
    // Ctrl-C reaches both processes; this one stays until the child, which cleans
    // up (stops the stages it runs) and says so, has ended, and passes a SIGTERM or
    // SIGHUP of its own on to it.
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) touches no memory.
    let _ = ctrlc::set_handler(move || unsafe {
        libc::kill(pid, libc::SIGTERM);
    });
    if let Some(mut stdin) = child.stdin.take() {
        let t0 = std::time::Instant::now();
        // ONNX Runtime's load copies the 90 MB model several times: 0.61 → 0.48 s.
        pipe_stage_api::keep_freed_memory();
        match encode_prompts(g, a) {
            Ok(h) => {
                tracing::debug!(
                    "generate: prompts encoded beside pipe-torch's start in {:.3} s",
                    t0.elapsed().as_secs_f64()
                );
                // A broken pipe means the child has ended already; it says why.
                let _ = serde_json::to_writer(&mut stdin, &h);
            }
            Err(e) => tracing::debug!("generate: prompts left to pipe-torch to encode: {e:#}"),
        }
        drop(stdin);
        // This process only waits from here on (through a training run, if the DAG
        // needs one): what the encoder held goes back to the system.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free heap memory to the kernel.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    let status = child.wait()?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The prompts of `pipe generate` (and the config's negative prompt), encoded as
/// `pipe-torch` would: one batch with the encoder of the `motion.generate` stage
/// and the config's `generate.threads`.
fn encode_prompts(g: &GlobalArgs, a: &GenerateArgs) -> anyhow::Result<pipe_text::encoder::Handed> {
    use serde_yaml::Value;
    let root = std::fs::canonicalize(&g.dir)?;
    let text = std::fs::read_to_string(root.join("pipeline.yaml"))?;
    let pipeline: Value = serde_yaml::from_str(&text)?;
    let stages = pipeline
        .get("stages")
        .and_then(Value::as_mapping)
        .context("no stages")?;
    let found: Vec<&Value> = stages
        .iter()
        .filter(|(name, st)| {
            st.get("uses").and_then(Value::as_str) == Some("motion.generate")
                && a.stage.as_deref().is_none_or(|s| name.as_str() == Some(s))
        })
        .map(|(_, st)| st)
        .collect();
    let [stage] = found.as_slice() else {
        anyhow::bail!("not exactly one motion.generate stage");
    };
    let dep = stage
        .get("deps")
        .and_then(|d| d.get(2))
        .and_then(Value::as_str)
        .context("no encoder among the stage's deps")?;
    if stages.contains_key(dep.split('/').next().unwrap_or("")) {
        anyhow::bail!("the encoder `{dep}` is a stage's output");
    }
    let dir = root.join(dep);
    let choice = choice(&a.config)?;
    let file = choice
        .file
        .clone()
        .or_else(|| {
            pipeline
                .get("config")
                .and_then(Value::as_str)
                .map(Into::into)
        })
        .context("no config")?;
    let mut config = pipe::spec::Config::load(&root.join(file))?;
    config.apply(&choice.overrides)?;
    let threads = config
        .get("generate.threads")
        .and_then(serde_json::Value::as_i64)
        .context("no generate.threads")?
        .max(1) as usize;
    let mut batch: Vec<String> = a.prompts.iter().map(|p| p.trim().to_string()).collect();
    if batch.iter().any(String::is_empty) {
        anyhow::bail!("an empty prompt");
    }
    let negative = config
        .get("generate.negative_prompt")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .trim();
    if !negative.is_empty() {
        batch.push(negative.to_string());
    }
    let lib = pipe_text::encoder::ort_library(&root)?;
    let mut encoder = pipe_text::encoder::Encoder::load(&dir, &lib, threads)?;
    pipe_text::encoder::Handed::encode(&mut encoder, &dir, threads, batch)
}

/// The command line's work; the process's exit status.
pub(crate) fn run(flavor: &dyn Flavor) -> u8 {
    let cli = Cli::parse();
    if flavor.has_torch() {
        // Not passed on: a stage of this run may call `pipe` again.
        std::env::remove_var(DELEGATED);
    }
    entry::init_tracing(cli.global.verbose, cli.global.quiet);
    let code = if !flavor.has_torch() && needs_torch(&cli) {
        match &cli.command {
            TopCommand::Generate(a) => {
                let code = generate_beside_torch(&cli.global, a)
                    .unwrap_or_else(|e| entry::report(&e))
                    .clamp(0, 255);
                // ONNX Runtime was loaded to encode the prompts: its static
                // destructors would only delay the exit (pipe-torch ends the same way).
                entry::exit_now(code as u8)
            }
            _ => hand_to_torch(),
        }
        .unwrap_or_else(|e| entry::report(&e))
    } else {
        match dispatch(cli, flavor) {
            Ok(code) => code,
            Err(e) => entry::report(&e),
        }
    };
    code.clamp(0, 255) as u8
}

pub(crate) fn choice(c: &ConfigArgs) -> Result<ConfigChoice, Error> {
    Ok(ConfigChoice {
        file: c.config.clone(),
        overrides: c
            .set
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) fn jobs(j: Option<usize>) -> Result<usize, Error> {
    match j {
        Some(0) => Err(Error::Usage("-j must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)),
    }
}

fn dispatch(cli: Cli, flavor: &dyn Flavor) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout().lock();
    let out: &mut dyn Write = &mut stdout;
    match cli.command {
        TopCommand::Runner(c) => dispatch_runner(&cli.global, c, &flavor.kinds(), out),
        TopCommand::Embed {
            sentences,
            encoder,
            json,
        } => embed(&cli.global, &sentences, &encoder, json, out),
        TopCommand::Generate(a) => flavor.generate(&cli.global, a, out),
        TopCommand::Export(a) => motion_cli::export(&cli.global, a, &flavor.kinds(), out),
        TopCommand::Render(a) => motion_cli::render(&cli.global, a, &flavor.kinds(), out),
        TopCommand::Kit {
            command: KitCommand::Check { files },
        } => {
            let mut bad = 0;
            for f in &files {
                let (ok, text) = pipe_kit::check::check_file(f);
                if !ok {
                    bad += 1;
                }
                writeln!(out, "{text}")?;
            }
            Ok(if bad == 0 {
                exit::OK
            } else {
                exit::STAGE_FAILED
            })
        }
    }
}

fn dispatch_runner(
    g: &GlobalArgs,
    command: Command,
    kinds: &StageKinds,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        Command::Run {
            target,
            config,
            jobs: j,
            force,
            json,
        } => {
            let project = Project::open(&g.dir, &choice(&config)?, kinds)?;
            pipe::exec::install_signal_handler();
            let opts = run::RunOptions {
                target,
                force,
                jobs: jobs(j)?,
                quiet: g.quiet,
                sweep: None,
            };
            let report = run::run(&project, kinds, &opts)?;
            run::print_report(out, &report, json)?;
            Ok(run_code(&report))
        }
        Command::Status {
            target,
            config,
            json,
        } => {
            let project = Project::open(&g.dir, &choice(&config)?, kinds)?;
            let states = status::status(&project, kinds, target.as_deref())?;
            status::print(out, &states, json)?;
            Ok(exit::OK)
        }
        Command::Dag { dot } => {
            let root = std::fs::canonicalize(&g.dir).map_err(|e| Error::io(&g.dir, e))?;
            let p = Pipeline::load(&root, kinds)?;
            dag::print(out, &p, dot)?;
            Ok(exit::OK)
        }
        Command::Show {
            stage,
            config,
            json,
        } => {
            let project = Project::open(&g.dir, &choice(&config)?, kinds)?;
            show::show(out, &project, kinds, &stage, json)?;
            Ok(exit::OK)
        }
        Command::Gc {
            dry_run,
            only_current,
        } => {
            let project = Project::open(&g.dir, &ConfigChoice::default(), kinds)?;
            let plan = gc::plan(&project, kinds, only_current)?;
            if !dry_run {
                gc::apply(&plan)?;
            }
            gc::print(out, &plan, dry_run)?;
            Ok(exit::OK)
        }
        Command::Verify { stage, quarantine } => {
            let root = std::fs::canonicalize(&g.dir).map_err(|e| Error::io(&g.dir, e))?;
            let store = pipe::cache::store::Store::new(root.join("artifacts"));
            let (n, problems) = verify::verify(&store, stage.as_deref())?;
            verify::print(out, n, &problems)?;
            if quarantine && !problems.is_empty() {
                for p in verify::quarantine(&store, &problems)? {
                    writeln!(out, "moved aside: {}", p.display())?;
                }
            }
            Ok(if problems.is_empty() {
                exit::OK
            } else {
                exit::CORRUPT
            })
        }
        Command::Sweep {
            file,
            jobs: j,
            json,
            check,
        } => {
            let root = std::fs::canonicalize(&g.dir).map_err(|e| Error::io(&g.dir, e))?;
            let path = if file.is_absolute() || file.exists() {
                file.clone()
            } else {
                root.join(&file)
            };
            let sw = sweep::Sweep::load(&path)?;
            if check {
                sweep::check(&root, kinds, &sw)?;
                writeln!(
                    out,
                    "{}: {} variants, all valid",
                    file.display(),
                    sw.variants.len()
                )?;
                return Ok(exit::OK);
            }
            pipe::exec::install_signal_handler();
            let (id, reports) = sweep::sweep(&root, kinds, &sw, jobs(j)?, g.quiet)?;
            let table = exp::load(
                &root.join("artifacts").join(".runs"),
                &exp::Filter {
                    sweep: Some(id.clone()),
                    last: None,
                },
            )?;
            if json {
                exp::print(out, &table, true)?;
            } else {
                writeln!(out, "sweep {id}: {} variants", reports.len())?;
                exp::print(out, &table, false)?;
            }
            let worst = reports.iter().map(run_code).max().unwrap_or(exit::OK);
            Ok(if pipe::exec::interrupted() {
                exit::INTERRUPTED
            } else {
                worst
            })
        }
        Command::Exp {
            command:
                ExpCommand::Show {
                    sweep,
                    last,
                    json,
                    parquet,
                },
        } => {
            let root = std::fs::canonicalize(&g.dir).map_err(|e| Error::io(&g.dir, e))?;
            let table = exp::load(
                &root.join("artifacts").join(".runs"),
                &exp::Filter { sweep, last },
            )?;
            exp::print(out, &table, json)?;
            if let Some(p) = parquet {
                write_exp_parquet(&p, &table)?;
                eprintln!("wrote {}", p.display());
            }
            Ok(exit::OK)
        }
        Command::ExecStage { job } => entry::exec_stage(kinds, &job),
    }
}

/// `pipe embed`: dimensions and a cosine-similarity table (or JSON).
fn embed(
    g: &GlobalArgs,
    sentences: &[String],
    encoder: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    if let Some(i) = sentences.iter().position(|s| s.trim().is_empty()) {
        return Err(Error::Usage(format!("sentence {} is empty", i + 1)).into());
    }
    pipe_stage_api::keep_freed_memory();
    let root = std::fs::canonicalize(&g.dir).map_err(|e| Error::io(&g.dir, e))?;
    let dir = if encoder.is_absolute() {
        encoder.to_path_buf()
    } else {
        root.join(encoder)
    };
    let lib = pipe_text::ort_library(&root)?;
    let mut enc = pipe_text::Encoder::load(&dir, &lib, 2)?;
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let e = enc.encode_batch(&refs, false)?;
    let n = sentences.len();
    let cos: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| pipe_text::cosine(&e.pooled[i], &e.pooled[j]))
                .collect()
        })
        .collect();
    if json {
        let v = serde_json::json!({"encoder": enc.name, "dim": enc.dim, "n_tokens": e.n_tokens, "embeddings": e.pooled, "cosine": cos});
        writeln!(out, "{v}")?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "encoder {} ({}-d, ONNX Runtime {})",
        enc.name,
        enc.dim,
        pipe_text::ort_version(&lib)
    )?;
    for (i, s) in sentences.iter().enumerate() {
        writeln!(out, "  [{}] {s} ({} tokens)", i + 1, e.n_tokens[i])?;
    }
    write!(out, "cosine")?;
    for j in 0..n {
        write!(out, "  [{}]  ", j + 1)?;
    }
    writeln!(out)?;
    for (i, row) in cos.iter().enumerate() {
        write!(out, "   [{}]", i + 1)?;
        for c in row {
            write!(out, " {c:6.3}")?;
        }
        writeln!(out)?;
    }
    Ok(exit::OK)
}

/// The experiment table as Parquet: numeric columns as float64, others as text.
fn write_exp_parquet(path: &std::path::Path, t: &exp::ExpTable) -> anyhow::Result<()> {
    use pipe_tabular::Column;
    let cols: Vec<(String, Column)> = t
        .columns
        .iter()
        .map(|(name, cells)| {
            let numeric = cells
                .iter()
                .all(|c| matches!(c, exp::Cell::Num(_) | exp::Cell::Null));
            let col = if numeric {
                Column::F64(
                    cells
                        .iter()
                        .map(|c| {
                            if let exp::Cell::Num(x) = c {
                                Some(*x)
                            } else {
                                None
                            }
                        })
                        .collect(),
                )
            } else {
                Column::Str(
                    cells
                        .iter()
                        .map(|c| match c {
                            exp::Cell::Text(s) => Some(s.clone()),
                            exp::Cell::Num(x) => Some(x.to_string()),
                            exp::Cell::Null => None,
                        })
                        .collect(),
                )
            };
            (name.clone(), col)
        })
        .collect();
    pipe_tabular::write_parquet(path, &cols, &[("pipe.table".into(), "exp show".into())])
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The pipeline's one `uses: kind` stage (the one named `name`, if given); else a
/// usage error: none of that name, several to choose from (`--stage`), or `none`.
pub(crate) fn one_stage<'p>(
    pipeline: &'p Pipeline,
    kind: &str,
    name: Option<&str>,
    none: impl FnOnce() -> String,
) -> Result<&'p pipe::spec::Stage, Error> {
    let stages: Vec<&pipe::spec::Stage> = pipeline
        .stages
        .iter()
        .filter(|s| matches!(&s.kind, pipe::spec::KindRef::Uses(k) if k == kind))
        .filter(|s| name.is_none_or(|n| n == s.name))
        .collect();
    match (stages.as_slice(), name) {
        ([st], _) => Ok(st),
        (_, Some(n)) => Err(Error::Usage(format!(
            "no `{kind}` stage named `{n}` in pipeline.yaml"
        ))),
        ([], None) => Err(Error::Usage(none())),
        (_, None) => Err(Error::Usage(format!(
            "pipeline.yaml has several `{kind}` stages: choose one with --stage"
        ))),
    }
}

/// Run `stage` (and what it needs) unless it is cached: its output folder, or the
/// exit code of a failed run (its report printed to stderr).
pub(crate) fn stage_dir(
    project: &Project,
    kinds: &StageKinds,
    stage: &str,
) -> anyhow::Result<Result<std::path::PathBuf, i32>> {
    pipe::exec::install_signal_handler();
    let opts = run::RunOptions {
        target: Some(stage.to_string()),
        force: Vec::new(),
        jobs: jobs(None)?,
        quiet: true,
        sweep: None,
    };
    let report = run::run(project, kinds, &opts)?;
    if !report.ok {
        run::print_report(&mut std::io::stderr(), &report, false)?;
        return Ok(Err(run_code(&report)));
    }
    let key = status::status(project, kinds, Some(stage))?
        .into_iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.key)
        .with_context(|| format!("stage `{stage}` was not computed"))?;
    Ok(Ok(project.store.entry_dir(stage, &key)))
}

pub(crate) fn run_code(r: &run::RunReport) -> i32 {
    if r.interrupted {
        exit::INTERRUPTED
    } else if r.ok {
        exit::OK
    } else {
        exit::STAGE_FAILED
    }
}

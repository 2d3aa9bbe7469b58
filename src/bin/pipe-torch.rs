//! `pipe-torch`: the command line with libtorch (the model stages `motion.train`,
//! `motion.generate`, `motion.evaluate`, and `pipe generate`). `pipe` hands it the
//! commands that need libtorch; it can also be run directly. The jobs of the stage
//! kinds that need no libtorch it leaves to `pipe` beside it, which starts faster.

use std::io::Write;

use pipe::cli::GlobalArgs;
use pipe::project::Project;
use pipe::spec::StageKinds;
use pipe::{exit, Error};

#[path = "../app.rs"]
mod app;
#[path = "../motion_cli.rs"]
mod motion_cli;

use app::{Flavor, GenerateArgs};

struct Torch;

impl Flavor for Torch {
    fn kinds(&self) -> StageKinds {
        let mut r = StageKinds::new();
        let light = app::light_kinds();
        let names: Vec<&'static str> = light.iter().map(|k| k.name()).collect();
        for k in light.into_iter().chain(pipe_model::kinds()) {
            r.register(k);
        }
        if let Some(exe) = app::sibling("pipe") {
            for n in names {
                r.set_executable(n, exe.clone());
            }
        }
        r
    }
    fn has_torch(&self) -> bool {
        true
    }
    fn generate(
        &self,
        g: &GlobalArgs,
        a: GenerateArgs,
        out: &mut dyn Write,
    ) -> anyhow::Result<i32> {
        generate(g, a, out)
    }
}

fn main() {
    let code = app::run(&Torch);
    // Everything of ours is written, closed and published by now; what is left at a
    // normal exit are libtorch's and ONNX Runtime's static destructors, ~0.1 s of
    // `pipe generate`'s ~0.9 s. Skip them.
    pipe::entry::exit_now(code)
}

/// `pipe generate`: the config's `generate:` section with the command line on top;
/// the model and encoder are the deps of the pipeline's `motion.generate` stage,
/// computed through the DAG first (cached when unchanged).
fn generate(g: &GlobalArgs, o: GenerateArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    use pipe::spec::Dep;
    use pipe_model::generate::{GenerateConfig, Seconds};
    let started = std::time::Instant::now();
    let handed = handed_reader();
    // The checkpoint's tensors and the sampler's buffers are each large enough for
    // an `mmap` of their own (page faults and zeroing every time); this process
    // generates and ends.
    pipe_stage_api::keep_freed_memory();
    let kinds = Torch.kinds();
    let project = Project::open(&g.dir, &app::choice(&o.config)?, &kinds)?;
    let section = project.config.get("generate").cloned();
    let mut cfg: GenerateConfig = match section {
        Some(v) => serde_json::from_value(v).map_err(|e| {
            Error::Usage(format!("{}: generate: {e}", project.config.display_file()))
        })?,
        None => GenerateConfig::default(),
    };
    cfg.prompts = o.prompts;
    cfg.seconds = match o.seconds.as_deref() {
        Some(s) => s.parse::<Seconds>().map_err(Error::Usage)?,
        None => Seconds::Auto,
    };
    cfg.count = o.count.unwrap_or(1);
    cfg.seed = o.seed.unwrap_or(cfg.seed);
    cfg.steps = o.steps.unwrap_or(cfg.steps);
    cfg.guidance = o.guidance.unwrap_or(cfg.guidance);
    if o.no_previews {
        cfg.previews = false;
    }
    cfg.check(None).map_err(Error::Usage)?;

    let st = app::one_stage(
        &project.pipeline,
        "motion.generate",
        o.stage.as_deref(),
        || {
            "pipeline.yaml has no `motion.generate` stage (its deps name the model and the text encoder)".into()
        },
    )?;
    // Compute what the generate stage reads (the trained model), through the DAG.
    let mut dirs: std::collections::HashMap<usize, std::path::PathBuf> = Default::default();
    let mut deps = Vec::new();
    for (_, d) in &st.deps {
        deps.push(match d {
            Dep::External(p) => project.root.join(p),
            Dep::Stage { stage, out: name } => {
                let dir = match dirs.get(stage) {
                    Some(dir) => dir.clone(),
                    None => {
                        match app::stage_dir(
                            &project,
                            &kinds,
                            &project.pipeline.stages[*stage].name,
                        )? {
                            Ok(dir) => dirs.entry(*stage).or_insert(dir).clone(),
                            Err(code) => return Ok(code),
                        }
                    }
                };
                dir.join(name)
            }
        });
    }
    let [weights, model_cfg, encoder] = deps.as_slice() else {
        return Err(Error::Usage(format!(
            "stage `{}` must have 3 deps (model.safetensors, config.json, encoder folder)",
            st.name
        ))
        .into());
    };
    tracing::debug!(
        "generate: config and model computed through the DAG in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let lib = pipe_text::encoder::ort_library(&project.root)?;
    let mut gen = pipe_model::generate::Generator::load_with(
        weights,
        model_cfg,
        encoder,
        &lib,
        &cfg.device,
        cfg.threads,
        || handed.and_then(|h| h.join().ok().flatten()),
    )?;
    cfg.check(Some(&gen.card)).map_err(Error::Usage)?;
    tracing::debug!(
        "generate: model and encoder loaded at {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let dir = match &o.out {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => std::env::current_dir()?.join(d),
        None => project
            .root
            .join("generated")
            .join(pipe::util::new_run_id()),
    };
    let t0 = std::time::Instant::now();
    let samples = pipe_model::generate::generate_into(&mut gen, &cfg, &dir)?;
    let secs = t0.elapsed().as_secs_f64();
    if o.json {
        let v = serde_json::json!({
            "dir": dir,
            "seconds": secs,
            "samples": samples.iter().map(|s| serde_json::json!({
                "prompt": s.prompt, "sample": s.sample, "seed": s.seed, "frames": s.frames(),
                "fps": s.fps, "files": s.files,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
    } else {
        for s in &samples {
            for f in &s.files {
                writeln!(out, "{}", f.display())?;
            }
        }
        writeln!(out, "{}", dir.join("generated.parquet").display())?;
        if !g.quiet {
            eprintln!(
                "{} motions ({} prompts x {}, {} DDIM steps, guidance {}) in {secs:.2} s -> {}",
                samples.len(),
                cfg.prompts.len(),
                cfg.count,
                cfg.steps,
                cfg.guidance,
                dir.display()
            );
        }
    }
    Ok(exit::OK)
}

/// Where `pipe generate` started this process and is encoding the prompts beside
/// it (`app::PROMPTS_ON_STDIN`): a thread reading their vectors from stdin (`None`
/// when `pipe` sent nothing or something unreadable: then they are encoded here).
fn handed_reader() -> Option<std::thread::JoinHandle<Option<pipe_text::encoder::Handed>>> {
    std::env::var_os(app::PROMPTS_ON_STDIN)?;
    // Not passed on to the stages this command may run.
    std::env::remove_var(app::PROMPTS_ON_STDIN);
    Some(std::thread::spawn(|| {
        use std::io::Read;
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).ok()?;
        if text.trim().is_empty() {
            return None;
        }
        serde_json::from_str(&text)
            .map_err(|e| tracing::debug!("generate: unreadable prompt vectors from pipe: {e}"))
            .ok()
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pipe_knows_the_libtorch_kinds_by_name() {
        let mut names: Vec<&str> = pipe_model::kinds().iter().map(|k| k.name()).collect();
        names.sort();
        let mut known = super::app::TORCH_KINDS.to_vec();
        known.sort();
        assert_eq!(names, known);
    }
}

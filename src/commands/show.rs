//! `pipe show STAGE`: where the stage's outputs for the current config are and its
//! manifest.

use std::io::Write;

use crate::commands::status::{self, State};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::spec::StageKinds;

pub fn show(
    out: &mut dyn Write,
    project: &Project,
    kinds: &StageKinds,
    stage: &str,
    json: bool,
) -> Result<()> {
    let states = status::status(project, kinds, Some(stage))?;
    let Some(st) = states.into_iter().find(|s| s.name == stage) else {
        return Err(Error::Usage(format!("unknown stage `{stage}`")));
    };
    let w = |e: std::io::Error| Error::io("<stdout>", e);
    if json {
        let v = serde_json::json!({
            "name": st.name,
            "state": st.state.as_str(),
            "reasons": st.reasons,
            "key": st.key,
            "dir": st.key.as_ref().filter(|_| st.state == State::UpToDate)
                .map(|k| project.store.entry_dir(stage, k)),
            "manifest": st.manifest,
        });
        return writeln!(out, "{v}").map_err(w);
    }
    writeln!(out, "stage:  {}", st.name).map_err(w)?;
    writeln!(out, "state:  {}", st.state.as_str()).map_err(w)?;
    for r in &st.reasons {
        writeln!(out, "  why:  {r}").map_err(w)?;
    }
    if let Some(k) = &st.key {
        writeln!(out, "key:    {k}").map_err(w)?;
    }
    if let Some(m) = &st.manifest {
        let dir = project.store.entry_dir(stage, &m.key);
        writeln!(out, "dir:    {}", dir.display()).map_err(w)?;
        writeln!(out, "outputs:").map_err(w)?;
        for (name, o) in &m.outputs {
            writeln!(
                out,
                "  {}  {} bytes{}  blake3 {}",
                dir.join(name).display(),
                o.bytes,
                if o.is_dir { " (folder)" } else { "" },
                &o.digest[..16.min(o.digest.len())]
            )
            .map_err(w)?;
        }
        writeln!(
            out,
            "ran:    {} on {} in {:.2}s (run {})",
            crate::util::format_utc(m.started_unix),
            m.host,
            m.seconds,
            m.run_id
        )
        .map_err(w)?;
        writeln!(
            out,
            "manifest: {}",
            dir.join(crate::spec::MANIFEST_NAME).display()
        )
        .map_err(w)?;
    } else {
        writeln!(
            out,
            "no outputs for the current config yet: `pipe run {stage}` computes them"
        )
        .map_err(w)?;
    }
    Ok(())
}

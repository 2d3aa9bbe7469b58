//! `pipe dag`: the stages in run order with their inputs and outputs, or Graphviz.

use std::io::Write;

use crate::spec::{Dep, Pipeline};

pub fn print(out: &mut dyn Write, p: &Pipeline, dot: bool) -> std::io::Result<()> {
    if dot {
        writeln!(out, "digraph pipeline {{")?;
        writeln!(out, "  rankdir=LR;")?;
        for &i in &p.order {
            let s = &p.stages[i];
            writeln!(
                out,
                "  \"{}\" [shape=box, label=\"{}\\n{}\"];",
                s.name,
                s.name,
                s.kind_label()
            )?;
            for (written, d) in &s.deps {
                match d {
                    Dep::Stage { stage, out: o } => writeln!(
                        out,
                        "  \"{}\" -> \"{}\" [label=\"{o}\"];",
                        p.stages[*stage].name, s.name
                    )?,
                    Dep::External(_) => {
                        writeln!(out, "  \"{written}\" [shape=note];")?;
                        writeln!(out, "  \"{written}\" -> \"{}\";", s.name)?;
                    }
                }
            }
        }
        return writeln!(out, "}}");
    }
    for &i in &p.order {
        let s = &p.stages[i];
        writeln!(out, "{} ({})", s.name, s.kind_label())?;
        if let Some(d) = &s.desc {
            writeln!(out, "  {d}")?;
        }
        for (written, _) in &s.deps {
            writeln!(out, "  <- {written}")?;
        }
        if !s.params.is_empty() {
            writeln!(out, "  params: {}", s.params.join(", "))?;
        }
        writeln!(out, "  -> {}", s.outs.join(", "))?;
    }
    Ok(())
}

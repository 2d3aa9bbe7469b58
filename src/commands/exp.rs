//! `pipe exp show`: runs side by side — the parameters that differ between them,
//! status, duration and the metrics stages wrote to `metrics.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::Value;

use crate::error::Result;
use crate::runs::RunRecord;
use crate::util::table;

/// A cell of the experiment table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num(f64),
    Null,
}

impl Cell {
    fn render(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(x) => format!("{}", (x * 1e6).round() / 1e6),
            Cell::Null => "-".into(),
        }
    }

    fn from_json(v: Option<&Value>) -> Cell {
        match v {
            None | Some(Value::Null) => Cell::Null,
            Some(Value::Number(n)) => n.as_f64().map(Cell::Num).unwrap_or(Cell::Null),
            Some(Value::String(s)) => Cell::Text(s.clone()),
            Some(other) => Cell::Text(other.to_string()),
        }
    }
}

/// Column-major so it maps directly onto Parquet/Arrow.
#[derive(Debug, Clone)]
pub struct ExpTable {
    pub columns: Vec<(String, Vec<Cell>)>,
}

impl ExpTable {
    pub fn rows(&self) -> usize {
        self.columns.first().map(|c| c.1.len()).unwrap_or(0)
    }
}

/// Which runs to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub sweep: Option<String>,
    pub last: Option<usize>,
}

fn flatten(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &p, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

pub fn build(records: &[RunRecord], filter: &Filter) -> ExpTable {
    let mut runs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| match &filter.sweep {
            Some(id) => r.sweep.as_ref().is_some_and(|s| &s.id == id),
            None => true,
        })
        .collect();
    if let Some(n) = filter.last {
        let skip = runs.len().saturating_sub(n);
        runs.drain(..skip);
    }
    let params: Vec<BTreeMap<String, Value>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            flatten(&r.params, "", &mut m);
            m
        })
        .collect();
    let all_keys: BTreeSet<&String> = params.iter().flat_map(|m| m.keys()).collect();
    let differing: Vec<&String> = all_keys
        .into_iter()
        .filter(|k| {
            let first = params.first().and_then(|m| m.get(*k));
            params.iter().any(|m| m.get(*k) != first)
        })
        .collect();
    let metrics: Vec<BTreeMap<String, Value>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            for s in &r.stages {
                if let Some(v) = &s.metrics {
                    flatten(v, &s.name, &mut m);
                }
            }
            m
        })
        .collect();
    let metric_keys: BTreeSet<&String> = metrics.iter().flat_map(|m| m.keys()).collect();

    let mut columns: Vec<(String, Vec<Cell>)> = vec![
        (
            "run".into(),
            runs.iter().map(|r| Cell::Text(r.run_id.clone())).collect(),
        ),
        (
            "sweep".into(),
            runs.iter()
                .map(|r| {
                    r.sweep
                        .as_ref()
                        .map(|s| Cell::Text(format!("{}#{}", s.id, s.variant)))
                        .unwrap_or(Cell::Null)
                })
                .collect(),
        ),
        (
            "target".into(),
            runs.iter()
                .map(|r| r.target.clone().map(Cell::Text).unwrap_or(Cell::Null))
                .collect(),
        ),
        (
            "status".into(),
            runs.iter()
                .map(|r| Cell::Text(if r.ok { "ok" } else { "failed" }.into()))
                .collect(),
        ),
        (
            "seconds".into(),
            runs.iter().map(|r| Cell::Num(r.seconds)).collect(),
        ),
    ];
    for k in differing {
        columns.push((
            k.clone(),
            params.iter().map(|m| Cell::from_json(m.get(k))).collect(),
        ));
    }
    for k in metric_keys {
        columns.push((
            k.clone(),
            metrics.iter().map(|m| Cell::from_json(m.get(k))).collect(),
        ));
    }
    ExpTable { columns }
}

pub fn print(out: &mut dyn Write, t: &ExpTable, json: bool) -> std::io::Result<()> {
    if json {
        let rows: Vec<Value> = (0..t.rows())
            .map(|i| {
                let mut o = serde_json::Map::new();
                for (name, col) in &t.columns {
                    let v = match &col[i] {
                        Cell::Text(s) => Value::String(s.clone()),
                        Cell::Num(x) => serde_json::Number::from_f64(*x)
                            .map(Value::Number)
                            .unwrap_or(Value::Null),
                        Cell::Null => Value::Null,
                    };
                    o.insert(name.clone(), v);
                }
                Value::Object(o)
            })
            .collect();
        return writeln!(out, "{}", Value::Array(rows));
    }
    if t.rows() == 0 {
        return writeln!(out, "no runs recorded yet");
    }
    let header: Vec<String> = t.columns.iter().map(|c| c.0.clone()).collect();
    let rows: Vec<Vec<String>> = (0..t.rows())
        .map(|i| t.columns.iter().map(|c| c.1[i].render()).collect())
        .collect();
    write!(out, "{}", table(&header, &rows))
}

/// Load records and build the table.
pub fn load(runs_dir: &std::path::Path, filter: &Filter) -> Result<ExpTable> {
    Ok(build(&RunRecord::load_all(runs_dir)?, filter))
}

//! Parameter files (`configs/*.yaml`): loading, `--set` overrides and lookups by
//! dotted key. A config is a tree of YAML mappings; values are kept as JSON values
//! so they hash canonically.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, IoContext, Result};

/// One `--set key=value` override.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Override {
    pub key: String,
    pub value: Value,
}

impl Override {
    /// Parse `section.key=value`; the value is read as a YAML scalar or flow value
    /// (`3e-4`, `true`, `[1, 2]`, `"text"`).
    pub fn parse(s: &str) -> Result<Self> {
        let Some((key, raw)) = s.split_once('=') else {
            return Err(Error::Usage(format!(
                "invalid --set `{s}`: expected KEY=VALUE, e.g. train.lr=3e-4"
            )));
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(Error::Usage(format!(
                "invalid --set `{s}`: the key must be a dotted path such as train.lr"
            )));
        }
        let value =
            parse_value(raw).map_err(|e| Error::Usage(format!("invalid --set `{s}`: {e}")))?;
        Ok(Override {
            key: key.to_string(),
            value,
        })
    }
}

/// Read a YAML value and convert it to JSON, rejecting NaN/inf (they do not hash
/// canonically and are never a sensible parameter).
pub(crate) fn parse_value(raw: &str) -> std::result::Result<Value, String> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(raw).map_err(|e| e.to_string())?;
    yaml_to_json(&yaml)
}

pub fn yaml_to_json(v: &serde_yaml::Value) -> std::result::Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{f} is not a finite number"))?
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(seq) => Value::Array(seq.iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                if out.insert(key.clone(), yaml_to_json(v)?).is_some() {
                    return Err(format!("duplicate key `{key}`"));
                }
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(&t.value)?,
    })
}

/// A loaded parameter file with overrides applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (for error messages and run records); `None` when the
    /// pipeline names no config.
    pub file: Option<PathBuf>,
    pub root: Value,
    pub overrides: Vec<Override>,
}

impl Config {
    pub fn empty() -> Self {
        Config {
            file: None,
            root: Value::Object(Map::new()),
            overrides: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| Error::yaml(path, &e))?;
        let root = match yaml {
            serde_yaml::Value::Null => Value::Object(Map::new()),
            y @ serde_yaml::Value::Mapping(_) => {
                yaml_to_json(&y).map_err(|e| Error::invalid(path, "document", e))?
            }
            _ => {
                return Err(Error::invalid(
                    path,
                    "document",
                    "a config must be a mapping of sections (e.g. `train: {lr: 0.001}`)",
                ))
            }
        };
        Ok(Config {
            file: Some(path.to_path_buf()),
            root,
            overrides: Vec::new(),
        })
    }

    pub fn display_file(&self) -> String {
        self.file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<no config>".into())
    }

    /// Apply `--set` overrides. Each key must already exist in the file: a typo must
    /// not silently add a parameter nobody reads.
    pub fn apply(&mut self, overrides: &[Override]) -> Result<()> {
        for o in overrides {
            let file = self.display_file();
            let slot = lookup_mut(&mut self.root, &o.key).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown config key `{}` in --set: it is not in {file}",
                    o.key
                ))
            })?;
            *slot = o.value.clone();
            self.overrides.push(o.clone());
        }
        Ok(())
    }

    pub fn get(&self, dotted: &str) -> Option<&Value> {
        let mut cur = &self.root;
        for part in dotted.split('.') {
            cur = cur.as_object()?.get(part)?;
        }
        Some(cur)
    }

    /// Every leaf key (dotted), for the "no stage reads it" check.
    pub fn leaf_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_leaves(&self.root, String::new(), &mut out);
        out
    }
}

fn lookup_mut<'a>(root: &'a mut Value, dotted: &str) -> Option<&'a mut Value> {
    let mut cur = root;
    for part in dotted.split('.') {
        cur = cur.as_object_mut()?.get_mut(part)?;
    }
    Some(cur)
}

fn collect_leaves(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_leaves(v, p, out);
            }
        }
        _ if !prefix.is_empty() => out.push(prefix),
        _ => {}
    }
}

/// Render a parameter value for `${...}` substitution in a command: scalars as
/// plain text, anything else as compact JSON.
pub(crate) fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_yaml_scalars() {
        let cases = [
            ("train.lr=3e-4", serde_json::json!(3e-4)),
            ("a.b=7", serde_json::json!(7)),
            ("a.b=true", serde_json::json!(true)),
            ("a.b=[1, 2]", serde_json::json!([1, 2])),
            ("a.b=hello world", serde_json::json!("hello world")),
        ];
        for (s, want) in cases {
            let o = Override::parse(s).expect(s);
            assert_eq!(o.value, want, "{s}");
        }
        assert!(Override::parse("noequals").is_err());
        assert!(Override::parse("a..b=1").is_err());
        assert!(Override::parse("a.b=.nan").is_err());
    }

    #[test]
    fn set_rejects_unknown_key_and_replaces_known() {
        let mut c = Config {
            file: Some("c.yaml".into()),
            root: serde_json::json!({"train": {"lr": 0.1}}),
            overrides: vec![],
        };
        let err = c
            .apply(&[Override::parse("train.lrr=1").expect("parse")])
            .expect_err("unknown key");
        assert!(err.to_string().contains("train.lrr"), "{err}");
        c.apply(&[Override::parse("train.lr=0.5").expect("parse")])
            .expect("known key");
        assert_eq!(c.get("train.lr"), Some(&serde_json::json!(0.5)));
        assert_eq!(c.leaf_keys(), vec!["train.lr".to_string()]);
    }
}

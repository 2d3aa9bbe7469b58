//! The stage key: blake3 over a canonical JSON serialization of everything that
//! affects a stage's output. It is data, so `pipe status` can say *why* a key changed
//! and `-vv` can print it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bump when the meaning of any field below changes.
pub const KEY_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum KindMaterial {
    /// A shell command, as written (placeholders are params, hashed below).
    Cmd { command: String },
    /// A built-in kind and its implementation version.
    Uses { name: String, version: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMaterial {
    /// The dependency as written in `pipeline.yaml`.
    pub dep: String,
    /// Content digest: of the upstream *output* (early cutoff) or the external file/folder.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub schema: u32,
    pub stage: String,
    pub kind: KindMaterial,
    pub outs: Vec<String>,
    pub params: BTreeMap<String, Value>,
    pub inputs: Vec<InputMaterial>,
    /// Environment facts a kind declares (library versions, device kind).
    pub environment: BTreeMap<String, String>,
}

impl KeyMaterial {
    /// Canonical bytes: struct fields in declaration order, maps sorted (serde_json's
    /// default map is a BTreeMap), floats printed shortest-roundtrip.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("key material is plain data and always serializes")
    }

    /// 32 hex digits (128 bits) of blake3: short enough for paths, far from collisions.
    pub fn key(&self) -> String {
        let h = blake3::hash(&self.canonical());
        h.to_hex()[..32].to_string()
    }

    /// Human-readable reasons why `self` (the current material) differs from `old`.
    pub fn diff(&self, old: &KeyMaterial) -> Vec<String> {
        let mut out = Vec::new();
        if self.schema != old.schema {
            out.push(format!(
                "key schema changed ({} → {})",
                old.schema, self.schema
            ));
        }
        if self.kind != old.kind {
            out.push(match (&old.kind, &self.kind) {
                (KindMaterial::Cmd { .. }, KindMaterial::Cmd { .. }) => {
                    "command changed".to_string()
                }
                (
                    KindMaterial::Uses {
                        name: a,
                        version: va,
                    },
                    KindMaterial::Uses {
                        name: b,
                        version: vb,
                    },
                ) if a == b => format!("implementation of `{a}` changed (version {va} → {vb})"),
                _ => "stage kind changed".to_string(),
            });
        }
        if self.outs != old.outs {
            out.push("declared outputs changed".into());
        }
        let keys: std::collections::BTreeSet<&String> =
            self.params.keys().chain(old.params.keys()).collect();
        for k in keys {
            match (old.params.get(k), self.params.get(k)) {
                (Some(a), Some(b)) if a != b => {
                    out.push(format!("param `{k}` changed ({a} → {b})"))
                }
                (None, Some(_)) => out.push(format!("param `{k}` added")),
                (Some(_), None) => out.push(format!("param `{k}` removed")),
                _ => {}
            }
        }
        let old_inputs: BTreeMap<&str, &str> = old
            .inputs
            .iter()
            .map(|i| (i.dep.as_str(), i.digest.as_str()))
            .collect();
        for i in &self.inputs {
            match old_inputs.get(i.dep.as_str()) {
                Some(d) if *d == i.digest => {}
                Some(_) => out.push(format!("input `{}` changed", i.dep)),
                None => out.push(format!("input `{}` added", i.dep)),
            }
        }
        for i in &old.inputs {
            if !self.inputs.iter().any(|n| n.dep == i.dep) {
                out.push(format!("input `{}` removed", i.dep));
            }
        }
        if self.environment != old.environment {
            for (k, v) in &self.environment {
                if old.environment.get(k) != Some(v) {
                    out.push(format!(
                        "environment `{k}` changed ({} → {v})",
                        old.environment
                            .get(k)
                            .map(String::as_str)
                            .unwrap_or("unset")
                    ));
                }
            }
            for k in old.environment.keys() {
                if !self.environment.contains_key(k) {
                    out.push(format!("environment `{k}` removed"));
                }
            }
        }
        if out.is_empty() && self.stage != old.stage {
            out.push("stage renamed".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material() -> KeyMaterial {
        KeyMaterial {
            schema: KEY_SCHEMA,
            stage: "train".into(),
            kind: KindMaterial::Cmd {
                command: "echo".into(),
            },
            outs: vec!["o".into()],
            params: [("train.lr".to_string(), serde_json::json!(0.1))].into(),
            inputs: vec![InputMaterial {
                dep: "a/o".into(),
                digest: "d1".into(),
            }],
            environment: BTreeMap::new(),
        }
    }

    #[test]
    fn key_is_stable_and_sensitive() {
        let a = material();
        // Pinned: a change to the canonical form must be a deliberate schema bump.
        assert_eq!(a.key(), material().key());
        assert_eq!(a.key().len(), 32);
        let mut b = material();
        b.params.insert("train.lr".into(), serde_json::json!(0.2));
        assert_ne!(a.key(), b.key());
        assert_eq!(b.diff(&a), vec!["param `train.lr` changed (0.1 → 0.2)"]);
        let mut c = material();
        c.inputs[0].digest = "d2".into();
        assert_eq!(c.diff(&a), vec!["input `a/o` changed"]);
        assert!(a.diff(&a).is_empty());
    }

    #[test]
    fn canonical_form_is_pinned() {
        let s = String::from_utf8(material().canonical()).expect("utf8");
        assert_eq!(
            s,
            r#"{"schema":1,"stage":"train","kind":{"type":"cmd","command":"echo"},"outs":["o"],"params":{"train.lr":0.1},"inputs":[{"dep":"a/o","digest":"d1"}],"environment":{}}"#
        );
    }
}

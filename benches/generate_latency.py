#!/usr/bin/env python3
"""`pipe generate` latency on this machine: 1, 8 and 64 prompts at 10, 25, 50 and 100
DDIM steps, against 1,000-step DDPM sampling of the same model (MDM's default,
ancestral: `--steps 1000` with `generate.eta = 1`) as the reference point.

Uses the trained model of the default config (`pipe run train` first; cached after).
Reports, per setting (one prompt: the median of 3 runs): sampling seconds (model and encoder loaded), seconds per
motion, motions/s, and for one prompt the whole command's wall time (process start,
DAG check, model and encoder load, sampling, writing .npy/.xml/.bvh/Parquet). The
table is without the .png/.gif previews (`--no-previews`); one line after it gives
the default command, previews included (7 runs: the latency target's case).

Then one prompt at the config's default steps, 7 runs alternating `pipe generate`
(which encodes the prompts while `pipe-torch` starts) with `pipe-torch generate`
alone (everything in one process, in turn), and the ratio of their medians.

Usage: benches/generate_latency.py [--seconds 4] [--pipe target/debug/pipe]
"""
import argparse, json, shutil, subprocess, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = [
    "a person walks forward", "someone turns to the left", "a man waves with his right hand",
    "a person jumps in place", "a woman kicks with her leg", "the person squats down",
    "a person runs forward", "someone sits down on a chair",
]


def run(pipe, prompts, steps, seconds, extra=()):
    """One `pipe generate` (`steps` None: the config's default)."""
    out = Path(tempfile.mkdtemp(prefix="pipe-gen-bench-"))
    args = [pipe, "generate", "--json", "-q", "--seconds", str(seconds),
            *([] if steps is None else ["--steps", str(steps)]),
            "--out", str(out), *extra, *prompts]
    t0 = time.perf_counter()
    r = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(r.stdout)["seconds"], wall


def median_run(k, *args, **kw):
    """The median of k runs (sampling seconds, whole-command seconds): this machine's
    speed drifts by ±20 % from run to run."""
    runs = sorted(run(*args, **kw) for _ in range(k))
    return runs[k // 2][0], sorted(w for _, w in runs)[k // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--pipe", default=str(ROOT / "target/debug/pipe"))
    ap.add_argument("--ddpm", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args()
    subprocess.run([a.pipe, "run", "train", "-q"], cwd=ROOT, check=True)
    run(a.pipe, PROMPTS[:1], 10, a.seconds)  # warm the page cache
    nop = ["--no-previews"]
    print(f"pipe generate, {a.seconds:g}-second motions, CPU (generate.threads of the config), guidance on")
    print("| prompts | steps | sampling s | s/motion | motions/s | whole command s |")
    print("|---|---|---|---|---|---|")
    for n in [1, 8, 64]:
        prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" ({i})") for i in range(n)]
        for steps in [10, 25, 50, 100]:
            # One prompt: the median of 3 runs (the latency target); more: one run.
            s, wall = median_run(3 if n == 1 else 1, a.pipe, prompts, steps, a.seconds, nop)
            print(f"| {n} | {steps} | {s:.2f} | {s / n:.3f} | {n / s:.1f} | {wall:.2f} |")
    # The latency target's own case: the default command, previews included.
    runs = [run(a.pipe, PROMPTS[:1], None, a.seconds) for _ in range(7)]
    s = sorted(x for x, _ in runs)[3]
    w = sorted(x for _, x in runs)
    print(f"one prompt, the config's default steps, with the .png/.gif previews (the default), 7 runs: "
          f"{s:.2f} s sampling + files, whole command median {w[3]:.2f} s, range {w[0]:.2f}-{w[-1]:.2f}")
    # `pipe generate` starts `pipe-torch` and encodes the prompts beside its start;
    # `pipe-torch generate` alone does everything in one process, one after the other
    # (what `pipe generate` did before). Alternating, so a drift hits both alike.
    torch = str(Path(a.pipe).with_name("pipe-torch"))
    walls = {a.pipe: [], torch: []}
    for _ in range(7):
        for exe in walls:
            walls[exe].append(run(exe, PROMPTS[:1], None, a.seconds, nop)[1])
    med = {exe: sorted(w)[3] for exe, w in walls.items()}
    print("one prompt, the config's default steps, no previews, whole command, 7 alternating runs:")
    print(f"  pipe generate (prompts encoded beside pipe-torch's start): median {med[a.pipe]:.2f} s, "
          f"range {min(walls[a.pipe]):.2f}-{max(walls[a.pipe]):.2f}")
    print(f"  pipe-torch generate (one process, in turn):              median {med[torch]:.2f} s, "
          f"range {min(walls[torch]):.2f}-{max(walls[torch]):.2f}")
    print(f"  ratio: {med[torch] / med[a.pipe]:.2f}x")
    if a.ddpm:
        s, wall = run(a.pipe, PROMPTS[:1], 1000, a.seconds, ["--set", "generate.eta=1.0", "--set", "generate.eta_from=0", *nop])
        print(f"| 1 | 1000 (DDPM) | {s:.2f} | {s:.3f} | {1 / s:.1f} | {wall:.2f} |")
        for steps in [None, 50]:
            sd, _ = run(a.pipe, PROMPTS[:1], steps, a.seconds, nop)
            print(f"DDIM {steps or 'default'} steps vs DDPM 1000 steps, one motion: {s / sd:.1f}x faster")


if __name__ == "__main__":
    main()

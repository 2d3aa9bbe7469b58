#!/usr/bin/env python3
"""Held-out accuracy against training minutes on the demo data.

Runs `pipe sweep configs/sweeps/minutes.yaml` (the demo model with per-token
cross-attention trained for 550, 1650 and 2250 steps, and with the pooled vector for
2250, each then evaluated; about 70 minutes the first time on a 2-core CPU, instant
once cached), prints a table and draws benches/accuracy_vs_minutes.png.
Usage (after scripts/setup): .venv/bin/python benches/accuracy_vs_minutes.py [--out PNG]
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent


def run_sweep():
    out = subprocess.run(
        [str(ROOT / "target/debug/pipe"), "sweep", "configs/sweeps/minutes.yaml", "--json", "-j", "1"],
        check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    ).stdout
    rows = json.loads(out)
    points = []
    for r in rows:
        if r.get("status") != "ok":
            sys.exit(f"a variant failed: {r.get('run')} {r.get('status')}")
        points.append({
            "conditioning": r.get("model.text_conditioning", "pooled"),
            "steps": int(r["train.steps"]),
            "minutes": r["train.train_minutes"],
            "heldout": 100 * r["evaluate.accuracy_heldout"],
            "train": 100 * r["evaluate.accuracy_train_sentences"],
            "val_loss": r["train.val_loss"],
        })
    return sorted(points, key=lambda p: (p["conditioning"], p["steps"]))


def plot(points, path):
    w, h, m = 640, 400, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xmax = max(25.0, max(p["minutes"] for p in points) * 1.1)
    x = lambda v: m + (w - 2 * m) * v / xmax
    y = lambda v: h - m - (h - 2 * m) * v / 100.0
    d.line([(m, m), (m, h - m), (w - m, h - m)], fill="black")
    for v in range(0, 101, 20):
        d.line([(m - 4, y(v)), (w - m, y(v))], fill=(225, 225, 225))
        d.text((m - 30, y(v) - 6), f"{v}%", fill="black")
    for v in range(0, int(xmax) + 1, 5):
        d.text((x(v) - 6, h - m + 8), str(v), fill="black")
    d.text((w / 2 - 80, h - m + 26), "training minutes (2-core CPU)", fill="black")
    d.line([(m, y(90)), (w - m, y(90))], fill=(200, 60, 60))
    d.text((w - m - 70, y(90) - 14), "target 90%", fill=(200, 60, 60))
    styles = {("tokens", "heldout"): ((30, 90, 200), "cross-attention: held-out paraphrases"),
              ("tokens", "train"): ((40, 160, 80), "cross-attention: training sentences"),
              ("pooled", "heldout"): ((230, 130, 20), "pooled vector: held-out"),
              ("pooled", "train"): ((150, 90, 160), "pooled vector: training sentences")}
    for i, ((cond, key), (colour, label)) in enumerate(styles.items()):
        xy = [(x(p["minutes"]), y(p[key])) for p in points if p["conditioning"] == cond]
        if not xy:
            continue
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for px, py in xy:
            d.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour)
        ly = m + 4 + 14 * i
        d.line([(m + 10, ly + 6), (m + 30, ly + 6)], fill=colour, width=2)
        d.text((m + 36, ly), label, fill="black")
    d.text((m, 20), "demo config: action accuracy of generated motions vs training time", fill="black")
    img.save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benches/accuracy_vs_minutes.png"))
    a = ap.parse_args()
    points = run_sweep()
    print("| text conditioning | steps | training minutes | held-out paraphrases | training sentences | val loss |")
    print("|---|---:|---:|---:|---:|---:|")
    for p in points:
        print(f"| {p['conditioning']} | {p['steps']} | {p['minutes']:.1f} | {p['heldout']:.1f} % | {p['train']:.1f} % | {p['val_loss']:.3f} |")
    plot(points, a.out)
    print(f"plot: {a.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""pipe vs DVC on the same project, same machine, same run.

An external input folder of N files (default 4,000 x 1 MB) feeds a 3-stage DAG.
Measured, with the page cache warm for both tools:
  - first run (hashing the folder): seconds and GB/s
  - no-op run (nothing changed) and status: median of several runs
Usage: benches/runner_vs_dvc.py [--files 4000] [--mb 1] [--dir /tmp/pipe-bench] [--dvc PATH]
DVC comes from `pip install dvc` (the script prints which version it ran).
"""
import argparse, os, shutil, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PIPELINE = """stages:
  count:
    cmd: 'ls $PIPE_DEP_0 | wc -l > $PIPE_OUT/count.txt'
    deps: [data/raw]
    outs: [count.txt]
  double:
    cmd: 'cat $PIPE_DEP_0 $PIPE_DEP_0 > $PIPE_OUT/double.txt'
    deps: [count/count.txt]
    outs: [double.txt]
  report:
    cmd: 'wc -l < $PIPE_DEP_0 > $PIPE_OUT/report.txt'
    deps: [double/double.txt]
    outs: [report.txt]
"""

DVC_YAML = """stages:
  count:
    cmd: ls data/raw | wc -l > dvc_out/count.txt
    deps: [data/raw]
    outs: [dvc_out/count.txt]
  double:
    cmd: cat dvc_out/count.txt dvc_out/count.txt > dvc_out/double.txt
    deps: [dvc_out/count.txt]
    outs: [dvc_out/double.txt]
  report:
    cmd: wc -l < dvc_out/double.txt > dvc_out/report.txt
    deps: [dvc_out/double.txt]
    outs: [dvc_out/report.txt]
"""


def timed(cmd, cwd, check=True):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return dt, r


def median_of(n, cmd, cwd):
    return statistics.median(timed(cmd, cwd)[0] for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--dir", default="/tmp/pipe-bench")
    ap.add_argument("--dvc", default=shutil.which("dvc") or str(Path.home() / ".cache/pipe-bench-venv/bin/dvc"))
    ap.add_argument("--pipe", default=str(ROOT / "target/debug/pipe"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    work = Path(a.dir)
    raw = work / "data/raw"
    size = int(a.mb * (1 << 20))
    if not (raw.is_dir() and len(os.listdir(raw)) == a.files and all(
            (raw / f"f{i:05d}.bin").stat().st_size == size for i in (0, a.files - 1))):
        print(f"generating {a.files} files of {a.mb} MB in {raw} ...", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        raw.mkdir(parents=True)
        for i in range(a.files):
            (raw / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    for p in ["artifacts", ".dvc", "dvc.lock", "dvc_out", ".dvcignore"]:
        q = work / p
        shutil.rmtree(q, ignore_errors=True) if q.is_dir() else q.unlink(missing_ok=True)
    (work / "pipeline.yaml").write_text(PIPELINE)
    (work / "dvc.yaml").write_text(DVC_YAML)
    (work / "dvc_out").mkdir()
    total = a.files * size
    # Warm the page cache so both tools hash from memory (and files are > 2 s old,
    # past pipe's racy-timestamp window).
    subprocess.run(f"cat {raw}/* > /dev/null", shell=True, check=True)
    time.sleep(2.1)

    pipe = [a.pipe, "-q"]
    t_pipe_first, _ = timed(pipe + ["run", "-j", "2"], work)
    t_pipe_noop = median_of(a.repeat, pipe + ["run"], work)
    t_pipe_status = median_of(a.repeat, pipe + ["status"], work)
    _, r = timed(pipe + ["run", "--json"], work)
    assert '"status":"cached"' in r.stdout and '"ran"' not in r.stdout, r.stdout

    dvc = [a.dvc]
    _, v = timed(dvc + ["--version"], work)
    timed(dvc + ["init", "--no-scm", "-q"], work)
    timed(dvc + ["config", "core.analytics", "false"], work)
    t_dvc_first, _ = timed(dvc + ["repro", "-q"], work)
    t_dvc_noop = median_of(max(3, a.repeat // 2), dvc + ["repro", "-q"], work)
    t_dvc_status = median_of(max(3, a.repeat // 2), dvc + ["status", "-q"], work)

    gb = total / 1e9
    rows = [
        ("first run (hash %.1f GB)" % gb, t_pipe_first, t_dvc_first),
        ("no-op run", t_pipe_noop, t_dvc_noop),
        ("status", t_pipe_status, t_dvc_status),
    ]
    print(f"\n{a.files} files x {a.mb} MB, 3-stage DAG, page cache warm, {os.cpu_count()} CPUs; DVC {v.stdout.strip()}")
    print(f"{'':26} {'pipe':>10} {'dvc':>10} {'dvc/pipe':>9}")
    for name, p, d in rows:
        print(f"{name:26} {p*1000:>8.1f}ms {d*1000:>8.1f}ms {d/p:>8.1f}x")
    print(f"{'first-run throughput':26} {gb/t_pipe_first:>6.2f}GB/s {gb/t_dvc_first:>6.2f}GB/s")


if __name__ == "__main__":
    main()

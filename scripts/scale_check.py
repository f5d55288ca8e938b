"""Measure the data path at scale on this machine: prepare generated corpora of several sizes and train a few
steps on each, recording wall time, throughput and peak RSS of every process; the JSON it writes is what
docs/scaling.md quotes.

    python scripts/scale_check.py --megabytes 50 500 --work /tmp/scale --out docs/measurements/scale_cpu.json

Each step runs in its own process (peak RSS is the process's own ru_maxrss). Corpora are made by
scripts/synthetic_corpus.py and kept in --work for reruns.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from synthetic_corpus import write_corpus  # noqa: E402

MEASURED = """
import runpy, sys, time
import flm_core.cli  # imports are not timed
sys.argv = ["flm_core", *sys.argv[1:]]
start = time.monotonic()
try:
    runpy.run_module("flm_core", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
peak, anon, mapped = (int(status[key].split()[0]) for key in ("VmHWM", "RssAnon", "RssFile"))
print("MEASURED", time.monotonic() - start, peak, anon, mapped, code, file=sys.stderr)
"""
# VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across fork and exec.


def measured(*args: str, threads: int) -> dict:
    """Run `python -m flm_core ARGS` in a fresh process: wall seconds (after imports), peak RSS (MB), and at
    the end the resident anonymous memory and the resident file pages (the mapped shards, the libraries)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", MEASURED, *args], capture_output=True, text=True, env=env,
                          cwd=REPO)
    line = next(l for l in proc.stderr.splitlines() if l.startswith("MEASURED"))
    _, seconds, rss_kb, anon_kb, file_kb, code = line.split()
    if code != "0":
        raise SystemExit(f"flm_core {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return {"seconds": round(float(seconds), 2), "peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "final_rss_anon_mb": round(int(anon_kb) / 1024, 1), "final_rss_file_mb": round(int(file_kb) / 1024, 1)}


def corpus_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.jsonl"))


def check(megabytes: float, work: Path, threads: int, train_steps: int) -> dict:
    """Prepare a generated corpus of about `megabytes` MB, then train an FLM (cpu and tiny presets) on it."""
    corpus = work / f"corpus{megabytes:g}"
    if not corpus.is_dir() or corpus_bytes(corpus) < megabytes * 1e6:
        write_corpus(corpus, megabytes)
    size = corpus_bytes(corpus)
    data = work / f"data{megabytes:g}"
    for stale in work.glob(f"train{megabytes:g}-*"):
        shutil.rmtree(stale)
    prep = measured("prepare-data", "--source", str(corpus), "--out", str(data), threads=threads)
    manifest = json.loads((data / "manifest.json").read_text())
    train = {preset: measured("train", "flm", "--data", str(data), "--out", str(work / f"train{megabytes:g}-{preset}"),
                              "--preset", preset, "--batch-size", "64", "--max-steps", str(train_steps),
                              "--eval-every", str(train_steps), "--eval-batches", "1", "--warmup-steps", "1",
                              threads=threads)
             for preset in ("cpu", "tiny")}  # tiny: activations small enough to show any data-path memory
    train_blocks = manifest["counts"]["blocks"]["train"]
    return {"corpus_mb": round(size / 1e6, 1), "train_tokens": manifest["counts"]["tokens"]["train"],
            "shards": {split: len(manifest["shards"][split]) for split in manifest["shards"]},
            "prepare": {**prep, "mb_per_s": round(size / 1e6 / prep["seconds"], 2)},
            "train": {**train, "steps": train_steps, "batch": 64, "epoch_permutation_mb": round(train_blocks * 8 / 2**20, 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, nargs="+", default=[50, 500])
    parser.add_argument("--work", type=Path, default=Path("/tmp/scale"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = []
    for megabytes in args.megabytes:
        runs.append(check(megabytes, args.work, args.threads, args.train_steps))
        print(json.dumps(runs[-1]), flush=True)
    result = {"command": "python scripts/scale_check.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "threads": args.threads, "date": time.strftime("%Y-%m-%d"), "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

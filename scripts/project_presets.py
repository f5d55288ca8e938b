"""Project the wall time and cost of the paper's training presets from a measured training throughput.

Input: `bench-speed` JSON files holding a `small`-preset FLM training row at each preset's shape (one at
K = 30522, L = 128 and one at K = 50258, L = 1024), measured on this machine's CPU or on a GPU:

    python -m flm_core bench-speed --train-kinds flm --train-preset small --vocab-size 30522 --seq-len 128 \
        --train-batch 8 --train-steps 3 --out docs/measurements/speed_small_128_cpu.json
    python scripts/project_presets.py --speed docs/measurements/speed_small_*_cpu.json --gpus 1 8 64

Three figures per preset:
- measured here: tokens/s and MFU of the row (the FLOP count of `flm_core.speed.training_throughput`,
  6 N + 12 blocks L d per token, against the matmul peak measured in the same process);
- projected for this device: the preset's tokens / the measured tokens/s;
- projected for N GPUs: the preset's FLOPs / (N x --gpu-peak-tflops x MFU), for each assumed --mfu (a GPU row's
  own MFU replaces the assumption when its JSON is a GPU's), and cost = GPU-hours x --price.
Prints a Markdown table; --out also writes the figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flm_core.config import TRAINING_PRESETS
from flm_core.data import DATA_PRESETS

VOCAB = {"bert-base-uncased": 30522, "gpt2": 50258}  # K of the released checkpoints (GPT-2 with the authors' [PAD])


def preset_budget(name: str) -> dict:
    """Tokens and training FLOPs of one preset run (same FLOP convention as bench-speed)."""
    training = TRAINING_PRESETS[name]["training"]
    seq_len, vocab = DATA_PRESETS[name]["seq_len"], VOCAB[DATA_PRESETS[name]["tokenizer"]]
    tokens = training["max_steps"] * training["batch_size"] * seq_len
    return {"preset": name, "vocab_size": vocab, "seq_len": seq_len, "steps": training["max_steps"],
            "batch": training["batch_size"], "tokens": tokens}


def measured_row(files: list[Path], vocab: int, seq_len: int) -> tuple[dict, dict]:
    """The FLM training row (and its file's header) measured at this shape; a compiled row (the documented
    GPU command uses --compile) is preferred to an eager one."""
    found = [(row, result) for path in files for result in [json.loads(path.read_text())]
             for row in result.get("training", [])
             if (row["kind"], row["preset"], row.get("vocab_size"), row["seq_len"]) == ("flm", "small", vocab, seq_len)]
    if not found:
        raise SystemExit(f"no small-preset FLM row at K = {vocab}, L = {seq_len} in {[str(f) for f in files]}")
    return max(found, key=lambda pair: bool(pair[0].get("compiled")))


def project(files: list[Path], gpus: list[int], peak_tflops: float, mfus: list[float], price: float) -> list[dict]:
    rows = []
    for name in TRAINING_PRESETS:
        budget = preset_budget(name)
        row, header = measured_row(files, budget["vocab_size"], budget["seq_len"])
        flops_per_token = row["achieved_gflops"] * 1e9 / row["tokens_per_second"]
        total_flops = flops_per_token * budget["tokens"]
        gpu_measured = "cuda" in header.get("device", "").lower() or "nvidia" in header.get("device", "").lower()
        for mfu in ([row["mfu"]] if gpu_measured else mfus):
            for n in gpus:
                hours = total_flops / (n * peak_tflops * 1e12 * mfu) / 3600
                rows.append({**budget, "flops": total_flops, "measured_on": header.get("device"),
                             "measured_tokens_per_second": row["tokens_per_second"], "measured_mfu": row["mfu"],
                             "this_device_years": budget["tokens"] / row["tokens_per_second"] / 3600 / 24 / 365,
                             "compiled": bool(row.get("compiled")),
                             "gpus": n, "mfu_assumed": mfu, "mfu_source": "measured" if gpu_measured else "assumed",
                             "wall_hours": hours, "gpu_hours": hours * n, "cost": hours * n * price})
    return rows


def markdown(rows: list[dict], peak_tflops: float, price: float) -> str:
    lines = [f"| preset | tokens | training FLOPs | measured here | GPUs | MFU | wall time | GPU-hours | cost at ${price:g}/GPU-h |",
             "|---|--:|--:|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        here = (f"{r['measured_tokens_per_second']:,.0f} tok/s, MFU {r['measured_mfu']:.0%} "
                f"({r['this_device_years']:,.0f} years)")
        wall = f"{r['wall_hours']:,.1f} h" if r["wall_hours"] < 48 else f"{r['wall_hours'] / 24:,.1f} days"
        lines.append(f"| {r['preset']} | {r['tokens'] / 1e9:,.1f}B | {r['flops']:.2e} | {here} | {r['gpus']} | "
                     f"{r['mfu_assumed']:.0%} ({r['mfu_source']}) | {wall} | {r['gpu_hours']:,.0f} | "
                     f"${r['cost']:,.0f} |")
    lines.append(f"\nGPU: {peak_tflops:g} bf16 TFLOP/s matmul peak per GPU, times the MFU of the row.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=Path, nargs="+", required=True, help="bench-speed JSON files")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--gpu-peak-tflops", type=float, default=406.0,
                        help="bf16 matmul peak per GPU (406: measured by bench-speed on an H200, "
                             "docs/measurements/speed_h200_v0.json; the data sheet says 989 dense)")
    parser.add_argument("--mfu", type=float, nargs="+", default=[0.115, 0.5],
                        help="utilisation on the GPU: 0.115 is what our 7M cpu-preset FLM measured on that H200 "
                             "(a reference, not a bound); 0.5 is assumed for the small model")
    parser.add_argument("--price", type=float, default=3.0, help="dollars per GPU-hour")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = project(args.speed, args.gpus, args.gpu_peak_tflops, args.mfu, args.price)
    print(markdown(rows, args.gpu_peak_tflops, args.price))
    if args.out:
        args.out.write_text(json.dumps({"command": "python scripts/project_presets.py " + " ".join(sys.argv[1:]),
                                        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

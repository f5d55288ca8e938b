"""CPU cost of the released model size: seconds for one-step FMLM, seconds per FLM (Euler) step, the
sampler's overhead over its bare network calls, the cost of recording a trajectory, peak RSS.

Random weights of the released shape (hidden 768, 12 blocks, 12 heads, cond 128, K = 30522, L = 128)
are written in the released hub-mixin layout (config.json + model.safetensors), then each model is
loaded with flm_core.load in a fresh process (so that its peak RSS is its own) and timed with
flm_core.speed.sampler_overhead (load excluded). Prints one JSON object.

    python scripts/bench_released.py [--batch-sizes 1 4] [--repeats 3] [--flm-steps 2]

Ratios are measured inside one process, so they hold on a shared machine better than the seconds do.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: flm_core

RELEASED = dict(vocab_size=30522, seq_len=128, hidden_size=768, n_blocks=12, n_heads=12, cond_dim=128)


def write_standin(folder: Path, kind: str) -> int:
    """Released hub layout with N(0, 0.02^2) weights (norms 1); returns the parameter count."""
    from safetensors.torch import save_file

    from flm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
    from flm_core.config import ModelConfig
    from flm_core.kinds import kind_of
    from flm_core.models import DiT

    double = kind_of(kind).two_times
    network = DiT(ModelConfig(double_time=double, learnable_loss_weighting=double, dropout=0.0, **RELEASED))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in network.named_parameters():
            param.copy_(torch.ones_like(param) if "norm" in name else 0.02 * torch.randn(param.shape, generator=generator))
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(folder / WEIGHTS_FILE))
    config = {"algo": {"name": "flm_distill_double" if double else "flm", "causal_attention": False,
                       "time_conditioning": True, "double_temb": double, "learnable_loss_weighting": double},
              "model": {"hidden_size": 768, "cond_dim": 128, "length": 128, "n_blocks": 12, "n_heads": 12,
                        "dropout": 0.1},
              "data": {"tokenizer_name_or_path": "bert-base-uncased"}, "vocab_size": RELEASED["vocab_size"]}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return sum(p.numel() for p in network.parameters())


def measure(folder: Path, kind: str, batch_sizes: list[int], repeats: int, flm_steps: int) -> dict:
    """Runs in its own process: load, warm up, then time generate() for each batch size."""
    import flm_core
    from flm_core.speed import peak_memory_mb, sampler_overhead

    cpu = torch.device("cpu")
    start = time.perf_counter()
    pipe = flm_core.load(folder)
    out = {"kind": pipe.kind, "load_seconds": round(time.perf_counter() - start, 2),
           "rss_after_load_mb": round(peak_memory_mb(cpu))}
    steps = 1 if pipe.spec.two_times else flm_steps
    for b in batch_sizes:  # medians after a warm-up: bare network call, generation, recorded generation
        row = sampler_overhead(pipe, b, steps, repeats)
        out[f"batch_{b}"] = {**{k: v for k, v in row.items() if k not in ("kind", "checkpoint", "batch")},
                             "peak_rss_mb": round(peak_memory_mb(cpu))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flm-steps", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        print(json.dumps(measure(Path(folder), kind, args.batch_sizes, args.repeats, args.flm_steps)))
        return
    from flm_core.checkpoint import WEIGHTS_FILE
    from flm_core.environment import processor_name

    result = {"device": "cpu", "cpu": processor_name(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load_average_before": os.getloadavg(), "shape": RELEASED}
    with tempfile.TemporaryDirectory(prefix="bench_released_") as tmp:
        for kind in ("fmlm", "flm"):
            folder = Path(tmp) / kind
            result.setdefault("parameters", {})[kind] = write_standin(folder, kind)
            child = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), "--repeats",
                                    str(args.repeats), "--flm-steps", str(args.flm_steps), "--batch-sizes",
                                    *map(str, args.batch_sizes)], capture_output=True, text=True, check=True)
            result[kind] = json.loads(child.stdout.strip().splitlines()[-1])
            (folder / WEIGHTS_FILE).unlink()
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

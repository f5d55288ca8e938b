"""CPU cost of the released model sizes: seconds for one-step FMLM, seconds per FLM (Euler) step, the
sampler's overhead over its bare network calls, the cost of recording a trajectory, peak RSS.

Random weights of a released shape (hidden 768, 12 blocks, 12 heads, cond 128; LM1B: K = 30522,
L = 128; OWT: K = 50258, L = 1024) are written in the released hub-mixin layout (config.json +
model.safetensors, and for OWT a stand-in tokenizer.json of the right size, since only the ids matter
here), then each model is loaded with flm_core.load in a fresh process (so that its peak RSS is its
own) and timed with flm_core.speed.sampler_overhead (load excluded). Prints one JSON object.

    python scripts/bench_released.py [--sizes lm1b owt] [--batch-sizes 1 4] [--repeats 3] [--flm-steps 2]
        [--threads N]

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

WIDTHS = dict(hidden_size=768, n_blocks=12, n_heads=12, cond_dim=128)  # configs/model/small.yaml
SHAPES = {"lm1b": dict(vocab_size=30522, seq_len=128, tokenizer="bert-base-uncased", **WIDTHS),
          "owt": dict(vocab_size=50258, seq_len=1024, tokenizer="gpt2", **WIDTHS)}


def write_gpt2_ids(folder: Path, vocab_size: int) -> None:
    """A word-level tokenizer.json with GPT-2's 50257 ids (the loader appends [PAD]): ids only, no merges."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    vocab = {f"t{i}": i for i in range(vocab_size - 2)} | {"<|endoftext|>": vocab_size - 2}
    Tokenizer(WordLevel(vocab, unk_token="<|endoftext|>")).save(str(folder / "tokenizer.json"))


def write_standin(folder: Path, kind: str, size: str) -> int:
    """Released hub layout with N(0, 0.02^2) weights (norms 1); returns the parameter count."""
    from safetensors.torch import save_file

    from flm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
    from flm_core.config import ModelConfig
    from flm_core.kinds import kind_of
    from flm_core.models import DiT

    shape = dict(SHAPES[size])
    tokenizer = shape.pop("tokenizer")
    double = kind_of(kind).two_times
    network = DiT(ModelConfig(double_time=double, learnable_loss_weighting=double, dropout=0.0, **shape))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in network.named_parameters():
            param.copy_(torch.ones_like(param) if "norm" in name else 0.02 * torch.randn(param.shape, generator=generator))
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(folder / WEIGHTS_FILE))
    config = {"algo": {"name": "flm_distill_double" if double else "flm", "causal_attention": False,
                       "time_conditioning": True, "double_temb": double, "learnable_loss_weighting": double},
              "model": {**WIDTHS, "length": shape["seq_len"], "dropout": 0.1},
              "data": {"tokenizer_name_or_path": tokenizer}, "vocab_size": shape["vocab_size"]}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    if tokenizer == "gpt2":
        write_gpt2_ids(folder, shape["vocab_size"])
    return sum(p.numel() for p in network.parameters())


def measure(folder: Path, kind: str, batch_sizes: list[int], repeats: int, flm_steps: int, threads: int) -> dict:
    """Runs in its own process: load, warm up, then time generate() for each batch size."""
    import flm_core
    from flm_core.speed import peak_memory_mb, sampler_overhead

    if threads:
        torch.set_num_threads(threads)
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
    parser.add_argument("--sizes", nargs="+", choices=sorted(SHAPES), default=["lm1b"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        print(json.dumps(measure(Path(folder), kind, args.batch_sizes, args.repeats, args.flm_steps, args.threads)))
        return
    from flm_core.checkpoint import WEIGHTS_FILE
    from flm_core.environment import processor_name

    result = {"device": "cpu", "cpu": processor_name(), "torch": torch.__version__,
              "threads": args.threads or torch.get_num_threads(), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench_released_") as tmp:
        for size in args.sizes:
            out = result[size] = {"shape": SHAPES[size], "parameters": {}}
            for kind in ("fmlm", "flm"):
                folder = Path(tmp) / size / kind
                out["parameters"][kind] = write_standin(folder, kind, size)
                child = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), "--repeats",
                                        str(args.repeats), "--flm-steps", str(args.flm_steps), "--threads",
                                        str(args.threads), "--batch-sizes", *map(str, args.batch_sizes)],
                                       capture_output=True, text=True, check=True)
                out[kind] = json.loads(child.stdout.strip().splitlines()[-1])
                (folder / WEIGHTS_FILE).unlink()
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

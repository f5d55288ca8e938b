"""Speed figures measured as ratios inside one process (`python -m flm_core bench-speed`).

- sampler overhead: wall time of an N-step generation / (N x the median time of one bare network
  call on the same batch), the two timed in alternation. 1.0 means the loop around the network costs
  nothing.
- trajectory overhead: generation with record=True / without.
- training throughput: tokens/s of full optimizer steps, and model FLOP utilisation against the
  matmul peak of the same precision measured in the same process ("flm-dense": the FLM loss with
  K-wide noise, to compare with the default low-rank draw).
- peak memory: resident set (CPU) or allocator peak (CUDA).
"""
from __future__ import annotations

import functools
import itertools
import resource
import statistics
import time
from typing import Callable

import torch

from flm_core.config import MODEL_PRESETS, ModelConfig
from flm_core.models import build_network
from flm_core.kinds import kind_of
from flm_core.objectives import flm_loss
from flm_core.pipeline import Pipeline


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one fn() call, the work it queued on the device included."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(_seconds(fn, device) for _ in range(repeats))


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """Measured GFLOP/s of a size^3 matrix product (2 size^3 FLOP) in `dtype`."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: a @ b, device, repeats)
    return 2 * size ** 3 / seconds / 1e9


def _bare_call(pipe: Pipeline, batch: int) -> Callable[[], torch.Tensor]:
    """One network call of the pipeline's sampler on a representative input.
    The AR's step is one cached call: a whole cached pass is timed, and divided by its L - 1 calls."""
    net, k, l, dev, spec = pipe.network, pipe.vocab_size, pipe.seq_len, pipe.device, pipe.spec
    s = torch.full((batch,), 0.5, device=dev)
    x = torch.randint(3, k, (batch, l), device=dev) if spec.discrete else torch.randn(batch, l, k, device=dev)
    if not spec.causal:
        return lambda: spec.call(net, x, s, s if spec.two_times else None)

    def cached_pass():
        logits, cache = net.forward_cached(x[:, :1], None)
        for i in range(1, l - 1):
            logits, cache = net.forward_cached(x[:, i:i + 1], cache)
        return logits
    return cached_pass


def sampler_overhead(pipe: Pipeline, batch: int, steps: int, repeats: int) -> dict:
    """Generation time vs the bare network calls it makes, and the cost of recording a trajectory.

    Each round times one bare call, one plain and one recorded generation (Generation.seconds: sampling
    alone, no text decoding), after one untimed round; medians over `repeats` rounds. Alternating the
    three makes a slow spell of a shared machine slow all of them alike instead of one block, and the
    order goes through all six permutations, so that none always runs in the caches one other left."""
    call = torch.inference_mode()(_bare_call(pipe, batch))
    nfe = pipe.sampler.num_steps(steps)
    timers = [lambda: _seconds(call, pipe.device), lambda: pipe.generate(batch, steps, seed=0).seconds,
              lambda: pipe.generate(batch, steps, seed=0, record=True).seconds]

    orders = list(itertools.permutations(range(3)))

    def round_seconds(r: int) -> list[float]:
        """The three timings of round r, run in the r-th of the six orders."""
        seconds = [0.0] * 3
        for i in orders[r % len(orders)]:
            seconds[i] = timers[i]()
        return seconds

    round_seconds(0)
    per_call, plain, recorded = (statistics.median(column)
                                 for column in zip(*(round_seconds(r) for r in range(repeats))))
    if pipe.spec.causal:  # the timed call was a whole cached pass
        per_call /= nfe
    return {"kind": pipe.kind, "checkpoint": pipe.path, "batch": batch, "steps": steps, "nfe": nfe,
            "seconds_per_call": per_call, "seconds_generate": plain, "seconds_generate_recorded": recorded,
            "overhead_ratio": plain / (nfe * per_call), "record_ratio": recorded / plain}


def training_throughput(variant: str, preset: str, vocab_size: int, seq_len: int, batch: int, steps: int,
                        device: torch.device, bf16: bool, compiled: bool = False) -> dict:
    """tokens/s of AdamW steps on random tokens, and FLOP utilisation vs the matmul peak. variant: a kind
    without a teacher (flm, mdlm, ar), or "flm-dense" (the FLM loss with K-wide noise instead of the
    low-rank draw). If compiled, the loss and its gradient go through torch.compile as in `train --compile`
    (compilation happens in the untimed warm-up steps)."""
    dense = variant == "flm-dense"
    spec = kind_of("flm" if dense else variant)
    config = ModelConfig(vocab_size=vocab_size, seq_len=seq_len, causal=spec.causal, **MODEL_PRESETS[preset])
    net = build_network(config).to(device)
    loss_fn = functools.partial(flm_loss, low_rank_noise=False) if dense else spec.validation_objective
    if compiled:
        loss_fn = torch.compile(loss_fn)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    tokens = torch.randint(3, vocab_size, (batch, seq_len), device=device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = loss_fn(net, tokens, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = median_seconds(step, device, steps, warmup=2)
    params = sum(p.numel() for p in net.parameters())
    # 6 N per token for the dense layers plus attention scores and values: 12 * blocks * L * d.
    flops_per_token = 6 * params + 12 * config.n_blocks * seq_len * config.hidden_size
    achieved = flops_per_token * batch * seq_len / seconds / 1e9
    peak = matmul_peak_gflops(device, torch.bfloat16 if bf16 else torch.float32)
    return {"kind": variant, "preset": preset, "parameters": params, "batch": batch, "vocab_size": vocab_size,
            "seq_len": seq_len,
            "precision": "bf16" if bf16 else "fp32", "compiled": compiled, "seconds_per_step": seconds,
            "tokens_per_second": batch * seq_len / seconds, "achieved_gflops": achieved,
            "matmul_peak_gflops": peak, "mfu": achieved / peak}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

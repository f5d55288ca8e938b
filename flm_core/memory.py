"""Memory needed before anything is allocated: weights of a config, one generation, and what the
machine has free. Callers turn a shortfall into a one-line error that says what to change."""
from __future__ import annotations

import os

import torch

BYTES_FP32 = 4


def available_bytes(device: torch.device | str = "cpu") -> float:
    """Free memory of the device: CUDA's free bytes plus what torch's cache holds unused, or the OS's
    MemAvailable (physical RAM where there is no /proc/meminfo; unlimited where neither is known)."""
    device = torch.device(device)
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + cached
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): do not refuse
        return float("inf")


def generation_bytes(model, batch: int, recorded_steps: int, top_k: int = 8) -> int:
    """Peak working memory of one sampling run beside the weights, rounded up: six (B, L, K) float32
    tensors alive at once (noise or dense state, its update, logits, probabilities, the CDF of a
    categorical draw, and one spare: about 5 were measured at batch 256), the attention scores and
    activations of one block, and the trajectory record (steps x B x L x (3k + 24) values)."""
    b, l, k, d = batch, model.seq_len, model.vocab_size, model.hidden_size
    dense = 6 * b * l * k
    attention = 2 * b * model.n_heads * l * l
    activations = 16 * b * l * d
    record = recorded_steps * b * l * (3 * top_k + 24)
    return BYTES_FP32 * (dense + attention + activations + record)


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"

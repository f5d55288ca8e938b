"""Where a figure was measured: the processor's name and a one-line description of the hardware."""
from __future__ import annotations

import platform
from pathlib import Path

import torch


def processor_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` reports (e.g. "x86_64")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device | str) -> str:
    """"<GPU name> (CUDA)" on a CUDA device, else "CPU <name>, <n> threads" (torch's intra-op threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU {processor_name()}, {torch.get_num_threads()} threads"

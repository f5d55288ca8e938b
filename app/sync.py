"""Synchronized playback: several recorded runs on one clock. Pure functions over the runs' records.

Frame 0 shows every run before its first network call (nothing decided yet); frame k of K shows each run at
its last recorded step that the clock has reached, so a one-step run jumps at its single step while a
many-step run is still forming. Clocks:
- "model time t": the record's `progress` (the model time of the state each step read, 0..1, the same
  scale for every sampler); frame k >= 1 is t = (k - 1) / (K - 1), so frame 1 shows every run's first call.
- "network calls": a step is there after (step + 1) x NFE / steps calls.
- "wall time": after (step + 1) / steps of the run's measured seconds (steps spread evenly over the run).
"""
from __future__ import annotations

import numpy as np

CLOCKS = ("model time t", "network calls", "wall time")
SYNC_FRAMES = 24


def done_at(step, progress, steps: int, nfe: int, seconds: float, clock: str) -> np.ndarray:
    """(S,) clock value at which each recorded step's sequence is there."""
    if clock == CLOCKS[0]:
        return np.asarray(progress, float)
    share = (np.asarray(step, float) + 1) / max(int(steps), 1)
    return share * (nfe if clock == CLOCKS[1] else seconds)


def clock_end(ends: list[float], clock: str) -> float:
    """The clock's last value: t = 1, else the longest run's."""
    return 1.0 if clock == CLOCKS[0] else max([e for e in ends if np.isfinite(e)] or [1.0])


def frame_value(k: int, frames: int, clock: str, end: float) -> float | None:
    """The clock at frame k of 0..frames; None at frame 0 (before any network call)."""
    if k <= 0:
        return None
    if clock == CLOCKS[0]:
        return (k - 1) / max(frames - 1, 1) * end
    return k / frames * end


def shown_index(times: np.ndarray, value: float | None) -> int:
    """The last recorded step there at clock `value`; -1 before the first."""
    if value is None:
        return -1
    reached = np.nonzero(np.asarray(times, float) <= value + 1e-9)[0]
    return int(reached[-1]) if len(reached) else -1


def clock_phrase(value: float | None, clock: str, end: float) -> str:
    """What the clock reads, for the frame's caption."""
    if value is None:
        return "before the first network call"
    if clock == CLOCKS[0]:
        return f"model time t = {value:.2f}"
    if clock == CLOCKS[1]:
        return f"{value:.0f} of {end:.0f} network calls"
    unit = (lambda s: f"{1e3 * s:.0f} ms") if end < 2 else (lambda s: f"{s:.1f} s")
    return f"{unit(value)} of {unit(end)} (this click)"

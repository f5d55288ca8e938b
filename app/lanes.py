"""The Generate page's lanes compared: token agreement, the flow map's speedups, run-time estimates."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from flm_core.kinds import kind_of


def token_diff(a: np.ndarray, b: np.ndarray, free: np.ndarray | None = None) -> dict[str, Any]:
    """Position-wise comparison of two token arrays (B, L): agreement share overall and per sample, counted
    over the `free` positions (L,) bool only when given (a prompt's positions agree by construction)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"token arrays differ in shape {a.shape} vs {b.shape}")
    same = a == b
    counted = same if free is None else same[..., np.asarray(free, bool)]
    return {"same": same, "agreement": float(counted.mean()) if counted.size else 1.0,
            "per_sample": counted.mean(axis=-1).tolist() if counted.size else []}


def flow_pair(runs: Sequence[dict]) -> tuple[dict | None, dict | None]:
    """The run of a flow with one time input (FLM) with the most steps (the teacher's best path; the first such
    run among equals) and the first run of a flow map (FMLM), or None: from the same seed both start from the
    same noise, so their tokens compare position by position."""
    flows = [r for r in runs if not kind_of(r["kind"]).discrete]
    teachers = [r for r in flows if not kind_of(r["kind"]).two_times]
    teacher = max(teachers, key=lambda r: r["gen"].steps, default=None)
    flow_map = next((r for r in flows if kind_of(r["kind"]).two_times), None)
    return teacher, flow_map


def live_speedups(lanes: Sequence[dict]) -> list[dict]:
    """Wall-time and NFE ratio of each lane over the first flow map lane (FMLM); [] without one.
    lanes: dicts with kind, seconds, nfe, name."""
    ref = next((lane for lane in lanes if kind_of(lane["kind"]).two_times), None)
    if ref is None:
        return []
    out = []
    for lane in lanes:
        if lane is ref:
            continue
        out.append({"name": lane["name"], "kind": lane["kind"],
                    "time_ratio": lane["seconds"] / max(ref["seconds"], 1e-9),
                    "nfe_ratio": lane["nfe"] / max(ref["nfe"], 1)})
    return out


def estimate_seconds(runs: Iterable[dict], path: str, nfe: int, samples: int) -> float | None:
    """Seconds a run of `nfe` network calls on `samples` samples of checkpoint `path` should take, scaled
    from the latest earlier run of that checkpoint (runs: dicts with path, n and a Generation as gen);
    None without one. Per-sample cost falls with the batch on most hardware, so this errs on the long side
    for a batch larger than the earlier one."""
    last = next((r for r in reversed(list(runs)) if r.get("path") == path and r["gen"].nfe > 0), None)
    if last is None:
        return None
    return last["gen"].seconds / last["gen"].nfe / max(last["n"], 1) * nfe * samples

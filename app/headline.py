"""The Generate page's headline: the quality-matched speedup of the shipped benchmark (benchmarks.json's
"speedups", from flm_core.bench.matched_speedups) beside the live figure of this click. Pure functions."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from flm_core.bench import ENTROPY_TOLERANCE
from flm_core.kinds import KINDS
from app.kind_style import kind_label
from app.phrases import steps_phrase, times_phrase


def read_bench_result(path: str | Path) -> dict[str, Any]:
    """The parts of a bench output besides its rows: speedups, settings, environment ({} where absent or
    unreadable; never raises)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(raw, dict):
        return {}
    speedups = [s for s in raw.get("speedups") or [] if isinstance(s, dict) and isinstance(s.get("fmlm"), str)
                and isinstance(s.get("model"), str)]
    return {"speedups": speedups, "settings": raw.get("settings") if isinstance(raw.get("settings"), dict) else {},
            "environment": raw.get("environment") if isinstance(raw.get("environment"), dict) else {}}


def _resolved(path: str | Path) -> str | None:
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):  # a link loop: not a match
        return None


def bench_index(rows: Sequence[dict], bench_path: str | Path, repo_root: str | Path) -> dict[str, str]:
    """Checkpoint folder (resolved) -> the benchmark's model label, for each model row: its "checkpoint" as
    written (relative to the folder bench ran in: the repo root, or the folder above benchmarks.json) and the
    folder of its name beside benchmarks.json (a checkpoints folder moved with its benchmark)."""
    bench_dir = Path(bench_path).parent
    index: dict[str, str] = {}
    for row in rows:
        if row.get("kind") not in KINDS:
            continue
        written = str(row.get("checkpoint") or row["model"])
        for candidate in (Path(repo_root) / written, bench_dir.parent / written, bench_dir / Path(written).name):
            key = _resolved(candidate)
            if key is not None and Path(key).is_dir():
                index.setdefault(key, row["model"])
    return index


def bench_model(index: dict[str, str], path: str) -> str | None:
    """The benchmark's label of the checkpoint at `path`, or None when the benchmark did not measure it."""
    key = _resolved(path)
    return index.get(key) if key else None


def _other_label(entry: dict, entries: Sequence[dict]) -> str:
    """'FLM', or 'FLM (flm-wiki)' where the speedups compare with several models of that kind."""
    label = kind_label(entry.get("kind"))
    several = sum(e.get("kind") == entry.get("kind") for e in entries) > 1
    return f"{label} ({entry['model']})" if several else label


def matched_sentence(entry: dict, fmlm_title: str, entries: Sequence[dict] = ()) -> str:
    """'FMLM@1 is 5.3× faster than FLM at 8 steps, where FLM first matches its quality', or, where no setting
    matches, that none does."""
    other = _other_label(entry, entries or [entry])
    if entry.get("matched") and isinstance(entry.get("speedup"), (int, float)) and math.isfinite(entry["speedup"]):
        return (f"{fmlm_title} is {times_phrase(entry['speedup'], 'faster', 'slower')} than {other} at "
                f"{steps_phrase(int(entry['steps']))}, where {other} first matches its quality")
    return (f"No setting of {other} in the benchmark matches {fmlm_title}'s quality (Gen PPL ≤ "
            f"{entry.get('fmlm_gen_ppl', float('nan')):,.0f} with entropy within {ENTROPY_TOLERANCE:.0%})")


def matched_entries(speedups: Sequence[dict], fmlm_model: str | None, lane_models: Sequence[str | None]) -> list[dict]:
    """The benchmark's speedups of one-step `fmlm_model`: those over the models in the lanes (in lane order), or
    all of them when the lanes hold none of those models."""
    mine = [s for s in speedups if fmlm_model is not None and s["fmlm"] == fmlm_model]
    wanted = list(dict.fromkeys(m for m in lane_models if m and m != fmlm_model))
    chosen = [s for m in wanted for s in mine if s["model"] == m]
    return chosen or mine


def bench_source(path: str | Path, result: dict[str, Any]) -> str:
    """Where the quality-matched figures come from, in one line."""
    settings, env = result.get("settings", {}), result.get("environment", {})
    parts = [f"`{Path(path).name}`"]
    if settings.get("num_samples"):
        parts.append(f"{settings['num_samples']} samples, median of {settings.get('repeats', '?')} timed runs")
    if env.get("device"):
        parts.append(str(env.get("accelerator") or env["device"]) + (f", {env['timestamp'][:10]}"
                                                                     if env.get("timestamp") else ""))
    if settings.get("evaluator"):
        parts.append(f"Gen PPL by `{Path(str(settings['evaluator'])).name}`")
    return "; ".join(parts)


def live_phrase(repeats: Sequence[int]) -> str:
    """'this click: median of 3 runs' (each lane's time is the median of its identical repeats), 'this click:
    medians of 3 and 1 runs' where the lanes were repeated differently."""
    counts = sorted(set(int(r) for r in repeats), reverse=True)
    if len(counts) == 1:
        return f"this click: median of {counts[0]} run{'s' if counts[0] != 1 else ''}"
    listed = ", ".join(str(c) for c in counts[:-1]) + f" and {counts[-1]}"
    return f"this click: medians of {listed} runs"


def speed_phrase(ratio: float) -> str:
    """'27× faster', '1.6× slower'; within 5 % either way 'about as fast'."""
    return "about as fast" if 1 / 1.05 <= ratio <= 1.05 else times_phrase(ratio, "faster", "slower")

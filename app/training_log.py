"""The training log of the run that made a checkpoint's weights: its metrics.jsonl cut at the step the weights
were exported at (the last stage of the card data, flm_core.cards), and a sentence that says which stage and
step the weights are from. Pure functions."""
from __future__ import annotations

from typing import Any, Sequence


def exported_step(card: dict[str, Any] | None) -> int | None:
    """The step of the last stage (the run that made these weights), or None without card data."""
    stages = [s for s in (card or {}).get("stages") or [] if isinstance(s, dict)]
    step = stages[-1].get("steps") if stages else None
    return int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None


def up_to(records: Sequence[dict], step: int | None) -> list[dict]:
    """The records at or before `step` (all of them when step is None)."""
    if step is None:
        return list(records)
    return [r for r in records if isinstance(r.get("step"), (int, float)) and r["step"] <= step]


def weights_note(card: dict[str, Any] | None, records: Sequence[dict], label: str) -> str:
    """Which stage and step the weights are from, and what of the log lies beyond them."""
    stages = [s for s in (card or {}).get("stages") or [] if isinstance(s, dict)]
    step = exported_step(card)
    if step is None:
        return (f"**{label}**: no card data (card.json), so the step of its weights is not known; the whole log "
                "is shown.")
    last = stages[-1]
    valid = ", ".join(f"{k} {v}" for k, v in (last.get("validation") or {}).items())
    parts = [f"**{label}**: weights from stage {len(stages)} of {len(stages)}, step {step:,}"]
    if isinstance(last.get("wall_minutes"), (int, float)):
        parts.append(f"{last['wall_minutes']:.1f} min" + (f" on {last['hardware']}" if last.get("hardware") else ""))
    if valid:
        parts.append(f"validation {valid}")
    text = " · ".join(parts) + "."
    if len(stages) > 1:
        earlier = "Stage 1" if len(stages) == 2 else f"Stages 1–{len(stages) - 1}"
        text += f" {earlier} trained the weights it started from; this log is stage {len(stages)}'s."
    beyond = [r["step"] for r in records if isinstance(r.get("step"), (int, float)) and r["step"] > step]
    if beyond:
        text += (f" The log goes on to step {max(beyond):,} after the weights were exported: that part made no "
                 "shipped weights and is hidden unless you show it.")
    return text

"""Which metrics of a checkpoint's metrics.jsonl the Training page offers, and which it shows first."""
from __future__ import annotations

from typing import Sequence

LOSS_KEYS = ("nll", "consistency_kl", "diagonal_kl", "consistency_mse", "map_mse", "loss", "kl")


def numeric_keys(records: Sequence[dict]) -> list[str]:
    """Numeric metric names in metrics.jsonl records (step/split excluded), in first-seen order."""
    keys: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in ("step", "split") and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.setdefault(key, None)
    return list(keys)

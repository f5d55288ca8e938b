"""Short texts the pages show: ratios and step counts."""
from __future__ import annotations


def times_phrase(ratio: float, up: str, down: str) -> str:
    """'3.2× faster' for ratio 3.2, '4.0× slower' for 0.25, '1,024× ...' from 10 on: a factor of at least 1
    and its direction."""
    factor, word = (ratio, up) if ratio >= 1 else (1 / max(ratio, 1e-12), down)
    return f"{factor:.1f}× {word}" if factor < 10 else f"{factor:,.0f}× {word}"


def steps_phrase(steps: int) -> str:
    return f"{steps} step{'s' if steps != 1 else ''}"

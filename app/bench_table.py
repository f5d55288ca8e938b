"""The rows of benchmarks.json, as `python -m flm_core bench` writes it (flm_core.bench.run_bench)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

from flm_core.kinds import KINDS
from flm_core.errors import one_line

BENCH_FIELDS = ("model", "kind", "steps", "nfe", "seconds_per_sample", "gen_ppl", "entropy", "mauve",
                "memorization", "word_validity")
NUMERIC_FIELDS = BENCH_FIELDS[2:]


def quality_points(rows: Sequence[dict]) -> list[dict]:
    """The benchmark rows that place a model on the quality-vs-speed chart: Gen PPL and time per sample."""
    return [r for r in rows if r.get("gen_ppl") and r.get("seconds_per_sample")]


def model_rows(rows: Sequence[dict]) -> list[dict]:
    """The rows of models (the bench's reference row of validation data has kind "data", not a model kind)."""
    return [r for r in rows if r["kind"] in KINDS]


def read_benchmarks(path: str | Path) -> tuple[list[dict], str | None]:
    """Rows of a bench output {"rows": [...], ...}: (rows, None), or ([], a one-line message). Never raises.

    A row has a model and a kind (strings); its numeric fields are numbers or null (non-finite -> None)."""
    path = Path(path)
    if not path.is_file():
        return [], "no benchmark yet"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return [], f"{path}: unreadable ({one_line(err)})"
    if not isinstance(raw, dict) or not isinstance(raw.get("rows"), list):
        return [], f"{path}: not an output of `python -m flm_core bench` (expected an object with a \"rows\" list)"
    rows = []
    for i, item in enumerate(raw["rows"]):
        problem = _row_problem(item)
        if problem:
            return [], f"{path}: row {i} {problem}"
        rows.append({**item, **{name: _finite(item.get(name)) for name in NUMERIC_FIELDS}})
    return rows, (None if rows else "no benchmark yet")


def _row_problem(item) -> str | None:
    if not isinstance(item, dict):
        return "is not an object"
    if not all(isinstance(item.get(name), str) for name in ("model", "kind")):
        return "has no model and kind"
    wrong = [n for n in NUMERIC_FIELDS if item.get(n) is not None and not _is_number(item[n])]
    return f"has a {wrong[0]} that is not a number" if wrong else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None

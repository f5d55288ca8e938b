"""Quality said out loud: what the models are (size and training time from each checkpoint's card data,
flm_core.cards.read_card_data), how good their text is (the benchmark's Gen PPL and word validity against the
"data (validation)" row; a toy model's validity and distance against its generator's), and real validation text
to show beside the samples. Pure functions."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

from flm_core.bench import degenerate
from flm_core.kinds import KINDS
from app.phrases import steps_phrase

VAL_TEXTS = "val_texts.jsonl"  # written by `python -m flm_core prepare-data` beside the token blocks


def card_facts(card: dict[str, Any] | None) -> dict[str, Any]:
    """{"parameters", "minutes" (all stages), "stages", "hardware" (distinct, short)} of a card.json's data;
    None figures where the card has none."""
    stages = [s for s in (card or {}).get("stages") or [] if isinstance(s, dict)]
    minutes = [s["wall_minutes"] for s in stages if isinstance(s.get("wall_minutes"), (int, float))]
    hardware = list(dict.fromkeys(str(s["hardware"]).split(" (")[0].split(",")[0].strip()
                                  for s in stages if s.get("hardware")))
    parameters = (card or {}).get("parameters")
    return {"parameters": parameters if isinstance(parameters, int) and parameters > 0 else None,
            "minutes": sum(minutes) if minutes else None, "stages": len(stages), "hardware": hardware}


def millions(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e6:.2f}M"


def span(values: Sequence[float], fmt) -> str:
    """'7.1M' or '5.8M–7.1M'."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def data_row(rows: Sequence[dict]) -> dict | None:
    """The benchmark's reference row of real validation text (its kind names no model kind)."""
    return next((r for r in rows if r.get("kind") not in KINDS), None)


def bench_row(rows: Sequence[dict], model: str | None, steps: int, fixed: bool) -> dict | None:
    """The benchmark row of `model` at `steps` (a fixed-steps model, AR, has one row whatever it is asked)."""
    mine = [r for r in rows if model is not None and r.get("model") == model and r.get("kind") in KINDS]
    return next((r for r in mine if fixed or r.get("steps") == steps), None)


def _ppl(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def quality_phrase(row: dict | None, data: dict | None, steps: int, benchmarked: bool,
                   degenerate_of: dict | None = None) -> str:
    """'Gen PPL 6,652 (real text 38) · 58 % real words (real text 97 %)', real text's figures from `data`; a
    degenerate setting (entropy below 90 % of real text's, `data` or `degenerate_of`) said so; what is missing,
    said."""
    if row is None:
        return (f"not benchmarked at {steps_phrase(steps)}" if benchmarked else
                "not in the benchmark: quality unmeasured")
    parts = []
    ppl, words = row.get("gen_ppl"), row.get("word_validity")
    if ppl is not None:
        ref = f" (real text {_ppl(data['gen_ppl'])})" if data and data.get("gen_ppl") else ""
        parts.append(f"Gen PPL {_ppl(ppl)}: scored by itself, not comparable" if row.get("self_evaluated")
                     else f"Gen PPL {_ppl(ppl)}{ref}")
    if words is not None:
        ref = f" (real text {100 * data['word_validity']:.0f} %)" if data and data.get("word_validity") else ""
        parts.append(f"{100 * words:.0f} % real words{ref}")
    if row.get("toy_validity") is not None:  # a toy-language model, scored by the language's checker
        ref = (f" (the generator's own {data['toy_distance']:.2f})" if data and data.get("toy_distance") is not None
               else "")
        parts.append(f"{100 * row['toy_validity']:.0f} % valid, distance {row['toy_distance']:.2f}{ref}")
    reference = data or degenerate_of
    if degenerate(row, reference):
        parts.append("repeats itself" if data is None else
                     f"repeats itself (entropy {row['entropy']:.1f}, real text {reference['entropy']:.1f})")
    return " · ".join(parts) or "benchmarked without quality figures"


def lane_note(facts: dict[str, Any], counted: int | None, row: dict | None, data: dict | None, steps: int,
              benchmarked: bool, distilled: bool) -> str:
    """One line under a lane's name: size, training time and measured quality, or what is not known."""
    if facts["parameters"] is not None:
        size = f"{millions(facts['parameters'])} parameters"
    else:
        size = f"{millions(counted)} parameters (counted from the weights)" if counted else "size unknown"
    if facts["minutes"] is not None:
        trained = f"{facts['minutes']:.1f} min of {'distillation' if distilled else 'training'}"
    else:
        trained = "no card data: training unknown"
    return " · ".join([size, trained, quality_phrase(row, data, steps, benchmarked)])


def overview(facts: Sequence[dict[str, Any]], data: dict | None, brief: bool = False) -> str:
    """The note above the lanes: what these models are, and real text's figures for scale (brief: one line, for
    presentation mode)."""
    known = [f for f in facts if f["parameters"] is not None and f["minutes"] is not None]
    scale = ""
    if data and data.get("gen_ppl") is not None:
        words = f" and {100 * data['word_validity']:.0f} % real words" if data.get("word_validity") else ""
        scale = (f" Real text: Gen PPL {_ppl(data['gen_ppl'])}{words.replace(' and', ',')}." if brief else
                 f" Real text scores Gen PPL {_ppl(data['gen_ppl'])}{words}.")
    if not known:
        return ("**Unknown checkpoints**: no card data (card.json), so their training is not known; each lane says "
                "what is." + scale)
    unknown = len(facts) - len(known)
    scale += f" {unknown} lane{'s' if unknown > 1 else ''} without card data: training not known." if unknown else ""
    size = span([f["parameters"] for f in known], millions)
    minutes = span([f["minutes"] for f in known], lambda m: f"{m:.0f}")
    if brief:
        return f"**Small demo models**: {size} parameters, {minutes} min of training." + scale
    hardware = list(dict.fromkeys(h for f in known for h in f["hardware"]))
    return (f"**Small demo models**: {size} parameters, trained for {minutes} minutes"
            + (f" ({', '.join(hardware)})" if hardware else "") + ". Expect broken words, not English." + scale)


def read_val_texts(candidates: Sequence[Path]) -> tuple[list[str], str]:
    """The validation texts of the first candidate file that reads (JSON strings or {"text": ...} per line):
    (texts, its path), or ([], "")."""
    for path in candidates:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
            items = [json.loads(line) for line in lines if line.strip()]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        texts = [t if isinstance(t, str) else t.get("text") if isinstance(t, dict) else None for t in items]
        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if texts:
            return texts, str(path)
    return [], ""


def real_samples(texts: Sequence[str], n: int, seed: int, max_chars: int) -> list[str]:
    """n validation texts chosen by `seed`, each cut at a word boundary near `max_chars` (the length of the
    generated texts), with '…' where cut."""
    if not texts:
        return []
    picks = random.Random(seed).sample(list(texts), min(n, len(texts)))
    out = []
    for text in picks:
        text = text.strip()
        if len(text) > max_chars:
            cut = text[:max_chars]
            text = (cut.rsplit(" ", 1)[0] if " " in cut[max_chars // 2:] else cut) + " …"
        out.append(text)
    return out

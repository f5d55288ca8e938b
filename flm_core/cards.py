"""Model cards: a checkpoint's training history and benchmark kept as data (card.json beside config.json),
and the README.md rendered from it. The JSON is the record; the README is never read back.

card.json = {"parameters": int,
             "stages": [{"command", "steps", "tokens_seen", "wall_minutes", "hardware", "precision",
                         "init_from", "validation"[, "teacher_trained_by": a distillation's teacher's last
                         command]}, ...],   # oldest first; the last made these weights
             "benchmark": None | {"summary": str, "header": [str], "rows": [[str]], "samples_title": str,
                                  "samples": [str]}}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flm_core.checkpoint import CARD_DATA_FILE, CARD_FILE, atomic_write_text
from flm_core.config import RunConfig


def read_card_data(directory: str | Path) -> dict[str, Any]:
    """A checkpoint's card.json; an empty history where it has none."""
    path = Path(directory) / CARD_DATA_FILE
    if not path.is_file():
        return {"parameters": None, "stages": [], "benchmark": None}
    return json.loads(path.read_text(encoding="utf-8"))


def write_card(directory: str | Path, config: RunConfig, data: dict[str, Any]) -> None:
    """Write card.json and the README.md rendered from it (each atomically)."""
    directory = Path(directory)
    atomic_write_text(directory / CARD_DATA_FILE, json.dumps(data, indent=2) + "\n")
    atomic_write_text(directory / CARD_FILE, render_card(config, data))


def last_stage_command(directory: str | Path) -> str | None:
    """The command of the run that made a checkpoint's weights (None where its card records none): a distilled
    stage keeps its teacher's, so the teacher stays identified after its folder is renamed or replaced."""
    stages = read_card_data(directory)["stages"]
    return stages[-1]["command"] if stages else None


def training_minutes(stages: list[dict[str, Any]]) -> str:
    """'5.5 GPU-minutes and 66.8 CPU-minutes': the stages' wall time by device kind, GPU first, kinds with no
    stage left out. A stage's hardware reads "<name> (CUDA)" or "CPU <name>, <n> threads"
    (flm_core.environment.hardware)."""
    minutes: dict[str, float] = {}
    for stage in stages:
        kind = "CPU" if str(stage["hardware"]).startswith("CPU") else "GPU"
        minutes[kind] = minutes.get(kind, 0.0) + stage["wall_minutes"]
    return " and ".join(f"{minutes[kind]:.1f} {kind}-minutes" for kind in ("GPU", "CPU") if kind in minutes)


def _stage_line(number: int, stage: dict[str, Any]) -> str:
    return (f"- stage {number}: `{stage['command']}`; steps: {stage['steps']}, tokens seen: "
            f"{stage['tokens_seen']:,}, wall time: {stage['wall_minutes']:.1f} min; {stage['hardware']}, "
            f"precision {stage['precision']}")


def render_card(config: RunConfig, data: dict[str, Any]) -> str:
    """The README.md of a checkpoint: what it is, the run that made its weights, the stages before that
    run, and its benchmark."""
    model, stages = config.model, data["stages"]
    lines = [f"# {config.kind.upper()} checkpoint", "",
             f"- kind: `{config.kind}`, objective `{config.objective.name}`",
             f"- data: `{config.data.get('source', '?')}` ({config.data.get('data_dir', '?')}), "
             f"vocab {model.vocab_size}, length {model.seq_len}",
             f"- size: {data['parameters']:,} parameters (hidden {model.hidden_size}, {model.n_blocks} blocks, "
             f"{model.n_heads} heads)"]
    if stages:
        last = stages[-1]
        lines += [f"- command: `{last['command']}`",
                  f"- steps: {last['steps']}, tokens seen: {last['tokens_seen']:,}, "
                  f"wall time: {last['wall_minutes']:.1f} min",
                  f"- hardware: {last['hardware']}, precision {last['precision']}"]
        if last.get("init_from"):
            lines.append(f"- initialised from: `{last['init_from']}` (steps and tokens above count this run only)")
        if last.get("teacher_trained_by"):
            lines.append(f"- teacher trained by: `{last['teacher_trained_by']}`")
        lines.append(f"- validation: {json.dumps(last['validation'])}")
    else:
        lines.append("- training history: not recorded")
    lines += ["", f"Weights are the EMA weights (decay {config.training.ema}). Training log: `metrics.jsonl`."]
    if len(stages) > 1:
        lines += ["", "## Earlier training", "",
                  "The stages that trained the weights this run started from, oldest first (this run, above, "
                  "is the next):", ""]
        lines += [_stage_line(i + 1, stage) for i, stage in enumerate(stages[:-1])]
    bench = data.get("benchmark")
    if bench:
        lines += ["", "## Benchmark", "", bench["summary"], "",
                  "| " + " | ".join(bench["header"]) + " |",
                  "|" + "--:|" * len(bench["header"])]
        lines += ["| " + " | ".join(row) + " |" for row in bench["rows"]]
        lines += ["", bench["samples_title"], ""]
        lines += ["```text\n" + text.strip() + "\n```" for text in bench["samples"]]
    return "\n".join(lines) + "\n"

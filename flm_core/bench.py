"""Evaluate one checkpoint, or benchmark many (quality x speed), in one process.

    evaluate_checkpoint(...)  -> one dict (the `evaluate` CLI)
    run_bench(...)            -> {"rows", "speedups", "environment", "settings"} (the `bench` CLI)
    write_outputs(result, out) -> benchmarks.json, benchmarks.md, benchmarks.html, benchmarks.plotly.json
                                  (another name: the toy models' table is benchmarks-toy.*)
    matched_speedups(rows)    -> how much faster one-step FMLM is than each other model at equal quality

A row holds: model, checkpoint, kind, steps, nfe, num_samples, seed, seconds (median generation
seconds of the batch), seconds_per_sample, seconds_repeats, tokens_per_second, gen_ppl, entropy,
mauve, memorization, word_validity, val_nll, val_nll_kind, examples, and the sampler knobs renoise,
guidance and guide (the guide's path where one was called). The row of kind "data" scores
validation blocks with the same metrics (the reference). Missing figures are null.
Models of a toy language (flm_core.toy) are scored by its checker instead (no data folder, no evaluator):
entropy, toy_validity, toy_distance, toy_failures; their data row holds documents of the generator.
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from flm_core import metrics
from flm_core.checkpoint import atomic_write_text, json_safe
from flm_core.environment import processor_name
from flm_core.kinds import KINDS, kind_of
from flm_core.schedule import STEP_GRID
from flm_core.tokens import decode
from flm_core.toy.evaluation import TOY_KEYS, ToyReference, toy_source

log = logging.getLogger(__name__)

ENTROPY_TOLERANCE = 0.1  # "matches FMLM's quality": Gen PPL <= FMLM's and entropy within 10% of FMLM's
QUALITY_KEYS = ("gen_ppl", "entropy", "mauve", "memorization", "word_validity")


@dataclass
class DataReference:
    """What the metrics need from a prepared data folder, each part computed once on first use."""

    data_dir: str
    num_samples: int
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @cached_property
    def tokenizer(self):
        from flm_core.tokens import load_tokenizer

        return load_tokenizer(self.data_dir)

    @cached_property
    def train_ngrams(self) -> np.ndarray:
        return metrics.train_ngrams(self.data_dir)

    @cached_property
    def words(self) -> set[str]:
        return metrics.corpus_words(self.data_dir)

    @cached_property
    def _val_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation blocks in a seeded order: the first num_samples are MAUVE's reference texts, the
        next num_samples (fewer if the split is small) are scored as the data row."""
        from flm_core.data import open_blocks

        blocks = open_blocks(self.data_dir, "val")  # only the 2 num_samples rows used are read
        order = torch.from_numpy(np.random.default_rng(self.seed).permutation(len(blocks)))
        n = self.num_samples
        return blocks[order[:n]], blocks[order[n:2 * n]]

    @cached_property
    def mauve_reference(self) -> list[str]:
        return [decode(self.tokenizer, row.tolist()) for row in self._val_split[0]]

    @cached_property
    def data_tokens(self) -> torch.Tensor:
        return self._val_split[1]

    @cached_property
    def data_texts(self) -> list[str]:
        return [decode(self.tokenizer, row.tolist()) for row in self.data_tokens]


def quality(texts: Sequence[str], tokens, reference: DataReference, evaluator=None,
            encoder=None) -> dict[str, float | None]:
    """The quality metrics of one set of samples: gen_ppl (None without evaluator), entropy of the
    sampled ids, mauve against the reference's validation texts (None without encoder),
    memorization and word_validity of the texts retokenized with the data's tokenizer. A ToyReference
    scores with its language's checker instead (ToyReference.quality)."""
    if isinstance(reference, ToyReference):
        return reference.quality(texts, tokens)
    out: dict[str, float | None] = {
        "gen_ppl": metrics.generative_perplexity(texts, evaluator) if evaluator is not None else None,
        "entropy": metrics.unigram_entropy(tokens),
        "mauve": None,
        "memorization": metrics.memorization(list(texts), reference.train_ngrams, tokenizer=reference.tokenizer),
        "word_validity": metrics.word_validity(texts, reference.words),
    }
    if encoder is not None:
        if len(texts) >= 2 and len(reference.mauve_reference) >= 2:
            out["mauve"] = metrics.mauve_score(texts, reference.mauve_reference, encoder=encoder, seed=reference.seed)
        else:
            reference.notes["mauve"] = "MAUVE needs at least 2 samples and 2 validation blocks"
    return out


class _MemoEncoder:
    """Remembers the features of texts it has seen (the MAUVE reference is embedded once per run)."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.cache: dict[tuple[str, ...], np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self.cache:
            self.cache[key] = self.encoder(list(texts))
        return self.cache[key]


def _prepare_scorers(evaluator: str | None, mauve: bool, device: str):
    """Load the evaluator and the MAUVE encoder before any sampling, so a missing package fails fast."""
    scorer = metrics.load_evaluator(evaluator, device=device) if evaluator else None
    encoder = None
    if mauve:
        try:
            import mauve as _mauve  # noqa: F401
        except ImportError:
            raise metrics.MetricUnavailable("MAUVE needs mauve-text (with faiss-cpu and scikit-learn): pip install "
                                            "mauve-text faiss-cpu scikit-learn, or pass --no-mauve") from None
        encoder = _MemoEncoder(metrics.minilm_encoder(device))
    return scorer, encoder


def environment(device: str = "cpu") -> dict[str, Any]:
    """Where the figures were measured: versions, processor, threads, accelerator."""
    env = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "processor": processor_name(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        env["accelerator"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _same_path(a, b) -> bool:
    try:
        return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _scoring_reference(checkpoints: Sequence[str], data_dir: str | None, num_samples: int, seed: int,
                       evaluator: str | None) -> DataReference | ToyReference:
    """A toy language's checker for toy models, else the prepared data folder (which corpus models need)."""
    from flm_core.hub import resolve
    from flm_core.tokens import load_tokenizer

    source = toy_source([_trained_on(c) for c in checkpoints])
    if source:
        if evaluator:
            raise ValueError(f"models of {source} are scored by the language's checker: drop --evaluator")
        return ToyReference.of(source, load_tokenizer(resolve(checkpoints[0])), num_samples, seed)
    if data_dir is None:
        raise ValueError("scoring a corpus model needs --data DIR (the folder prepare-data wrote for it); only "
                         "toy-language models are scored without one")
    return DataReference(str(data_dir), num_samples, seed)


def _trained_on(checkpoint: str) -> str | None:
    """The data source a checkpoint's config records (None for released checkpoints and older configs)."""
    from flm_core.checkpoint import CONFIG_FILE
    from flm_core.config import ConfigError, RunConfig
    from flm_core.hub import resolve

    try:
        return RunConfig.load(resolve(checkpoint) / CONFIG_FILE).data.get("source")
    except (ConfigError, OSError, ValueError):
        return None


def _validation(pipe, data_dir: str | None, val_blocks: int, seed: int) -> dict:
    """validation_nll on the data folder; nothing for a toy model run without one."""
    return {} if data_dir is None else metrics.validation_nll(pipe, data_dir, max_blocks=val_blocks, seed=seed)


def _data_row(reference: DataReference | ToyReference, scorer, encoder) -> dict[str, Any]:
    toy = isinstance(reference, ToyReference)
    row: dict[str, Any] = {"model": "data (generator)" if toy else "data (validation)",
                           "checkpoint": f"toy:{reference.language.name}" if toy else reference.data_dir,
                           "kind": "data", "steps": None, "nfe": None, "num_samples": len(reference.data_texts)}
    row.update(quality(reference.data_texts, reference.data_tokens, reference, scorer,
                       encoder if len(reference.data_texts) >= 2 else None))
    row["examples"] = reference.data_texts[:3]
    return row


# -----------------------------------------------------------------------------
# evaluate one checkpoint


def evaluate_checkpoint(checkpoint: str, data_dir: str | None = None, steps: int = 32, num_samples: int = 16, seed: int = 0,
                        evaluator: str | None = None, mauve: bool = True, device: str = "cpu",
                        val_blocks: int = 256, renoise: float = 0.0, guide: str | None = None,
                        guidance: float = 1.0) -> dict[str, Any]:
    """Sample once and score the samples; "data" holds the same metrics for validation blocks.
    guide, guidance: autoguidance by a weaker flow of the same kind (`Pipeline.set_guide`).

    seconds / seconds_per_sample time generation alone (one run, no warm-up; `bench` times properly).
    """
    from flm_core.pipeline import load

    reference = _scoring_reference([checkpoint], data_dir, num_samples, seed, evaluator)
    scorer, encoder = _prepare_scorers(evaluator, mauve and isinstance(reference, DataReference), device)
    pipe = load(checkpoint, device=device, guide=guide)
    gen = pipe.generate(num_samples, steps, seed=seed, renoise=renoise, guidance=guidance)
    result: dict[str, Any] = {
        "kind": gen.kind, "checkpoint": str(checkpoint), "steps": gen.steps, "nfe": gen.nfe, "renoise": renoise,
        "guidance": gen.guidance, "guide": gen.guide,
        "num_samples": num_samples, "seed": seed, "seconds": gen.seconds,
        "seconds_per_sample": gen.seconds / num_samples, "tokens_per_second": gen.tokens_per_second,
        "device": gen.device, "torch_threads": torch.get_num_threads(), "evaluator": evaluator,
        "self_evaluated": _same_path(checkpoint, evaluator),
    }
    result.update(quality(gen.texts, gen.tokens, reference, scorer, encoder))
    result.update(_validation(pipe, data_dir, val_blocks, seed))
    data = _data_row(reference, scorer, encoder)
    result["data"] = {k: data[k] for k in ("num_samples", *_quality_keys(result))}
    if reference.notes:
        result["notes"] = dict(reference.notes)
    return json_safe(result)


def format_evaluation(result: dict[str, Any]) -> str:
    """A plain-text table of `evaluate_checkpoint`'s result: model column and data column."""
    def fmt(x):
        return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

    lines = [f"{result['kind']} {result['checkpoint']}: {result['steps']} steps, {result['nfe']} network calls, "
             f"{result['num_samples']} samples, seed {result['seed']}, evaluator {result['evaluator'] or '-'}",
             f"{'metric':<20}{'model':>14}{'generator' if 'toy_validity' in result else 'data (val)':>14}"]
    for key in _quality_keys(result):
        lines.append(f"{key:<20}{fmt(result.get(key)):>14}{fmt(result['data'].get(key)):>14}")
    if "toy_failures" in result:
        lines.append(f"{'broken constraints':<20}  {_failure_text(result['toy_failures'])}")
    lines.append(f"{'val_nll':<20}{fmt(result.get('val_nll')):>14}  {result.get('val_nll_kind', '')}")
    lines.append(f"{'seconds_per_sample':<20}{fmt(result['seconds_per_sample']):>14}  on {result['device']}, "
                 f"{result['torch_threads']} threads")
    return "\n".join(lines)


def _quality_keys(row: dict) -> tuple[str, ...]:
    return TOY_KEYS if "toy_validity" in row else QUALITY_KEYS


def _failure_text(counts: dict[str, int] | None) -> str:
    """'count 12, total 5' (most frequent first), or '–' when no sample failed."""
    return ", ".join(f"{k} {v}" for k, v in sorted((counts or {}).items(), key=lambda kv: -kv[1])) or "–"


# -----------------------------------------------------------------------------
# benchmark many checkpoints


def _labels(checkpoints: Sequence[str]) -> list[str]:
    """Folder names, or full paths where two folders share a name."""
    names = [Path(c).name or str(c) for c in checkpoints]
    return [n if names.count(n) == 1 else str(c) for n, c in zip(names, checkpoints)]


def run_bench(checkpoints: Sequence[str], data_dir: str | None = None, evaluator: str | None = None,
              steps: Sequence[int] = STEP_GRID, max_steps: int | None = None, num_samples: int = 16,
              seed: int = 0, repeats: int = 3, mauve: bool = True, device: str = "cpu",
              val_blocks: int = 256, renoise: float = 0.0, guide: str | None = None,
              guidance: float = 1.0) -> dict[str, Any]:
    """Every checkpoint x steps (AR: its one setting, L - 1 calls) with the same seed and sample count.
    renoise applies to the flows; guide (guidance w) to the checkpoints of the guide's kind (the others run
    unguided, and their rows say guidance 1).

    Per setting: one warm-up generation (whose samples are scored), then `repeats` timed generations;
    seconds is their median (generation only, the model load excluded).
    """
    from flm_core.pipeline import load

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    grid = sorted({s for s in steps if max_steps is None or s <= max_steps})
    if not grid:
        raise ValueError(f"no step count in {list(steps)} is <= --max-steps {max_steps}")
    reference = _scoring_reference(checkpoints, data_dir, num_samples, seed, evaluator)
    scorer, encoder = _prepare_scorers(evaluator, mauve and isinstance(reference, DataReference), device)
    guide_pipe = load(guide, device=device) if guide else None
    rows = []
    progress = tqdm(total=len(checkpoints) * len(grid), desc="bench", unit="setting")  # to stderr, with an ETA
    for label, checkpoint in zip(_labels(checkpoints), checkpoints):
        pipe = load(checkpoint, device=device)
        w = guidance if guide_pipe is not None and guide_pipe.kind == pipe.kind else 1.0
        if w != 1:
            pipe.set_guide(guide_pipe)
        val = _validation(pipe, data_dir, val_blocks, seed)
        for n in ([pipe.sampler.num_steps(1)] if pipe.spec.fixed_steps else grid):
            progress.set_postfix_str(f"{label} @ {n} steps")
            eta = 0.0 if pipe.spec.discrete else renoise  # renoising applies to the flows
            gen = pipe.generate(num_samples, n, seed=seed, renoise=eta, guidance=w)  # warm-up; its samples are scored
            times = [pipe.generate(num_samples, n, seed=seed, renoise=eta, guidance=w).seconds for _ in range(repeats)]
            seconds = statistics.median(times)
            row = {"model": label, "checkpoint": str(checkpoint), "kind": pipe.kind, "steps": gen.steps,
                   "nfe": gen.nfe, "num_samples": num_samples, "seed": seed, "seconds": seconds,
                   "seconds_per_sample": seconds / num_samples, "seconds_repeats": times,
                   "tokens_per_second": gen.tokens.numel() / max(seconds, 1e-12), "device": gen.device,
                   "self_evaluated": _same_path(checkpoint, evaluator), "renoise": eta, "guidance": w,
                   "guide": gen.guide}
            row.update(quality(gen.texts, gen.tokens, reference, scorer, encoder))
            row.update(val)
            row["examples"] = gen.texts[:3]
            rows.append(row)
            progress.update(len(grid) if pipe.spec.fixed_steps else 1)  # an AR row stands for the whole grid
    progress.close()
    rows.append(_data_row(reference, scorer, encoder))
    result = {
        "rows": rows, "speedups": matched_speedups(rows), "environment": environment(device),
        "settings": {"checkpoints": [str(c) for c in checkpoints],
                     "data": f"toy:{reference.language.name}" if isinstance(reference, ToyReference) else str(data_dir),
                     "evaluator": evaluator,
                     "steps": grid, "max_steps": max_steps, "num_samples": num_samples, "seed": seed,
                     "repeats": repeats, "mauve": mauve, "val_blocks": val_blocks, "renoise": renoise,
                     "guide": guide, "guidance": guidance,
                     "memorization_n": metrics.MEMORIZATION_N, "entropy_tolerance": ENTROPY_TOLERANCE},
    }
    if reference.notes:
        result["notes"] = dict(reference.notes)
    return json_safe(result)


def matched_speedups(rows: Sequence[dict], entropy_tolerance: float = ENTROPY_TOLERANCE) -> list[dict[str, Any]]:
    """For each one-step FMLM row F and each other model M: the fastest setting of M that matches F's
    quality (gen_ppl <= F's gen_ppl and |entropy - F's entropy| <= tolerance * F's entropy) and
    speedup = its seconds_per_sample / F's. matched is False (speedup None) when no setting of M matches.
    The evaluator's own rows are left out: its Gen PPL of its own samples is not comparable.
    """
    data_ppl = next((r.get("gen_ppl") for r in rows if r.get("kind") == "data"), None)
    rows = [r for r in rows if r.get("kind") != "data" and not r.get("self_evaluated")]
    models = list(dict.fromkeys(r["model"] for r in rows))
    out = []
    for ref in rows:
        if not kind_of(ref["kind"]).two_times or ref["steps"] != 1 or not all(
                _finite(ref.get(k)) for k in ("gen_ppl", "entropy", "seconds_per_sample")):
            continue
        for model in models:
            if model == ref["model"]:
                continue
            matches = [r for r in rows if r["model"] == model and _finite(r.get("gen_ppl"))
                       and _finite(r.get("entropy")) and _finite(r.get("seconds_per_sample"))
                       and r["gen_ppl"] <= ref["gen_ppl"]
                       and abs(r["entropy"] - ref["entropy"]) <= entropy_tolerance * ref["entropy"]]
            entry = {"fmlm": ref["model"], "fmlm_gen_ppl": ref["gen_ppl"], "fmlm_entropy": ref["entropy"],
                     "fmlm_seconds_per_sample": ref["seconds_per_sample"], "model": model,
                     "kind": next(r["kind"] for r in rows if r["model"] == model),
                     "matched": bool(matches), "steps": None, "gen_ppl": None, "entropy": None,
                     "seconds_per_sample": None, "speedup": None, "data_gen_ppl": data_ppl}
            if matches:
                best = min(matches, key=lambda r: r["seconds_per_sample"])
                entry.update(steps=best["steps"], gen_ppl=best["gen_ppl"], entropy=best["entropy"],
                             seconds_per_sample=best["seconds_per_sample"],
                             speedup=best["seconds_per_sample"] / ref["seconds_per_sample"])
            out.append(entry)
    return out


# -----------------------------------------------------------------------------
# outputs


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def speedup_sentence(s: dict[str, Any]) -> str:
    if not s["matched"]:
        return (f"{s['fmlm']} (1 step): no setting of {s['model']} reaches Gen PPL <= {_fmt(s['fmlm_gen_ppl'])} "
                f"with entropy within {ENTROPY_TOLERANCE:.0%} of {_fmt(s['fmlm_entropy'])}")
    return (f"{s['fmlm']} (1 step) is {s['speedup']:.3g}x faster than {s['model']}, which needs {s['steps']} steps "
            f"to match its quality (Gen PPL {_fmt(s['gen_ppl'])} <= {_fmt(s['fmlm_gen_ppl'])}, entropy within "
            f"{ENTROPY_TOLERANCE:.0%}; {_fmt(s['seconds_per_sample'])} vs {_fmt(s['fmlm_seconds_per_sample'])} "
            f"s/sample){_quality_level(s)}")


def _quality_level(s: dict[str, Any]) -> str:
    """', at Gen PPL N times the validation text's (X)' where the data row has a Gen PPL, else ''."""
    data = s.get("data_gen_ppl")
    if not (_finite(data) and data > 0):
        return ""
    return f", at Gen PPL {s['fmlm_gen_ppl'] / data:.3g} times the validation text's ({_fmt(data)})"


CORPUS_COLUMNS = (("Gen PPL ↓", "gen_ppl", 4), ("Entropy", "entropy", 4), ("MAUVE ↑", "mauve", 3),
                  ("Memorization", "memorization", 3), ("Word validity", "word_validity", 3))
TOY_COLUMNS = (("Validity ↑", "toy_validity", 3), ("Grammatical ↑", "toy_grammatical", 3), ("Distance ↓", "toy_distance", 3),
               ("Entropy", "entropy", 4))


def quality_columns(rows: Sequence[dict]) -> tuple[tuple[str, str, int], ...]:
    """(header, row key, significant digits) of the quality figures: a toy language's or a corpus's."""
    return TOY_COLUMNS if any("toy_validity" in r for r in rows) else CORPUS_COLUMNS


def markdown_table(result: dict[str, Any]) -> str:
    """benchmarks.md: settings, one table row per (model, steps) plus the data row, speedups."""
    st, env, rows = result["settings"], result["environment"], result["rows"]
    columns = quality_columns(rows)
    toy = columns is TOY_COLUMNS
    extra = ["Broken constraints"] if toy else []
    header = ["Model", "Kind", "Steps", "NFE", *(c[0] for c in columns), *extra, "Val NLL", "s/sample", "tokens/s"]
    lines = ["# Benchmarks", "",
             f"{st['num_samples']} samples per setting, seed {st['seed']}, median of {st['repeats']} timed runs "
             f"after one warm-up; " + ("scored by the language's checker" if toy else
                                       f"evaluator `{st['evaluator'] or 'none'}`") + f"; data `{st['data']}`.",
             f"Device {env['device']}" + (f" ({env['accelerator']})" if env.get("accelerator") else "")
             + f", {env['processor']}, {env['torch_threads']} torch threads, torch {env['torch']}, "
             f"{env['timestamp']}."]
    knobs = ([f"re-noise {st['renoise']:g} (flows)"] if st.get("renoise") else []) + (
        [f"guided by `{st['guide']}` at w {st['guidance']:g} (rows of its kind)"] if st.get("guide") else [])
    if knobs:
        lines.append(f"Flow sampler: {'; '.join(knobs)}.")
    lines += ["", "| " + " | ".join(header) + " |", "|---|---|" + "--:|" * (len(header) - 2)]
    for r in rows:
        name = r["model"] + (" *" if r.get("self_evaluated") else "")
        cells = [_fmt(r.get(key), digits) for _, key, digits in columns]
        cells += [_failure_text(r.get("toy_failures"))] if toy else []
        lines.append("| " + " | ".join([name, r["kind"], _fmt(r.get("steps")), _fmt(r.get("nfe")), *cells,
                                         _fmt(r.get("val_nll")), _fmt(r.get("seconds_per_sample"), 3),
                                         _fmt(r.get("tokens_per_second"), 4)]) + " |")
    if not toy:
        lines += ["", "## Speedup of one-step FMLM", ""]
        lines += [f"- {speedup_sentence(s)}" for s in result["speedups"]] or ["- no one-step FMLM row with a Gen PPL"]
    lines += ["", "## Definitions", ""]
    if toy:
        lines += ["- Validity: share of samples that satisfy every constraint of the language (its checker).",
                  "- Grammatical: share of samples that follow the language's grammar, whatever the constraints "
                  "between their words (a sampler that keeps the layout but not the agreements).",
                  "- Distance: mean over the language's attribute groups of the total variation between the "
                  "samples' law (invalid samples as one more value) and the exact law (flm_core.toy.distance); "
                  "the data row, as many documents of the generator, is its finite-sample floor.",
                  "- Broken constraints: samples per first broken constraint."]
    else:
        lines += ["- Gen PPL: exp(mean NLL per token) of the decoded samples under the evaluator.",
                  "- MAUVE: against as many validation blocks, MiniLM features (all-MiniLM-L6-v2).",
                  f"- Memorization: share of the samples' {st['memorization_n']}-grams (data tokenizer) found in "
                  "the training split.",
                  "- Word validity: share of words ([a-z]+, lowercased) that occur in the training corpus."]
    lines += ["- Entropy: mean over samples of the entropy (nats) of the sample's token histogram.",
              "- Val NLL: " + "; ".join(f"{kind.label} {kind.val_nll_meaning}" for kind in KINDS.values()) + "."]
    if not toy:
        lines += [f"- Matches FMLM: Gen PPL <= FMLM's and entropy within {st['entropy_tolerance']:.0%} of FMLM's.",
                  "- `*`: the model is the evaluator itself (its Gen PPL is not comparable)."]
    return "\n".join(lines) + "\n"


def seconds_axis(values: Sequence[float | None]) -> dict:
    """Log-axis settings for times in seconds: ticks at 1, 2, 5 x 10^k (decades only when the values span
    more than three) labelled with their unit ("50 ms", "2 s"), and a range that spans the values, so that
    a panel without data shows the axis too. {} without a positive value."""
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not values:
        return {}
    lo, hi = min(values) / 1.6, max(values) * 1.6
    mantissas = (1,) if hi / lo > 1e3 else (1, 2, 5)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in mantissas]
    ticks = [t for t in ticks if lo <= t <= hi] or [min(values)]
    text = [f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s" for t in ticks]
    return dict(type="log", tickvals=ticks, ticktext=text, range=[math.log10(lo), math.log10(hi)])


def gen_ppl_axis(values: Sequence[float | None]) -> dict:
    """Log-axis settings for Gen PPL: decade ticks only where the values span several decades, and room
    below and above the points for their step labels."""
    values = [v for v in values if v]
    if not values:
        return dict(type="log")
    decades = max(values) / min(values) >= 10
    return dict(type="log", dtick=1 if decades else None,
                range=[math.log10(min(values)) - 0.2, math.log10(max(values)) + 0.3])


DEGENERATE_ENTROPY = 0.9  # a setting whose samples' entropy is below 90% of real text's repeats itself


def _reference(rows: Sequence[dict]) -> dict | None:
    """The row of real validation text (its kind names no model kind)."""
    return next((r for r in rows if r.get("kind") not in KINDS and _finite(r.get("gen_ppl"))), None)


def degenerate(row: dict, reference: dict | None) -> bool:
    """Its samples' entropy is below DEGENERATE_ENTROPY x real text's: a low Gen PPL from repeating itself."""
    return (reference is not None and _finite(reference.get("entropy")) and _finite(row.get("entropy"))
            and row["entropy"] < DEGENERATE_ENTROPY * reference["entropy"])


def _hover(row: dict) -> str:
    entropy = f"{row['entropy']:.2f}" if _finite(row.get("entropy")) else "–"
    note = "<br>scored by itself: not comparable" if row.get("self_evaluated") else ""
    return (f"{row['model']} · {row.get('steps')} steps · NFE {row.get('nfe')}<br>{row['seconds_per_sample']:.4f} "
            f"s/sample<br>Gen PPL {row['gen_ppl']:.1f} · entropy {entropy}{note}")


def quality_traces(rows: Sequence[dict], colors: dict[str, str] | None = None) -> list:
    """The headline lines: per model, Gen PPL vs seconds per sample of its settings (by steps, each point
    labelled with its step count), named by its kind's label (and the model where a kind has several); hover
    gives the entropy. Degenerate settings (`degenerate`, drawn by `degenerate_trace`) are left out of the lines;
    a model scored by itself (self_evaluated, the evaluator) is drawn open and dotted and labelled so. Rows
    without both figures, and the data row, are left out; colors: kind -> line colour."""
    import plotly.graph_objects as go

    reference = _reference(rows)
    rows = [r for r in rows if r["kind"] in KINDS and _finite(r.get("gen_ppl"))
            and _finite(r.get("seconds_per_sample"))]
    models = sorted(dict.fromkeys((r["kind"], r["model"]) for r in rows))
    several = {kind for kind in {k for k, _ in models} if sum(k == kind for k, _ in models) > 1}
    traces = []
    for kind, model in models:
        pts = sorted((r for r in rows if r["model"] == model and not degenerate(r, reference)),
                     key=lambda r: r.get("steps") or 0)
        spec, mine = KINDS[kind], any(r.get("self_evaluated") for r in rows if r["model"] == model)
        traces.append(go.Scatter(
            x=[r["seconds_per_sample"] for r in pts], y=[r["gen_ppl"] for r in pts], mode="lines+markers+text",
            name=spec.label + (f" · {model}" if kind in several else ""),
            line=dict(color=(colors or {}).get(kind), dash="dot" if mine else None),
            marker=dict(size=9, symbol="circle-open" if mine else "circle", line=dict(width=2) if mine else None),
            text=[(f"{int(r['steps'])}" if r.get("steps") else "") + (" · scored by itself" if mine else "")
                  for r in pts],
            textposition="bottom center" if spec.two_times else "top center",  # a flow map runs close to its teacher
            cliponaxis=False, hovertext=[_hover(r) for r in pts], hoverinfo="text"))
    return traces


def degenerate_trace(rows: Sequence[dict], colors: dict[str, str] | None = None):
    """The degenerate settings (entropy below DEGENERATE_ENTROPY x real text's) as crosses labelled
    'FLM@1 · repeats itself', or None without any."""
    import plotly.graph_objects as go

    reference = _reference(rows)
    flagged = [r for r in rows if r["kind"] in KINDS and _finite(r.get("gen_ppl"))
               and _finite(r.get("seconds_per_sample")) and degenerate(r, reference)]
    if not flagged:
        return None
    return go.Scatter(
        x=[r["seconds_per_sample"] for r in flagged], y=[r["gen_ppl"] for r in flagged], mode="markers+text",
        name=f"degenerate: entropy < {DEGENERATE_ENTROPY:.0%} of real text's",
        marker=dict(symbol="x", size=12, color=[(colors or {}).get(r["kind"], "#777") for r in flagged]),
        text=[f"{KINDS[r['kind']].label}@{int(r['steps']) if _finite(r.get('steps')) else '?'} · repeats itself"
              for r in flagged],
        textposition="middle right", cliponaxis=False, hovertext=[_hover(r) for r in flagged], hoverinfo="text")


def reference_trace(rows: Sequence[dict]):
    """Real validation text's Gen PPL as a dashed line across the rows' times, or None without a data row.
    A trace, not add_hline: its label misplaces on log axes."""
    import plotly.graph_objects as go

    reference = _reference(rows)
    xs = [r["seconds_per_sample"] for r in rows if r["kind"] in KINDS and _finite(r.get("seconds_per_sample"))]
    if reference is None or not xs:
        return None
    entropy = f", entropy {reference['entropy']:.2f}" if _finite(reference.get("entropy")) else ""
    return go.Scatter(x=[min(xs), max(xs)], y=[reference["gen_ppl"]] * 2, mode="lines+text", text=["", "real text"],
                      textposition="top left", cliponaxis=False,
                      name=f"real text (validation): Gen PPL {reference['gen_ppl']:.3g}",
                      line=dict(dash="dash", color="gray", width=2),
                      hovertext=f"real validation text: Gen PPL {reference['gen_ppl']:.1f}{entropy}", hoverinfo="text")


def headline_traces(rows: Sequence[dict], colors: dict[str, str] | None = None) -> list:
    """Everything the quality-vs-speed chart draws from the rows (the CLI's `figure` and the app's Benchmarks
    chart alike): the models' lines, the degenerate settings flagged, real text's reference line."""
    extra = [degenerate_trace(rows, colors), reference_trace(rows)]
    return quality_traces(rows, colors) + [t for t in extra if t is not None]


def figure(result: dict[str, Any]):
    """Plotly figure of a bench result: Gen PPL vs seconds per sample (both log, `headline_traces`: the models,
    the degenerate settings flagged, real text's line), dotted connectors for the one-step FMLM speedups."""
    import plotly.graph_objects as go

    rows = result["rows"]
    if quality_columns(rows) is TOY_COLUMNS:
        from flm_core.toy.figure import toy_figure

        return toy_figure(rows)
    fig = go.Figure(headline_traces(rows))
    xs = [r["seconds_per_sample"] for r in rows if r["kind"] in KINDS and _finite(r.get("seconds_per_sample"))]
    notes = []
    for s in result.get("speedups", []):
        if not s["matched"]:
            continue
        fig.add_trace(go.Scatter(x=[s["seconds_per_sample"], s["fmlm_seconds_per_sample"]],
                                 y=[s["gen_ppl"], s["fmlm_gen_ppl"]], mode="lines", showlegend=False,
                                 line=dict(dash="dot", color="black", width=1), hoverinfo="skip"))
        notes.append(f"1-step {s['fmlm']}: {s['speedup']:.3g}x faster than {s['model']} ({s['steps']} steps)")
    if notes:
        fig.add_annotation(text="<br>".join(notes), xref="paper", yref="paper", x=0.99, y=0.99,
                           xanchor="right", yanchor="top", showarrow=False, align="right",
                           bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(title="Generative perplexity vs sampling time (labels: steps)", template="plotly_white",
                      legend_title_text="model")
    fig.update_xaxes(title="seconds per sample (log)", **seconds_axis(xs))
    fig.update_yaxes(title="Gen PPL (log)", **gen_ppl_axis([r.get("gen_ppl") for r in rows]))
    return fig


def update_model_cards(result: dict[str, Any]) -> list[str]:
    """Set the benchmark of each benchmarked checkpoint's card data (card.json) and re-render its README.md:
    its rows, the data row, and unedited samples of its most-steps setting (FMLM: one step). Returns the
    README paths written. Checkpoints without card data (released, Hub, older formats) are left alone."""
    from flm_core.cards import CARD_FILE, read_card_data, write_card
    from flm_core.checkpoint import CARD_DATA_FILE, CONFIG_FILE
    from flm_core.config import RunConfig
    from flm_core.hub import resolve
    from flm_core.models import parameter_count

    data = next((r for r in result["rows"] if r["kind"] == "data"), None)
    st = result["settings"]
    written = []
    for checkpoint in st["checkpoints"]:
        rows = sorted((r for r in result["rows"] if r.get("checkpoint") == checkpoint), key=lambda r: r["steps"])
        folder = resolve(checkpoint)
        if not rows or not (folder / CARD_DATA_FILE).is_file():  # released, Hub or pre-card.json: left alone
            log.warning("bench: %s has no %s, its card is left as it is", checkpoint, CARD_DATA_FILE)
            continue
        config = RunConfig.load(folder / CONFIG_FILE)
        card = read_card_data(folder)
        card["parameters"] = card["parameters"] or parameter_count(config.model)
        columns = quality_columns(rows)
        table = [["data" if r["kind"] == "data" else _fmt(r["steps"]), _fmt(r.get("nfe")),
                  *(_fmt(r.get(key), digits) for _, key, digits in columns), _fmt(r.get("seconds_per_sample"), 3)]
                 for r in rows + ([data] if data else [])]
        shown = rows[0] if kind_of(rows[0]["kind"]).two_times else rows[-1]  # a flow map's point is one step
        unit = "step" if shown["steps"] == 1 else "steps"
        card["benchmark"] = {
            "summary": f"From `python -m flm_core bench` ({st['num_samples']} samples, seed {st['seed']}, "
                       + ("scored by the language's checker" if columns is TOY_COLUMNS else f"evaluator `{st['evaluator']}`")
                       + f", {result['environment']['device']}, {result['environment']['timestamp']}):",
            "header": ["Steps", "NFE", *(header.rstrip(" ↑↓") for header, _, _ in columns), "s/sample"], "rows": table,
            "samples_title": f"Unedited samples ({shown['steps']} {unit}, seed {st['seed']}):",
            "samples": [text.strip() for text in shown.get("examples", [])]}
        write_card(folder, config, card)
        written.append(str(folder / CARD_FILE))
    return written


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike, name: str = "benchmarks") -> dict[str, str]:
    """Write NAME.json, NAME.md, NAME.html (self-contained) and NAME.plotly.json (NAME: benchmarks)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {suffix: out / f"{name}.{suffix}" for suffix in ("json", "md", "html", "plotly.json")}
    atomic_write_text(paths["json"], json.dumps(json_safe(result), indent=2) + "\n")
    atomic_write_text(paths["md"], markdown_table(result))
    fig = figure(result)
    atomic_write_text(paths["plotly.json"], fig.to_json())
    atomic_write_text(paths["html"], fig.to_html(include_plotlyjs=True, full_html=True))
    return {k: str(v) for k, v in paths.items()}

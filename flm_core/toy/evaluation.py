"""Scoring samples of a toy-language model: the language is known, so no data folder or evaluator is needed.

    ToyReference(language, tokenizer, num_samples, seed).quality(texts, tokens)
        -> entropy, toy_validity (share of valid samples), toy_grammatical (share that follow the grammar,
           the constraints between words aside), toy_distance (flm_core.toy.distance), toy_failures
           (samples per first broken constraint)
    toy_source(sources) -> "toy:NAME" when every model was trained on that toy language, None for corpus models
    steps_table(rows) -> a markdown table of bench rows, models x step counts (the README's and docs' table)
    position_marginals(blocks, K) / factorised_samples(marginals, n, seed)
        -> what one step of a sampler that decides positions independently writes with a *perfect* network

`bench` and `evaluate` use a ToyReference in place of the corpus reference; its data row is num_samples
documents drawn from the generator (seed), scored the same way: the finite-sample floor of the distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np
import torch

from flm_core import metrics
from flm_core.tokens import decode
from flm_core.toy import ToyLanguage, check_ids, distance, documents, failures, grammatical_share, is_toy, language

TOY_KEYS = ("toy_validity", "toy_grammatical", "toy_distance", "entropy")


def toy_source(sources: Sequence[str | None]) -> str | None:
    """The toy language all models were trained on, from their data sources; None if none was; an error
    for a mix of languages, or of toy and corpus models."""
    sources = {source if is_toy(source) else None for source in sources}
    if len(sources) > 1:
        raise ValueError("benchmark toy models only with models of the same toy language (they are scored by its "
                         f"checker, not by an evaluator): got {sorted(map(str, sources))}")
    return sources.pop() if sources else None


@dataclass
class ToyReference:
    """Scores samples with the language's checker; the data row holds documents of the generator itself."""

    language: ToyLanguage
    tokenizer: object
    num_samples: int
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, source: str, tokenizer, num_samples: int, seed: int = 0) -> "ToyReference":
        return cls(language(source), tokenizer, num_samples, seed)

    @cached_property
    def data_tokens(self) -> torch.Tensor:
        from flm_core.data import one_per_block

        docs = documents(self.language, self.num_samples, self.seed)
        ids = [enc.ids for enc in self.tokenizer.encode_batch(docs)]
        return torch.from_numpy(one_per_block(ids, self.language.seq_len).astype(np.int64))

    @cached_property
    def data_texts(self) -> list[str]:
        return [decode(self.tokenizer, row.tolist()) for row in self.data_tokens]

    def checks(self, tokens) -> list:
        return [check_ids(self.language, self.tokenizer, row)[0] for row in np.asarray(tokens).tolist()]

    def quality(self, texts: Sequence[str], tokens) -> dict:
        checks = self.checks(tokens)
        return {"entropy": metrics.unigram_entropy(tokens),
                "toy_validity": sum(c.valid for c in checks) / len(checks),
                "toy_grammatical": grammatical_share(checks),
                "toy_distance": distance(self.language, checks), "toy_failures": failures(checks)}


def position_marginals(blocks, vocab_size: int) -> np.ndarray:
    """(L, K): the share of each token at each position of (N, L) token blocks."""
    blocks = np.asarray(blocks)
    return np.stack([np.bincount(blocks[:, i], minlength=vocab_size) / len(blocks) for i in range(blocks.shape[1])])


def factorised_samples(marginals: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n, L) blocks whose positions are drawn independently from their marginals: MDLM's one step from the
    all-masked state with a perfect denoiser (an exact posterior per position, no correlations)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(marginals, axis=1)
    u = rng.random((n, marginals.shape[0], 1))
    return np.minimum((u > cdf[None]).sum(-1), marginals.shape[1] - 1)


def steps_table(rows: Sequence[dict]) -> str:
    """Markdown: one line per model (a fixed-steps model in its first column, with its calls), one column per
    step count, each cell 'validity / grammatical share / distance'; the generator's row last."""
    def cell(r: dict) -> str:
        return f"{r['toy_validity']:.0%} / {r['toy_grammatical']:.0%} / {r['toy_distance']:.2f}"

    models = [r for r in rows if r["kind"] != "data"]
    names = list(dict.fromkeys(r["model"] for r in models))
    by_model = {name: {r["steps"]: r for r in models if r["model"] == name} for name in names}
    steps = sorted({s for settings in by_model.values() if len(settings) > 1 for s in settings})
    lines = ["| model | " + " | ".join(f"{s} step{'s' if s > 1 else ''}" for s in steps) + " |",
             "|---|" + "--:|" * len(steps)]
    for name, settings in by_model.items():
        if len(settings) == 1:
            (only,) = settings.values()
            cells = [cell(only)] + [""] * (len(steps) - 1)
            name = f"{name} ({only['nfe']} calls)"
        else:
            cells = [cell(settings[s]) if s in settings else "–" for s in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    data = next((r for r in rows if r["kind"] == "data"), None)
    if data is not None:
        lines.append(f"| generator ({data['num_samples']} stories) | " + " | ".join([cell(data)] + [""] * (len(steps) - 1)) + " |")
    return "\n".join(lines)

"""toy:align, the paper's own synthetic setting (the authors' "synthetic-align" data set).

A document is one word drawn uniformly from K = vocab words ("w0" .. "w1023" by default) and written
length = 15 times: log p = -log K for each of the K documents. The positions are as correlated as
they can be and each position alone is uniform, so a sampler that decides the positions
independently in one step writes a valid document with probability K^-(length - 1), while a flow map
can be exactly right. Blocks hold L = 1 + length tokens (the document start, then the words).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Sequence

import numpy as np

from flm_core.toy import Check


@dataclass(frozen=True)
class AlignLanguage:
    vocab: int = 1024
    length: int = 15
    name: str = "align"

    constraints = ("grammar", "vocabulary", "align")
    attribute_groups = (("token",),)

    @property
    def seq_len(self) -> int:
        return 1 + self.length

    @cached_property
    def words(self) -> tuple[str, ...]:
        return tuple(f"w{i}" for i in range(self.vocab))

    def sample(self, rng: np.random.Generator) -> list[str]:
        return [f"w{rng.integers(self.vocab)}"] * self.length

    def check(self, words: Sequence[str]) -> Check:
        known, grammatical = self._vocabulary, self.grammatical(words)
        for i, word in enumerate(words):
            if word not in known:
                return Check(False, "vocabulary", i, f"unknown word {word!r}")
            if word != words[0]:
                return Check(False, "align", i, f"'{word}' after '{words[0]}'", grammatical=grammatical)
        if len(words) != self.length:
            return Check(False, "grammar", min(len(words), self.length),
                         f"{len(words)} words (a document has {self.length})")
        return Check(True, log_prob=-math.log(self.vocab), attributes={"token": words[0]}, grammatical=True)

    def grammatical(self, words: Sequence[str]) -> bool:
        """length words of the vocabulary, equal or not."""
        return len(words) == self.length and set(words) <= self._vocabulary

    @cached_property
    def _vocabulary(self) -> frozenset[str]:
        return frozenset(self.words)

    def law(self, group: tuple[str, ...]) -> dict[tuple, float]:
        if tuple(group) != ("token",):
            raise ValueError(f"toy:align has one attribute, token; got {list(group)}")
        return {(w,): 1.0 / self.vocab for w in self.words}

    def enumerate(self) -> Iterator[tuple[list[str], float]]:
        for word in self.words:
            yield [word] * self.length, 1.0 / self.vocab

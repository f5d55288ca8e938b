"""Synthetic languages whose law is known exactly: the setting where the paper's claim can be checked.

    language("story") -> a ToyLanguage           (toy:story, toy:align; `prepare-data --source toy:NAME`)
    check_text(lang, text) / check_ids(lang, tokenizer, ids) -> Check   (valid? which constraint? log p)
    distance(lang, checks) -> float              (samples vs the true law, on the constraint-bearing attributes)

A toy document is laid out in a block of L = lang.seq_len tokens as

    <|sep|> w_1 ... w_n <|sep|> ... <|sep|>       (n <= L - 1 words, one token each)

so every block holds exactly one document: a sample is one story to check, the first token is the
document start (the AR model's BOS), and the separators after the story mark its end. In text form
(`flm_core.tokens.decode`) the separators are line breaks: leading and trailing ones are layout, a
line break inside the text means the sample ended its story early and went on (invalid).

The distance: for each attribute group G of the language (single attributes and joint pairs),
TV_G = 1/2 sum_v |p_hat(v) - p(v)| over the values v of G, where p_hat counts every invalid sample
as one more value, "invalid", that the true law p never takes; distance = mean_G TV_G. It is 0 only
for an exact match and 1 when every sample is invalid; n samples of the true law themselves sit above
0 by the finite-sample error (`bench` reports them as the data row: the floor).
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence

import numpy as np

TOY_PREFIX = "toy:"
INVALID = ("invalid",)


@dataclass(frozen=True)
class Check:
    """The checker's verdict on one document.

    valid: every constraint holds; constraint: the first one that failed ("grammar", "vocabulary", ...),
    None when valid; position: index of the word where it failed (0 = first word), None when valid;
    message: one line for people; log_prob: exact natural log-probability under the generator (valid
    documents), -inf otherwise; attributes: the constraint-bearing attributes (valid documents only);
    grammatical: the words follow the language's grammar, whatever the constraints between them (a valid
    document is grammatical; a story with the wrong total is too, one with a number where a name goes is not).
    """

    valid: bool
    constraint: str | None = None
    position: int | None = None
    message: str = "valid"
    log_prob: float = -math.inf
    attributes: dict[str, object] = field(default_factory=dict)
    grammatical: bool = False


class ToyLanguage(Protocol):
    """A generator with an exact checker. Words are single tokens; documents have at most seq_len - 1 words."""

    name: str
    seq_len: int
    words: tuple[str, ...]  # the vocabulary, special tokens excluded
    constraints: tuple[str, ...]  # every constraint name a Check can report
    attribute_groups: tuple[tuple[str, ...], ...]

    def sample(self, rng: np.random.Generator) -> list[str]: ...

    def check(self, words: Sequence[str]) -> Check: ...

    def grammatical(self, words: Sequence[str]) -> bool:
        """The words follow the grammar (the constraints between them aside)."""
        ...

    def law(self, group: tuple[str, ...]) -> dict[tuple, float]:
        """The exact distribution of an attribute group under the generator."""
        ...

    def enumerate(self) -> Iterator[tuple[list[str], float]]:
        """Every document with its probability (only for small variants: the count can be huge)."""
        ...


def language(name: str) -> ToyLanguage:
    """The toy language called NAME (or "toy:NAME"), with its default settings."""
    from flm_core.toy.align import AlignLanguage
    from flm_core.toy.story import StoryLanguage

    languages = {"story": StoryLanguage, "align": AlignLanguage}
    key = name.removeprefix(TOY_PREFIX)
    if key not in languages:
        raise ValueError(f"unknown toy language {name!r}: use one of "
                         f"{', '.join(TOY_PREFIX + k for k in languages)}")
    return languages[key]()


def is_toy(source: str | None) -> bool:
    return bool(source) and str(source).startswith(TOY_PREFIX)


def documents(lang: ToyLanguage, count: int, seed: int) -> list[str]:
    """count documents drawn independently from the generator (numpy PCG64 seeded with seed)."""
    rng = np.random.default_rng(seed)
    return [" ".join(lang.sample(rng)) for _ in range(count)]


def check_text(lang: ToyLanguage, text: str) -> Check:
    """Check a decoded sample: line breaks at either end are layout, one inside ends the story early."""
    story = text.strip("\n")
    lines = story.split("\n")
    words = lines[0].split()
    if len(lines) > 1:
        return _failed("grammar", len(words), "the story ends early (a separator inside the text)")
    return lang.check(words)


def check_ids(lang: ToyLanguage, tokenizer, ids: Sequence[int]) -> tuple[Check, int]:
    """Check one sampled block of token ids -> (verdict, token index of the story's first word).

    Every id counts, special tokens included (decoding would drop MASK and PAD and hide them), so
    Check.position + the returned offset is the token position of a failure.
    """
    from flm_core.tokens import SEP_ID

    ids = [int(i) for i in ids]
    start = next((i for i, t in enumerate(ids) if t != SEP_ID), len(ids))
    end = next((i for i in range(len(ids), start, -1) if ids[i - 1] != SEP_ID), start)
    story = ids[start:end]
    if SEP_ID in story:
        return _failed("grammar", story.index(SEP_ID), "the story ends early (a separator inside the text)"), start
    return lang.check([tokenizer.id_to_token(t) or f"<{t}>" for t in story]), start


def distance(lang: ToyLanguage, checks: Sequence[Check]) -> float:
    """Mean over the language's attribute groups of the TV distance described in the module docstring."""
    if not checks:
        raise ValueError("distance needs at least one sample")
    tvs = []
    for group in lang.attribute_groups:
        counts = Counter(tuple(c.attributes[a] for a in group) if c.valid else INVALID for c in checks)
        truth = lang.law(group)
        values = set(counts) | set(truth)
        tvs.append(0.5 * sum(abs(counts[v] / len(checks) - truth.get(v, 0.0)) for v in values))
    return float(np.mean(tvs))


def grammatical_share(checks: Sequence[Check]) -> float:
    """The share of samples that follow the grammar: what a sampler keeps of the sequence's layout."""
    return sum(c.grammatical for c in checks) / len(checks)


def failures(checks: Sequence[Check]) -> dict[str, int]:
    """How many samples failed on each constraint (the first failure of each sample)."""
    return dict(Counter(c.constraint for c in checks if not c.valid))


def marginal(law: dict[tuple, float], names: tuple[str, ...], group: tuple[str, ...]) -> dict[tuple, float]:
    """The law of `group` from a joint law over `names` (a sub-tuple, in any order)."""
    index = [names.index(a) for a in group]
    out: dict[tuple, float] = {}
    for value, p in law.items():
        key = tuple(value[i] for i in index)
        out[key] = out.get(key, 0.0) + p
    return out


def product(*laws: dict[tuple, float]) -> dict[tuple, float]:
    """The law of independent parts, values concatenated in order."""
    out: dict[tuple, float] = {(): 1.0}
    for law in laws:
        out = {a + b: p * q for (a, p), (b, q) in itertools.product(out.items(), law.items())}
    return out


def _failed(constraint: str, position: int, message: str) -> Check:
    return Check(False, constraint, position, message)

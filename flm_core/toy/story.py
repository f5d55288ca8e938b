"""toy:story, an English-like language whose words must agree across the whole sequence.

    anna has 3 red apples . she gives 1 to ben . she finds 4 more apples . now anna has 6 red apples .

The generator (every choice independent of the others unless stated; M = max_count):

    owner   uniform over the names (8 female, 8 male by default)     -> "OWNER has N0 COLOUR FRUIT ."
    colour  uniform over the colours (6)
    fruit   uniform over the fruits (6); the plural form unless the count is 1
    N0      uniform over 1..M (M = 9)
    events  uniform over min_events..max_events (2..3); each event, from the current count c:
              c = 0: "find";  c = M: "give";  otherwise "give" or "find" with probability 1/2 each
              give: k uniform over 1..c, recipient uniform over the other names
                    -> "PRONOUN gives k to RECIPIENT ."      c <- c - k
              find: k uniform over 1..M - c
                    -> "PRONOUN finds k more FRUIT ."       c <- c + k  (FRUIT singular iff k = 1)
            PRONOUN is "she" for a female owner, "he" for a male one
    ending  "now OWNER has c COLOUR FRUIT ."

So log p(story) = -log(#names) - log(#colours) - log(#fruits) - log M - log(max_events - min_events + 1)
                  + sum over events [log b(c) - log c - log(#names - 1)]   (give; b(c) = 1/2, or 1 at c = M)
                  + sum over events [log b(c) - log(M - c)]                (find; b(c) = 1/2, or 1 at c = 0),
and a story has 6 + 6 E + 7 words (25 or 31 with the defaults) in a block of L = 1 + 6 + 6 max_events + 7
= 32 tokens. Every event has six words, so each sentence starts at one of few offsets: the rotary-only
DiT, which sees relative positions alone, learns the layout in CPU minutes (measured: with five-word
finds and 1..3 events, a 3-block model had no valid story at 32 steps after 1,930 steps of training).
The constraints a sampler that decides positions independently breaks: the owner's name and pronouns
(spread over the story), the colour and fruit (first sentence, finds, last sentence), the plural after
each count, a give never more than held and a find never past M, the recipient not the owner, and the
final count equal to N0 plus the finds minus the gives.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterator, Sequence

import numpy as np

from flm_core.toy import Check, marginal, product

FEMALE = ("anna", "mia", "lily", "emma", "sara", "nora", "ella", "rosa")
MALE = ("ben", "tom", "leo", "max", "sam", "jack", "omar", "paul")
COLOURS = ("red", "green", "blue", "yellow", "pink", "purple")
FRUITS = (("apple", "apples"), ("pear", "pears"), ("plum", "plums"), ("lemon", "lemons"),
          ("melon", "melons"), ("orange", "oranges"))
ATTRIBUTES = ("owner", "colour", "fruit", "start", "events", "end")
WALK = ("start", "events", "end")


class _Failure(Exception):
    def __init__(self, constraint: str, position: int, message: str):
        super().__init__(message)
        self.check = Check(False, constraint, position, message)


@dataclass(frozen=True)
class StoryLanguage:
    female: tuple[str, ...] = FEMALE
    male: tuple[str, ...] = MALE
    colours: tuple[str, ...] = COLOURS
    fruits: tuple[tuple[str, str], ...] = FRUITS
    max_count: int = 9
    min_events: int = 2
    max_events: int = 3
    name: str = "story"

    constraints = ("grammar", "vocabulary", "pronoun", "plural", "count", "recipient", "owner", "colour",
                   "fruit", "total")
    attribute_groups = (("owner",), ("colour",), ("fruit",), ("start",), ("events",), ("end",),
                        ("start", "end"), ("events", "end"))

    @property
    def names(self) -> tuple[str, ...]:
        return self.female + self.male

    @property
    def seq_len(self) -> int:
        return 1 + 6 + 6 * self.max_events + 7

    @cached_property
    def words(self) -> tuple[str, ...]:
        numbers = tuple(str(n) for n in range(self.max_count + 1))
        forms = tuple(form for pair in self.fruits for form in pair)
        return (*self.names, "she", "he", "has", "gives", "finds", "to", "more", "now", ".", *numbers,
                *self.colours, *forms)

    @property
    def _event_counts(self) -> int:
        return self.max_events - self.min_events + 1

    def _pronoun(self, owner: str) -> str:
        return "she" if owner in self.female else "he"

    def _fruit(self, fruit: int, count: int) -> str:
        return self.fruits[fruit][0 if count == 1 else 1]

    # -- generator ----------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> list[str]:
        names, m = self.names, self.max_count
        owner, colour = names[rng.integers(len(names))], self.colours[rng.integers(len(self.colours))]
        fruit = int(rng.integers(len(self.fruits)))
        count = int(rng.integers(1, m + 1))
        words = [owner, "has", str(count), colour, self._fruit(fruit, count), "."]
        for _ in range(int(rng.integers(self.min_events, self.max_events + 1))):
            give = count == m or (count > 0 and rng.random() < 0.5)
            if give:
                k = int(rng.integers(1, count + 1))
                others = [n for n in names if n != owner]
                words += [self._pronoun(owner), "gives", str(k), "to", others[rng.integers(len(others))], "."]
                count -= k
            else:
                k = int(rng.integers(1, m - count + 1))
                words += [self._pronoun(owner), "finds", str(k), "more", self._fruit(fruit, k), "."]
                count += k
        return words + ["now", owner, "has", str(count), colour, self._fruit(fruit, count), "."]

    # -- checker ------------------------------------------------------------------------------

    def check(self, words: Sequence[str]) -> Check:
        try:
            return replace(self._parse(list(words)), grammatical=True)
        except _Failure as failure:
            return replace(failure.check, grammatical=self.grammatical(words))

    def grammatical(self, words: Sequence[str]) -> bool:
        """The story's shape as a regular expression over word classes (N name, # number, C colour, F fruit,
        P pronoun): 'N has # C F . (P (gives # to N|finds # more F) . ){min,max}now N has # C F .'."""
        classes = self._word_classes
        shape = " ".join(classes.get(w, w if w in self._vocabulary else "?") for w in words)
        return self._shape.fullmatch(shape) is not None

    @cached_property
    def _word_classes(self) -> dict[str, str]:
        return {**{n: "N" for n in self.names}, **{str(k): "#" for k in range(self.max_count + 1)},
                **{c: "C" for c in self.colours}, **{f: "F" for pair in self.fruits for f in pair},
                "she": "P", "he": "P"}

    @cached_property
    def _shape(self) -> re.Pattern:
        events = f"(P (gives # to N|finds # more F) \\. ){{{self.min_events},{self.max_events}}}"
        return re.compile(f"N has # C F \\. {events}now N has # C F \\.")

    @cached_property
    def _vocabulary(self) -> frozenset[str]:
        return frozenset(self.words)

    def _parse(self, w: list[str]) -> Check:
        names, m = self.names, self.max_count
        read = _Reader(w, self._vocabulary)
        owner = read.one_of(names, "a name")
        read.word("has")
        count = start = read.number(m)
        if start < 1:
            raise _Failure("count", read.at - 1, f"the story starts with {start} (it starts with 1..{m})")
        colour = read.one_of(self.colours, "a colour")
        fruit = self._read_fruit(read, count)
        read.word(".")
        log_p = -math.log(len(names) * len(self.colours) * len(self.fruits) * m * self._event_counts)
        events = 0
        while read.peek() != "now":
            if events == self.max_events:
                raise _Failure("grammar", read.at, f"expected 'now' after {events} events (at most {events})")
            pronoun = read.one_of(("she", "he"), "'she', 'he' or 'now'")
            if pronoun != self._pronoun(owner):
                raise _Failure("pronoun", read.at - 1, f"'{pronoun}' for {owner}")
            branch = 0.0 if count in (0, m) else math.log(0.5)
            if read.one_of(("gives", "finds"), "'gives' or 'finds'") == "gives":
                k = read.number(m)
                if not 1 <= k <= count:
                    raise _Failure("count", read.at - 1, f"gives {k} while holding {count}")
                read.word("to")
                recipient = read.one_of(names, "a name")
                if recipient == owner:
                    raise _Failure("recipient", read.at - 1, f"{owner} gives to {owner}")
                log_p += branch - math.log(count) - math.log(len(names) - 1)
                count -= k
            else:
                k = read.number(m)
                if not 1 <= k <= m - count:
                    raise _Failure("count", read.at - 1, f"finds {k} while holding {count} (at most {m} in all)")
                read.word("more")
                self._read_fruit(read, k, expected=fruit)
                log_p += branch - math.log(m - count)
                count += k
            read.word(".")
            events += 1
        if events < self.min_events:
            raise _Failure("grammar", read.at, f"a story has {self.min_events}..{self.max_events} events before 'now'")
        read.word("now")
        if (ending := read.one_of(names, "a name")) != owner:
            raise _Failure("owner", read.at - 1, f"ends with {ending}, the story is about {owner}")
        read.word("has")
        if (end := read.number(m)) != count:
            raise _Failure("total", read.at - 1, f"ends with {end}, the events leave {count}")
        if (last := read.one_of(self.colours, "a colour")) != colour:
            raise _Failure("colour", read.at - 1, f"ends with {last} {self.fruits[fruit][1]}, began with {colour}")
        self._read_fruit(read, count, expected=fruit)
        read.word(".")
        read.end()
        attributes = dict(zip(ATTRIBUTES, (owner, colour, self.fruits[fruit][1], start, events, count)))
        return Check(True, log_prob=log_p, attributes=attributes)

    def _read_fruit(self, read: "_Reader", count: int, expected: int | None = None) -> int:
        forms = {form: (i, j) for i, pair in enumerate(self.fruits) for j, form in enumerate(pair)}
        word = read.one_of(tuple(forms), "a fruit")
        fruit, plural = forms[word]
        if expected is not None and fruit != expected:
            raise _Failure("fruit", read.at - 1, f"{word} in a story of {self.fruits[expected][1]}")
        if plural != (count != 1):
            raise _Failure("plural", read.at - 1, f"{count} {word}")
        return fruit

    # -- exact laws ---------------------------------------------------------------------------

    def law(self, group: tuple[str, ...]) -> dict[tuple, float]:
        unknown = set(group) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown story attributes {sorted(unknown)}: use {', '.join(ATTRIBUTES)}")
        parts = ((("owner",), _uniform(self.names)), (("colour",), _uniform(self.colours)),
                 (("fruit",), _uniform([plural for _, plural in self.fruits])), (WALK, self._walk_law()))
        pieces, order = [], ()
        for names, law in parts:
            sub = tuple(a for a in group if a in names)
            if sub:
                pieces.append(marginal(law, names, sub))
                order += sub
        return marginal(product(*pieces), order, group)

    def _walk_law(self) -> dict[tuple, float]:
        """P(start, events, end): the counts' random walk, summed over ks and recipients."""
        m, out = self.max_count, {}
        for start in range(1, m + 1):
            counts = {start: 1.0 / (m * self._event_counts)}
            for events in range(1, self.max_events + 1):
                counts = self._walk_step(counts)
                if events >= self.min_events:
                    out.update({(start, events, end): p for end, p in counts.items()})
        return out

    def _walk_step(self, counts: dict[int, float]) -> dict[int, float]:
        m, out = self.max_count, {}
        for c, p in counts.items():
            branch = 1.0 if c in (0, m) else 0.5
            if c > 0:
                for k in range(1, c + 1):
                    out[c - k] = out.get(c - k, 0.0) + p * branch / c
            if c < m:
                for k in range(1, m - c + 1):
                    out[c + k] = out.get(c + k, 0.0) + p * branch / (m - c)
        return out

    def enumerate(self) -> Iterator[tuple[list[str], float]]:
        names, m, n_events = self.names, self.max_count, self.max_events
        for owner in names:
            for colour in self.colours:
                for fruit in range(len(self.fruits)):
                    for start in range(1, m + 1):
                        head = [owner, "has", str(start), colour, self._fruit(fruit, start), "."]
                        p = 1.0 / (len(names) * len(self.colours) * len(self.fruits) * m * self._event_counts)
                        for events in range(self.min_events, n_events + 1):
                            for middle, end, q in self._events(owner, fruit, start, events):
                                tail = ["now", owner, "has", str(end), colour, self._fruit(fruit, end), "."]
                                yield head + middle + tail, p * q

    def _events(self, owner: str, fruit: int, count: int, left: int) -> Iterator[tuple[list[str], int, float]]:
        if left == 0:
            yield [], count, 1.0
            return
        m, pronoun = self.max_count, self._pronoun(owner)
        branch = 1.0 if count in (0, self.max_count) else 0.5
        others = [n for n in self.names if n != owner]
        for k in range(1, count + 1):
            for recipient in others:
                for rest, end, q in self._events(owner, fruit, count - k, left - 1):
                    yield ([pronoun, "gives", str(k), "to", recipient, "."] + rest, end,
                           branch / count / len(others) * q)
        for k in range(1, m - count + 1):
            for rest, end, q in self._events(owner, fruit, count + k, left - 1):
                yield ([pronoun, "finds", str(k), "more", self._fruit(fruit, k), "."] + rest, end,
                       branch / (m - count) * q)


def _uniform(values: Sequence[str]) -> dict[tuple, float]:
    return {(v,): 1.0 / len(values) for v in values}


class _Reader:
    """Reads a story word by word; every failure names its word position."""

    def __init__(self, words: list[str], vocabulary: frozenset[str]):
        self.words, self.vocabulary, self.at = words, vocabulary, 0

    def peek(self) -> str | None:
        return self.words[self.at] if self.at < len(self.words) else None

    def _next(self, expected: str) -> str:
        word = self.peek()
        if word is None:
            raise _Failure("grammar", self.at, f"the story stops at word {self.at} (expected {expected})")
        if word not in self.vocabulary:
            raise _Failure("vocabulary", self.at, f"unknown word {word!r}")
        self.at += 1
        return word

    def word(self, expected: str) -> None:
        if (got := self._next(f"'{expected}'")) != expected:
            raise _Failure("grammar", self.at - 1, f"expected '{expected}', got '{got}'")

    def one_of(self, options: Sequence[str], what: str) -> str:
        if (got := self._next(what)) not in options:
            raise _Failure("grammar", self.at - 1, f"expected {what}, got '{got}'")
        return got

    def number(self, m: int) -> int:
        return int(self.one_of(tuple(str(n) for n in range(m + 1)), f"a number 0..{m}"))

    def end(self) -> None:
        if self.at < len(self.words):
            raise _Failure("grammar", self.at, f"text after the end: '{self.words[self.at]}'")

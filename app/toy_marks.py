"""Toy-language samples marked by the language's checker (flm_core.toy.check_ids): pure functions.

A Mark is one sample's verdict with the token index of its first broken constraint (`token`, into the
sample's block of L token ids: the checker's word position plus the story's offset), so the view can
highlight the very token that broke it. `samples_html` draws each sample as its story's tokens with one
badge (valid or the broken constraint's name), the broken token highlighted and the checker's message.
"""
from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from flm_core.tokens import SEP_ID
from flm_core.toy import check_ids, language

VALID_STYLE = "background:#e3f4e1;color:#1b6e1b;border:1px solid #9fd49a"
BROKEN_STYLE = "background:#fde2e2;color:#a40000;border:1px solid #f0a0a0"


@dataclass(frozen=True)
class Mark:
    """One sample's verdict. token: index of the first broken constraint in the sample's block (None when valid;
    at or after `end`, possibly past the block, when the story stopped before the word the constraint needs);
    start: index of the story's first word; end: one past its last word (trailing separators are layout);
    grammatical: it follows the language's grammar, whatever the agreements between its words."""

    valid: bool
    constraint: str | None
    token: int | None
    message: str
    start: int
    end: int
    grammatical: bool


def marks(source: str, tokenizer, tokens) -> list[Mark]:
    """The verdict of each sample (B, L) token ids of a model trained on the toy language `source`."""
    lang = language(source)
    out = []
    for row in np.asarray(tokens).tolist():
        check, start = check_ids(lang, tokenizer, row)
        end = next((i for i in range(len(row), start, -1) if row[i - 1] != SEP_ID), start)
        token = None if check.valid else start + int(check.position)
        out.append(Mark(check.valid, check.constraint, token, check.message, start, end, check.grammatical))
    return out


def focus_token(mark: Mark, length: int) -> int:
    """The token a view of one sample opens on: its broken token where that lies in the block of `length` tokens,
    else its story's first word."""
    if mark.token is not None and mark.token < length:
        return mark.token
    return min(mark.start, length - 1)


def verdict_phrase(mark: Mark) -> str:
    """'✓ valid' or '✗ pronoun at token 7: 'he' for anna'."""
    return "✓ valid" if mark.valid else f"✗ {mark.constraint} at token {mark.token}: {mark.message}"


def tally(marks_: Sequence[Mark]) -> dict:
    """{"valid": count, "grammatical": count, "n": samples, "failures": {constraint: samples}, the most frequent
    first}."""
    failures = Counter(m.constraint for m in marks_ if not m.valid)
    return {"valid": sum(m.valid for m in marks_), "grammatical": sum(m.grammatical for m in marks_),
            "n": len(marks_), "failures": dict(failures.most_common())}


def tally_phrase(counts: dict, source: str) -> str:
    """'**6 of 8 valid**, 7 grammatical (toy:story's checker) · first broken: pronoun 1, owner 1'."""
    broken = ", ".join(f"{name} {count}" for name, count in counts["failures"].items())
    return (f"**{counts['valid']} of {counts['n']} valid**, {counts['grammatical']} grammatical ({source}'s checker)"
            + (f" · first broken: {broken}" if broken else ""))


def _cell(text: str, title: str = "", broken: bool = False) -> str:
    style = f"{BROKEN_STYLE};border-radius:3px;padding:0 2px;font-weight:700" if broken else ""
    return f'<span title="{html.escape(title)}" style="{style}">{html.escape(text)}</span>'


def sample_html(mark: Mark, ids: Sequence[int], tokens: Sequence[str], lane: str, run: str, index: int,
                size: str) -> str:
    """One sample: its badge, its story's tokens (a separator inside the story as ⏎; the broken token, or a ∅
    where the story stopped short, highlighted) and the checker's message."""
    ids = [int(i) for i in ids]
    words = [_cell(tokens[t].strip() or tokens[t], f"token {i}", broken=i == mark.token) for i, t in enumerate(ids)
             if mark.start <= i < mark.end]
    if mark.token is not None and not mark.start <= mark.token < mark.end:
        words.append(_cell("∅", f"token {mark.token}: nothing there", broken=True))
    badge = "✓ valid" if mark.valid else f"✗ {mark.constraint}"
    why = ("" if mark.valid else
           f'<div class="flm-toy-why" style="font-size:0.8em;color:#a40000;margin-top:2px">'
           f'{html.escape(verdict_phrase(mark).removeprefix("✗ "))}</div>')
    return (f'<div class="flm-text flm-toy" data-lane="{html.escape(lane)}" data-run="{html.escape(run)}" '
            f'data-sample="{index}" data-valid="{int(mark.valid)}" style="font-family:monospace;font-size:{size};'
            f'border:1px solid #ddd;border-radius:6px;padding:6px 8px;margin:4px 0;background:#fafafa;'
            f'line-height:1.5"><span class="flm-badge" style="{VALID_STYLE if mark.valid else BROKEN_STYLE};'
            f'border-radius:10px;padding:0 7px;margin-right:6px;font-size:0.85em;white-space:nowrap">{badge}</span>'
            + " ".join(words) + why + "</div>")


def samples_html(marks_: Sequence[Mark], tokens_rows, tokens: Sequence[str], lane: str, big: bool = False,
                 run: str = "", size: str | None = None) -> str:
    """Every sample of a run marked (tokens_rows (B, L) ids; tokens: the printable string of every id);
    `data-lane` / `data-run` / `data-valid` let browser tests find fresh output and count verdicts."""
    size = size or ("1.2rem" if big else "0.9rem")
    rows = np.asarray(tokens_rows).tolist()
    return ('<div class="flm-texts">' + "".join(sample_html(m, ids, tokens, lane, run, i, size)
                                                 for i, (m, ids) in enumerate(zip(marks_, rows))) + "</div>")

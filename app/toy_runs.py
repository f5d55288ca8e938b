"""Kept runs of toy-language checkpoints (Streamlit glue): their verdicts, drawn wherever samples are shown.

A run is a toy run when its checkpoint's config names a toy data source (flm_core.toy.is_toy); its marks
are computed once and kept in run["derived"]["toy"] (None for a corpus model, whose texts stay plain).
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import streamlit as st

from flm_core.toy import documents, is_toy, language
from app import common, render
from app.toy_marks import marks, samples_html, tally, tally_phrase


def source_of(run: dict) -> str | None:
    """The toy language ("toy:story") a run's checkpoint was trained on, None for a corpus model."""
    source = common.load_pipeline(run["path"], run["mtime"]).config.data.get("source")
    return source if is_toy(source) else None


def run_marks(run: dict) -> dict | None:
    """{"source", "marks", "tally"} of a toy run (computed once, kept with the run); None for a corpus model and
    for a toy source flm_core does not know (a hand-edited config: its texts stay plain)."""
    derived = run["derived"]
    if "toy" not in derived:
        source, derived["toy"] = source_of(run), None
        if source is not None:
            tokenizer = common.load_pipeline(run["path"], run["mtime"]).tokenizer
            with contextlib.suppress(ValueError):  # flm_core.toy.language: an unknown toy language
                found = marks(source, tokenizer, run["gen"].tokens.numpy())
                derived["toy"] = {"source": source, "marks": found, "tally": tally(found)}
    return derived["toy"]


def show_texts(run: dict, big: bool, size: str | None = None) -> bool:
    """A toy run's samples, each with its verdict badge and its broken token highlighted, under the run's tally;
    False (nothing drawn) for a corpus model."""
    toy = run_marks(run)
    if toy is None:
        return False
    st.markdown(tally_phrase(toy["tally"], toy["source"]))
    tokens = common.token_table(run["path"], run["mtime"])
    st.html(samples_html(toy["marks"], run["gen"].tokens.numpy(), tokens, run["kind"], big=big,
                         run=f"{run['created']:.6f}", size=size))
    return True


def overview(runs: Sequence[dict]) -> str | None:
    """The note above Generate's lanes when every lane is a toy model; None otherwise."""
    toys = [run_marks(r) for r in runs]
    if not toys or None in toys:
        return None
    sources = sorted({toy["source"] for toy in toys})
    return (f"**Toy-language models** ({', '.join(sources)}): a synthetic language whose law is known "
            "exactly, so every sample is checked by its rules: a badge says valid or names the first broken "
            "constraint, whose token is highlighted.")


def show_generator_texts(runs: Sequence[dict], n: int, seed: int, big: bool, size: str | None) -> bool:
    """Documents of the toy language itself beside toy lanes (every lane of one language); False otherwise."""
    sources = {toy["source"] if toy else None for toy in map(run_marks, runs)}
    if len(sources) != 1 or None in sources:
        return False
    source = sources.pop()
    st.markdown(f"#### The language itself · {source}")
    st.caption("Drawn from its generator (every one valid by construction).")
    st.html(render.texts_html(documents(language(source), n, seed), "data", big=big, size=size))
    return True

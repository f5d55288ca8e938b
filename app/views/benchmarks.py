"""Benchmarks: Gen PPL vs time per sample from checkpoints/benchmarks.json, the toy models' validity and distance from
checkpoints/benchmarks-toy.json, plus this session's runs."""
from __future__ import annotations

import streamlit as st

from flm_core.bench import DEGENERATE_ENTROPY, degenerate
from app import charts, common, toy_bench
from app.bench_table import BENCH_FIELDS, model_rows, quality_points, read_benchmarks
from app.quality import data_row

big = common.big()
st.title("Benchmarks")
path = common.benchmarks_path()
rows, message = read_benchmarks(path)
session = st.session_state.get("history", [])

batches = {r.get("num_samples") for r in model_rows(rows)}
batch = batches.pop() if len(batches) == 1 else None  # bench times all samples of a row as one batch
st.caption(f"From `{path}` (written by `python -m flm_core bench`), plus the runs you made in this session "
           "(their timing only: no PPL is computed in the app)."
           + (f" Benchmark rows are timed with {batch} samples in one batch; a run of fewer samples pays more "
              "per sample, so compare your runs at the same batch." if batch else ""))
if message:
    st.info(f"{message.capitalize() if message == 'no benchmark yet' else message} — run `python -m flm_core bench` "
            f"to create {path.name}.")

reference = data_row(rows)


def row_note(row: dict) -> str:
    if row is reference:
        return "real text: the reference"
    if row.get("self_evaluated"):
        return "scored by itself: not comparable"
    return "degenerate: repeats itself" if degenerate(row, reference) else ""


if session or quality_points(rows):
    st.plotly_chart(charts.benchmark_figure(rows, session, big=big), key="chart_bench")
    if quality_points(rows):
        st.caption("Lower is better, but only beside diverse text: **dashed**, real validation text's Gen PPL; **✕**, "
                   f"degenerate settings (entropy below {DEGENERATE_ENTROPY:.0%} of real text's: a low Gen PPL from "
                   "repeating words), left out of the lines; **open, dotted**, a model that is also the evaluator "
                   "and scores its own text (not comparable). Hover a point for its entropy.")
if rows:
    st.subheader("Quality and diversity")
    columns = [c for c in BENCH_FIELDS if any(r.get(c) is not None for r in rows)]
    st.dataframe([{"model": r["model"], "note": row_note(r), **{c: r.get(c) for c in columns if c != "model"}}
                  for r in rows], hide_index=True,
                 column_config={"gen_ppl": st.column_config.NumberColumn("Gen PPL", format="%.1f"),
                                "seconds_per_sample": st.column_config.NumberColumn("s / sample", format="%.4f"),
                                "entropy": st.column_config.NumberColumn("entropy", format="%.2f"),
                                "mauve": st.column_config.NumberColumn("MAUVE", format="%.3f"),
                                "memorization": st.column_config.NumberColumn("memorization", format="%.3f"),
                                "word_validity": st.column_config.NumberColumn("word validity", format="%.3f")})
toy_bench.show(big)  # the toy models' benchmark, where there is one
if session:
    st.subheader("Your runs this session")
    st.dataframe(session, hide_index=True,
                 column_config={"seconds": st.column_config.NumberColumn("seconds", format="%.3f"),
                                "seconds_per_sample": st.column_config.NumberColumn("s / sample", format="%.4f"),
                                "tokens_per_second": st.column_config.NumberColumn("tokens / s", format="%.0f"),
                                "num_samples": st.column_config.NumberColumn("samples")})
elif not rows:
    st.caption("Generate something on the Generate page to see its timing here.")

"""The toy models' benchmark (Streamlit glue): `bench ... --out checkpoints --name benchmarks-toy` writes
benchmarks-toy.json beside the corpus benchmark (bench refuses to mix toy and corpus models). The Benchmarks page
draws its figure (flm_core.toy.figure: validity and distance against time and network calls) and table; the
one-step page quotes its one-step rows of the checkpoints it ran, matched by folder as Generate matches its own."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

from flm_core.toy.figure import toy_figure
from app import common
from app.bench_table import model_rows, read_benchmarks
from app.headline import bench_index, bench_model
from app.kind_style import KIND_COLOR

TOY_BENCH = "benchmarks-toy.json"


def toy_bench_path() -> Path:
    """benchmarks-toy.json beside the corpus benchmark (common.benchmarks_path)."""
    return common.benchmarks_path().with_name(TOY_BENCH)


def toy_rows() -> list[dict]:
    """The toy benchmark's rows ([] without a readable file)."""
    return read_benchmarks(toy_bench_path())[0]


def show(big: bool) -> None:
    """The Benchmarks page's toy section: nothing without a toy benchmark."""
    path = toy_bench_path()
    rows, message = read_benchmarks(path)
    if not rows:
        if message != "no benchmark yet":
            st.warning(f"Toy benchmark: {message}")
        return
    st.subheader("Toy language: validity and distance")
    st.caption(f"From `{path}`: each model at each step count, its samples checked by the language's rules. Validity "
               "is the share of valid samples; distance is 0 for the language's exact law and 1 when nothing is valid "
               "(dashed: the generator's own samples, the floor of the distance at this sample size).")
    figure = toy_figure([dict(r, steps=int(r["steps"])) if r.get("steps") else r for r in rows],  # labels "1", not "1.0"
                        KIND_COLOR)
    if big:
        figure.update_layout(font=dict(size=18))
    st.plotly_chart(figure, key="chart_toy_bench")
    st.dataframe([{"model": r["model"], "steps": r.get("steps"), "nfe": r.get("nfe"),
                   "seconds_per_sample": r.get("seconds_per_sample"), "toy_validity": r.get("toy_validity"),
                   "toy_distance": r.get("toy_distance"),
                   "broken": ", ".join(f"{k} {v}" for k, v in (r.get("toy_failures") or {}).items())} for r in rows],
                 hide_index=True,
                 column_config={"seconds_per_sample": st.column_config.NumberColumn("s / sample", format="%.4f"),
                                "toy_validity": st.column_config.NumberColumn("validity", format="%.3f"),
                                "toy_distance": st.column_config.NumberColumn("distance", format="%.3f"),
                                "broken": st.column_config.TextColumn("first broken constraint (samples)")})


def one_step_phrase(runs: Sequence[dict]) -> str | None:
    """'In the benchmark (`benchmarks-toy.json`, 256 samples each at one step): mdlm-toy 12 % valid · ...' for the
    runs' checkpoints it measured at one step; None where it measured none of them."""
    path = toy_bench_path()
    rows = model_rows(toy_rows())
    index = bench_index(rows, path, common.REPO_ROOT)
    found = []
    for run in runs:
        model = bench_model(index, run["path"])
        row = next((r for r in rows if r["model"] == model and r.get("steps") == 1), None)
        if row is not None and row.get("toy_validity") is not None:
            found.append((model, row))
    if not found:
        return None
    samples = {row.get("num_samples") for _, row in found}
    each = f", {samples.pop()} samples each" if len(samples) == 1 else ""
    return (f"In the benchmark (`{path.name}`{each}, one step): "
            + " · ".join(f"{model} {100 * row['toy_validity']:.0f} % valid" for model, row in found))

"""The Generate page's results (Streamlit): the headline (quality-matched speedup from the benchmark beside
this click's live figure), what the models are and how good their text is, the lanes' texts and real text."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from flm_core.bench import ENTROPY_TOLERANCE
from flm_core.cards import read_card_data
from flm_core.kinds import kind_of
from app import common, render, toy_runs
from app.bench_table import read_benchmarks
from app.headline import (bench_index, bench_model, bench_source, live_phrase, matched_entries, matched_sentence,
                          read_bench_result, speed_phrase)
from app.lane_specs import lane_title, short_title
from app.lanes import live_speedups
from app.phrases import steps_phrase, times_phrase
from app.quality import (VAL_TEXTS, bench_row, card_facts, data_row, lane_note, overview, quality_phrase,
                         read_val_texts, real_samples)
from app.toy_bench import toy_bench_path


@st.cache_data(show_spinner=False, max_entries=4)
def _bench_file(path: str, mtime: float) -> dict[str, Any]:
    rows, message = read_benchmarks(path)
    return {"rows": rows, "message": message, "result": read_bench_result(path)}


def _bench(path: Path) -> dict[str, Any]:
    mtime = path.stat().st_mtime if path.is_file() else 0.0
    bench = dict(_bench_file(str(path), mtime), path=path)
    bench["data"] = data_row(bench["rows"])
    bench["index"] = bench_index(bench["rows"], path, common.REPO_ROOT)
    return bench


def bench_context() -> dict[str, Any]:
    """The benchmark beside the checkpoints: rows, the real-text row, speedups and which folder is which model;
    under "toy", the same for the toy models' benchmark (benchmarks-toy.json)."""
    return dict(_bench(common.benchmarks_path()), toy=_bench(toy_bench_path()))


@st.cache_data(show_spinner=False, max_entries=32)
def _card(path: str, mtime: float) -> dict | None:
    try:
        return read_card_data(path)
    except (OSError, ValueError):  # an unreadable card.json says nothing
        return None


def facts(run: dict) -> dict[str, Any]:
    return card_facts(_card(run["path"], run["mtime"]))


def counted_parameters(run: dict) -> int | None:
    try:
        pipe = common.load_pipeline(run["path"], run["mtime"])
    except Exception:  # noqa: BLE001 - only a figure of the note
        return None
    return sum(p.numel() for p in pipe.network.parameters())


def title(run: dict, name: bool = True) -> str:
    fixed = kind_of(run["kind"]).fixed_steps
    steps = run["gen"].steps
    return lane_title(run["kind"], run["name"], steps, fixed) if name else short_title(run["kind"], steps, fixed)


def note(run: dict, bench: dict[str, Any], brief: bool) -> str:
    """The lane's line: size, training, quality (brief: the quality alone, for presentation mode); a toy model's
    quality from the toy benchmark."""
    spec = kind_of(run["kind"])
    bench = bench["toy"] if toy_runs.run_marks(run) else bench
    model = bench_model(bench["index"], run["path"])
    row = bench_row(bench["rows"], model, run["gen"].steps, spec.fixed_steps)
    if brief:
        return quality_phrase(row, None, run["gen"].steps, model is not None, degenerate_of=bench["data"])
    return lane_note(facts(run), counted_parameters(run), row, bench["data"], run["gen"].steps, model is not None,
                     spec.two_times)


def show_quality_overview(runs: Sequence[dict], bench: dict[str, Any], big: bool) -> None:
    """The note that says what the models are, with real text's figures for scale."""
    if runs:
        st.markdown(toy_runs.overview(runs) or overview([facts(r) for r in runs], bench["data"], brief=big))


def show_headline(runs: Sequence[dict], bench: dict[str, Any], big: bool) -> None:
    """The quality-matched speedup from the benchmark, then this click's live ratios (medians of repeats)."""
    flow_map = next((r for r in runs if kind_of(r["kind"]).two_times), None)
    if flow_map is None:
        return
    fm = title(flow_map, name=False)
    fm_model = bench_model(bench["index"], flow_map["path"])
    others = [r for r in runs if r is not flow_map]
    speedups = bench["result"].get("speedups", [])
    entries = (matched_entries(speedups, fm_model, [bench_model(bench["index"], r["path"]) for r in others])
               if flow_map["gen"].steps == 1 else [])
    if entries:
        st.markdown(f"### {matched_sentence(entries[0], fm, entries)}")
        more = "".join(f" {matched_sentence(e, fm, entries)}." for e in entries[1:])
        source = bench_source(bench["path"], bench["result"])
        st.caption(f"Quality-matched, from the benchmark ({Path(bench['path']).name}).{more}" if big else
                   f"Quality-matched, from the benchmark ({source}): the fewest steps whose Gen PPL is at most "
                   f"FMLM's with entropy within {ENTROPY_TOLERANCE:.0%}." + more)
    else:
        why = ("the benchmark's figure is for one step" if flow_map["gen"].steps != 1 else
               "this checkpoint is not in the benchmark" if fm_model is None else "the benchmark has none for it")
        st.markdown(f"### {fm}: no quality-matched speedup ({why})")
    show_live(flow_map, others, big)


def show_live(flow_map: dict, others: Sequence[dict], big: bool) -> None:
    """This click: the flow map's wall time over each other lane's, each the median of its repeats."""
    ups = live_speedups([{"name": title(r), "kind": r["kind"], "seconds": r["gen"].seconds, "nfe": r["gen"].nfe}
                         for r in [flow_map, *others]])
    if not ups:
        return
    repeats = [flow_map.get("timed_runs", 1)] + [r.get("timed_runs", 1) for r in others]
    fm = title(flow_map, name=False)
    if big:  # one line: the first screen is for the texts
        ratios = " · ".join(f"**{speed_phrase(up['time_ratio'])}** "
                            f"{'as' if speed_phrase(up['time_ratio']).startswith('about') else 'than'} "
                            f"{up['name'].split(' · ')[0]}" for up in ups)
        st.markdown(f"**{live_phrase(repeats)}**: {ratios} (at unequal quality)")
        return
    st.markdown(f"**{live_phrase(repeats)}** · wall time of {fm} vs each lane, at unequal quality:")
    for col, up in zip(st.columns(len(ups)), ups):
        calls = ("same number of network calls" if up["nfe_ratio"] == 1 else
                 times_phrase(up["nfe_ratio"], "fewer network calls", "more network calls"))
        col.metric(f"vs {up['name']}", speed_phrase(up["time_ratio"]), calls,
                   delta_color="off", delta_arrow="off")
    st.caption("Live wall times on this machine, which the browser shares while it draws the page; "
               "`python -m flm_core bench-speed` times the samplers alone.")


def text_size(columns: int, big: bool) -> str | None:
    """Sample text size in presentation mode: smaller as the lanes get narrower."""
    if not big:
        return None
    return "1.25rem" if columns <= 2 else "1.05rem" if columns == 3 else "0.9rem"


def show_lane(run: dict, bench: dict[str, Any], big: bool, size: str | None, narrow: bool = False) -> None:
    """One finished run: its name, timing, measured quality and texts (narrow: a lane among four or more, its
    timing in one line)."""
    gen = run["gen"]
    timed = run.get("timed_runs", 1)
    ms = f"{1e3 * gen.seconds:.0f} ms" if gen.seconds < 1 else f"{gen.seconds:.1f} s"
    if big:  # name and time in one line, its quality below, small: the first screen is for the texts
        st.markdown(f"#### {title(run, name=False)} · {ms}")
        st.caption(note(run, bench, brief=True))
    elif narrow:
        st.markdown(f"#### {title(run)}")
        st.markdown(f"**{ms}** · {gen.nfe} call{'s' if gen.nfe != 1 else ''} · median of {timed}")
        st.caption(note(run, bench, brief=False))
    else:
        st.markdown(f"#### {title(run)}")
        a, b = st.columns(2)
        a.metric("Wall time", ms)
        b.metric("NFE", f"{gen.nfe}")
        st.caption(f"{gen.tokens_per_second:,.0f} tokens/s · {steps_phrase(gen.steps)} · device `{gen.device}` · "
                   f"{run['n']} × {run['seq_len']} tokens · median of {timed} identical run{'s' if timed > 1 else ''}")
        st.caption(note(run, bench, brief=False))
    if run.get("knobs"):
        st.caption(f"Sampler: {run['knobs']} (benchmark figures are for the plain sampler)")
    if run["prefix"] and gen.steps == 1 and not kind_of(run["kind"]).discrete:  # said where the texts are
        st.caption("⚠ At 1 step the prompt is invisible (the run starts from pure noise): it is written in and the "
                   "rest is unconditional.")
    if not toy_runs.show_texts(run, big, size):  # a toy model's samples come with their verdicts
        st.html(render.texts_html(gen.texts, run["kind"], big=big, run=f"{run['created']:.6f}", size=size))


def real_text_sources(runs: Sequence[dict], bench: dict[str, Any]) -> list[Path]:
    """Where validation texts may be: the benchmark's data folder and each lane's training data folder."""
    folders = [bench["result"].get("settings", {}).get("data")]
    for run in runs:
        try:
            folders.append(common.load_pipeline(run["path"], run["mtime"]).config.data.get("data_dir"))
        except Exception:  # noqa: BLE001 - one source fewer
            continue
    out = []
    for folder in dict.fromkeys(f for f in folders if isinstance(f, str) and f):
        out += [common.REPO_ROOT / folder / VAL_TEXTS, Path(bench["path"]).parent.parent / folder / VAL_TEXTS]
    return out


def show_real_text(runs: Sequence[dict], bench: dict[str, Any], seed: int, big: bool, size: str | None) -> None:
    """Real validation text beside the samples, as long as they are: for scale."""
    n = max((r["n"] for r in runs), default=2)
    if toy_runs.show_generator_texts(runs, n, seed, big, size):  # a toy language's real text is its generator's
        return
    st.markdown("#### Real text · validation")
    length = int(statistics.mean(len(t) for r in runs for t in r["gen"].texts)) if runs else 600
    texts, source = read_val_texts(real_text_sources(runs, bench))
    if not texts:
        texts, source = list((bench["data"] or {}).get("examples") or []), "the benchmark's examples"
    if not texts:
        st.info("No validation text found: prepare the data (`python -m flm_core prepare-data`) or run "
                "`python -m flm_core bench`, which keeps examples.")
        return
    data = bench["data"] or {}
    st.caption(quality_phrase(data, None, 0, True) if data.get("gen_ppl") is not None else "human-written")
    st.html(render.texts_html(real_samples(texts, n, seed, max(length, 80)), "data", big=big, size=size))
    if not big:
        st.caption(f"From `{Path(source).name if source.endswith('.jsonl') else source}`, cut to the samples' length.")

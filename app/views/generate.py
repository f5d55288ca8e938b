"""Generate (home): run models side by side on a shared seed, with live timing and an FLM/FMLM diff."""
from __future__ import annotations

import streamlit as st

from flm_core.kinds import kind_of
from flm_core.pipeline import Pipeline
from flm_core.schedule import STEP_GRID
from app import charts, common, render
from app.catalogue import CheckpointInfo
from app.kind_style import kind_label
from app.lanes import estimate_seconds, flow_pair, live_speedups, token_diff
from app.phrases import steps_phrase, times_phrase
from flm_core.errors import one_line

MAX_SAMPLES = 16
SLOW_SECONDS = 10.0  # a run estimated to take longer is announced before the click

big = common.big()
st.title("Generate")
if not big:  # presentation mode keeps the screen for the runs
    st.caption("Real runs of the checkpoints, side by side from the same seed. FMLM writes the whole sequence in "
               "one network call; FLM integrates the flow with many Euler steps; MDLM unmasks step by step; "
               "AR writes one token per call.")

infos = common.usable(common.catalog())
if not infos:
    st.info("No checkpoints yet. Put checkpoint folders under `checkpoints/` (or set FLM_EXPLORER_CHECKPOINTS), "
            "e.g. `python -m flm_core train fmlm ...`, or add a folder in the sidebar.")
    st.stop()

by_path = {c.path: c for c in infos}
defaults, seen = [], set()
for c in infos:  # one checkpoint of each flow kind (FMLM and FLM) by default
    if not c.spec.discrete and c.kind not in seen:
        defaults.append(c.path)
        seen.add(c.kind)

top = st.columns([3, 1, 1])
common.kept_choices("models", by_path, defaults or [infos[0].path])
common.defaults(num_samples=2, seed=0)
chosen = top[0].multiselect("Models", list(by_path), format_func=lambda p: by_path[p].label, key="models")
num_samples = top[1].number_input("Samples", min_value=1, max_value=MAX_SAMPLES, step=1, key="num_samples")
seed = top[2].number_input("Seed (shared)", min_value=0, max_value=2**31 - 1, step=1, key="seed")


def lane_header(info: CheckpointInfo) -> int:
    """A lane's model, loaded before any click so that the click times generation only (a load error shows
    here), and its step slider; a model whose runs make a fixed number of calls (AR) has none. Returns the
    steps its run is asked for."""
    spec = info.spec
    with common.guard(f"Loading {info.label}"):
        pipes[info.path] = common.pipeline_for(info)
    if not spec.fixed_steps:
        common.defaults(**{f"steps::{info.path}": spec.default_steps})
        return st.select_slider(f"Steps · {info.label}", options=STEP_GRID, key=f"steps::{info.path}",
                                help="Network calls (log scale, 1 to 1024).")
    st.markdown(f"**{info.label}**")
    if info.path in pipes:
        calls = pipes[info.path].sampler.num_steps(spec.default_steps)
        st.caption(f"{spec.label}: fixed at L-1 = {calls} network calls (one per token); no step choice.")
    return spec.default_steps


def network_calls(info: CheckpointInfo) -> int:
    """Network calls a run of the lane makes (its steps, or the fixed count of an AR)."""
    pipe = pipes.get(info.path)
    return pipe.sampler.num_steps(steps[info.path]) if pipe is not None else steps[info.path]


lanes = [by_path[p] for p in chosen]
pipes: dict[str, Pipeline] = {}  # the lanes' loaded models, by path
steps: dict[str, int] = {}
for col, info in zip(st.columns(len(lanes)) if lanes else [], lanes):
    with col:
        steps[info.path] = lane_header(info)

common.defaults(prompt="", ending="")
p1, p2 = st.columns([3, 2])
prefix = p1.text_input("Prompt (every sample starts with it)", key="prompt", placeholder="e.g. The Moon is",
                       help="Held fixed while each model writes the rest: MDLM and AR condition on it exactly; the "
                            "flows re-impose it on its own noising path after every step.")
suffix = p2.text_input("Ending (optional)", key="ending", placeholder="e.g. in the Solar System.",
                       help="Held at the end of every sample: the bidirectional models write towards it.")
if prefix or suffix:
    notes = []
    for info in lanes:
        if not info.spec.discrete and steps[info.path] == 1:
            notes.append(f"{info.label} at 1 step starts from pure noise, where the prompt is invisible: it writes "
                         "the prompt in and the rest unconditionally (2+ steps let it see the prompt).")
        if info.spec.causal and suffix:
            notes.append(f"{info.label} writes left to right: it writes the ending when it gets there, without "
                         "planning for it.")
    for note in notes:
        st.caption(note)

slow = []
for info in lanes:  # long runs announced before the click, from this session's earlier runs
    estimate = estimate_seconds(common.run_store().values(), info.path, network_calls(info), int(num_samples))
    if estimate is not None and estimate > SLOW_SECONDS:
        slow.append(f"{info.label} about {estimate:.0f} s")
if slow:
    st.caption(f"Estimated from your earlier runs: {', '.join(slow)}.")
clicked = st.button("Generate", type="primary", disabled=not lanes, key="generate", icon=":material/bolt:")


def show_lane(run: dict) -> None:
    """Timing and texts of one finished run."""
    gen = run["gen"]
    st.markdown(f"#### {kind_label(run['kind'])} · {run['name']}")
    a, b = st.columns(2)
    a.metric("Wall time", f"{1e3 * gen.seconds:.0f} ms" if gen.seconds < 10 else f"{gen.seconds:.1f} s")
    b.metric("NFE", f"{gen.nfe}")
    timed = run.get("timed_runs", 1)
    st.caption(f"{gen.tokens_per_second:,.0f} tokens/s · {steps_phrase(gen.steps)} · device `{gen.device}` · "
               f"{run['n']} × {run['seq_len']} tokens" + (f" · fastest of {timed} identical runs" if timed > 1 else ""))
    st.html(render.texts_html(gen.texts, run["kind"], big=big, run=f"{run['created']:.6f}"))


def lane_timings(runs: list[dict]) -> list[dict]:
    return [{"name": r["name"], "kind": r["kind"], "seconds": r["gen"].seconds, "nfe": r["gen"].nfe, "n": r["n"]}
            for r in runs]


def show_speedups(runs: list[dict]) -> None:
    """The headline, above the lanes: the flow map's (FMLM's) speedup over each other lane."""
    ups = live_speedups(lane_timings(runs))
    if ups:
        flow_map = next(r for r in runs if kind_of(r["kind"]).two_times)
        st.subheader(f"{kind_label(flow_map['kind'])} speedup")
        cols = st.columns(len(ups))
        for col, up in zip(cols, ups):
            col.metric(f"vs {kind_label(up['kind'])} · {up['name']}",
                       times_phrase(up["time_ratio"], "faster", "slower"),
                       times_phrase(up["nfe_ratio"], "fewer network calls", "more network calls"),
                       delta_color="off")
        st.caption("Live wall times on this machine, which the browser shares while it draws the page; "
                   "`python -m flm_core bench-speed` times the samplers alone.")


def show_summary(runs: list[dict]) -> None:
    """Below the lanes: a timing chart and the FLM/FMLM token diff."""
    lane_info = lane_timings(runs)
    if len(runs) > 1:
        st.plotly_chart(charts.timing_figure(lane_info, big=big), key="timing_chart")
    flm, fmlm = flow_pair(runs)
    if flm and fmlm:
        flm_label, fmlm_label = kind_label(flm["kind"]), kind_label(fmlm["kind"])
        st.subheader(f"{flm_label} vs {fmlm_label}: token agreement")
        if (flm["vocab_size"], flm["seq_len"], flm["n"]) != (fmlm["vocab_size"], fmlm["seq_len"], fmlm["n"]):
            st.info("These two checkpoints differ in vocabulary or length, so their tokens cannot be compared.")
            return
        held = fmlm["gen"].held if (flm["prefix"], flm["suffix"]) == (fmlm["prefix"], fmlm["suffix"]) else None
        diff = token_diff(flm["gen"].tokens.numpy(), fmlm["gen"].tokens.numpy(),
                          free=None if held is None else ~held.numpy())
        fmlm_steps, flm_steps = steps_phrase(fmlm["gen"].steps), steps_phrase(flm["gen"].steps)
        st.metric(f"Positions where {fmlm_label} ({fmlm_steps}) matches {flm_label} ({flm_steps})",
                  f"{100 * diff['agreement']:.1f} %")
        st.caption("Same seed ⇒ both flows start from the same Gaussian noise, so this measures how faithfully the "
                   f"distilled flow map ({fmlm_steps}) reproduces the {flm_label}'s path ({flm_steps})"
                   + (" on the positions they wrote (the prompt's are equal by construction)." if held is not None
                      else "."))
        sample = 0
        if flm["n"] > 1:
            sample = st.selectbox("Sample", range(flm["n"]), key="diff_sample",
                                  format_func=lambda i: f"#{i} · {100 * diff['per_sample'][i]:.0f} % agree")
        tokens = common.token_table(fmlm["path"], fmlm["mtime"])
        st.html(render.diff_html(flm["gen"].tokens[sample].tolist(), fmlm["gen"].tokens[sample].tolist(), tokens,
                                 labels=(f"{flm_label} · {flm['name']}", f"{fmlm_label} · {fmlm['name']}")))


headline, results = st.container(), st.container()  # the speedups sit above the lanes, in view after a click
if clicked:
    st.session_state["batch"] = []
    errors = st.session_state["batch_errors"] = []  # kept as they come: the run may be stopped mid-way
    cols = results.columns(len(lanes))
    slots = {info.path: col.empty() for info, col in zip(lanes, cols)}
    # Cheapest lane first: the one-step FMLM text is on screen before the long runs finish.
    order = sorted(lanes, key=network_calls)
    unfinished = st.session_state["batch_unfinished"] = [info.label for info in order]  # left mid-run: shown later
    for info in order:
        with slots[info.path].container():
            bar = st.progress(0.0, text=f"{info.label}: starting…")
            try:
                run = common.execute(info, steps[info.path], seed, num_samples,
                                     progress=common.progress_reporter(bar, info.label), prefix=prefix,
                                     suffix=suffix)
            except Exception as err:  # noqa: BLE001 - one line, no traceback
                errors.append(f"{info.label}: {one_line(err)}")
                unfinished.remove(info.label)
                bar.empty()
                st.error(errors[-1])
                continue
            bar.empty()
            st.session_state["batch"].append(run["id"])
            unfinished.remove(info.label)
        with slots[info.path].container():
            show_lane(run)
    done = [common.run_store()[i] for i in st.session_state["batch"] if i in common.run_store()]
    with headline:
        show_speedups(done)
    with results:
        show_summary(done)
elif any(st.session_state.get(key) for key in ("batch", "batch_errors", "batch_unfinished")):
    store = common.run_store()
    done = [store[i] for i in st.session_state.get("batch", []) if i in store]
    with headline:
        show_speedups(done)
    with results:
        if done:
            cols = st.columns(len(done))
            for col, run in zip(cols, done):
                with col:
                    show_lane(run)
        for message in st.session_state.get("batch_errors", []):
            st.error(message)
        if st.session_state.get("batch_unfinished"):
            st.warning(f"Not finished: {', '.join(st.session_state['batch_unfinished'])} (the run stopped when the "
                       "page was left or the settings changed). Press Generate to run it again.")
        show_summary(done)
        st.caption("Open **Trajectory** in the sidebar to scrub through these runs step by step.")

"""Generate (home): lanes of (checkpoint, steps) run side by side from a shared seed. Above them the
quality-matched speedup of the benchmark beside this click's live figure, and what the models are; below them
their texts (real text beside them on request), a timing chart and an FLM/FMLM diff."""
from __future__ import annotations

import streamlit as st

from flm_core.errors import one_line
from flm_core.pipeline import Pipeline
from app import charts, common, generate_parts as parts, knobs as sampler_knobs, lane_ui, render
from app.kind_style import kind_label
from app.lane_specs import lane_title
from app.lanes import estimate_seconds, flow_pair, token_diff
from app.phrases import steps_phrase
from app.tokens_view import cell_strings

MAX_SAMPLES = 16
SLOW_SECONDS = 10.0  # a run estimated to take longer is announced before the click

big = common.big()
if not big:  # presentation mode keeps the screen for the runs
    st.title("Generate")
    st.caption("Real runs of the checkpoints, side by side from the same seed. Each lane is a checkpoint at a step "
               "count, so one model can run at several. FMLM writes the whole sequence in one network call; FLM "
               "integrates the flow with many Euler steps; MDLM unmasks step by step; AR writes one token per call.")

infos = common.usable(common.catalog())
if not infos:
    st.info("No checkpoints yet. Put checkpoint folders under `checkpoints/` (or set FLM_EXPLORER_CHECKPOINTS), "
            "e.g. `python -m flm_core train fmlm ...`, or add a folder in the sidebar.")
    st.stop()

by_path = {c.path: c for c in infos}
lanes = lane_ui.lanes_state(infos)
pipes: dict[str, Pipeline] = {}  # the lanes' loaded models, by path
common.defaults(num_samples=2, seed=0, prompt="", ending="", show_real=False)
has_results = any(st.session_state.get(key) for key in ("batch", "batch_errors", "batch_unfinished"))


def generate_button() -> bool:
    return st.button("Generate", type="primary", disabled=not lanes, key="generate", icon=":material/bolt:",
                     shortcut="G", help="Run every lane (keyboard: G).")


def prompt_notes(prefix: str, suffix: str) -> None:
    """What a one-step flow and a left-to-right model do with a prompt, said before the click."""
    notes = []
    for lane in lanes:
        info = by_path[lane["path"]]
        if not info.spec.discrete and lane["steps"] == 1 and prefix:
            notes.append(f"{info.label} at 1 step starts from pure noise, where the prompt is invisible: it writes "
                         "the prompt in and the rest unconditionally (2+ steps let it see the prompt).")
        if info.spec.causal and suffix:
            notes.append(f"{info.label} writes left to right: it writes the ending when it gets there, without "
                         "planning for it.")
    for text in dict.fromkeys(notes):
        st.caption(text)


def settings() -> tuple[int, int, str, str, sampler_knobs.Knobs]:
    """The lanes, samples, seed, prompt, ending and flow-sampler knobs; returns (samples, seed, prefix, suffix,
    knobs)."""
    lane_ui.lane_controls(lanes, infos, pipes)
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    n = c1.number_input("Samples", min_value=1, max_value=MAX_SAMPLES, step=1, key="num_samples")
    seed_ = c2.number_input("Seed (shared)", min_value=0, max_value=2**31 - 1, step=1, key="seed")
    c3.toggle("Show real text beside the samples", key="show_real",
              help="Validation text of the training data, cut to the samples' length: for scale.")
    p1, p2 = st.columns([3, 2])
    prefix_ = p1.text_input("Prompt (every sample starts with it)", key="prompt", placeholder="e.g. The Moon is",
                            help="Held fixed while each model writes the rest: MDLM and AR condition on it exactly; "
                                 "the flows re-impose it on its own noising path after every step.")
    suffix_ = p2.text_input("Ending (optional)", key="ending", placeholder="e.g. in the Solar System.",
                            help="Held at the end of every sample: the bidirectional models write towards it.")
    if prefix_ or suffix_:
        prompt_notes(prefix_, suffix_)
    knobs_ = sampler_knobs.controls(infos)
    slow = []
    for lane in lanes:  # long runs announced before the click: from this session's earlier runs, else one timed call
        info = by_path[lane["path"]]
        calls = lane_ui.network_calls(lane, info, pipes)
        estimate = estimate_seconds(common.run_store().values(), info.path, calls, int(n))
        if estimate is None and info.path in pipes:
            estimate = common.call_seconds(info.path, info.mtime) * calls * int(n)
        if estimate is not None and estimate > SLOW_SECONDS:
            slow.append(f"{lane_title(info.kind, info.name, lane['steps'], info.spec.fixed_steps)} about "
                        f"{estimate:.0f} s")
    if slow:
        st.caption(f"Estimated from this machine's timed network calls: {', '.join(slow)}.")
    return int(n), int(seed_), prefix_, suffix_, knobs_


if big:  # the button first; the settings fold away after a click, so the results fill the first screen
    go, play, _ = st.columns([1, 2, 3], vertical_alignment="center")
    with go:
        clicked = generate_button()
    play.page_link(common.REPO_ROOT / "app" / "views" / "trajectory.py", label="Play side by side",
                   icon=":material/play_circle:")
    if clicked:
        st.session_state["gen_settings"] = False
    st.session_state.setdefault("gen_settings", not has_results)
    with st.expander("Lanes and settings", key="gen_settings", on_change="rerun", icon=":material/tune:"):
        num_samples, seed, prefix, suffix, knobs = settings()
else:
    num_samples, seed, prefix, suffix, knobs = settings()
    clicked = generate_button()


def show_summary(runs: list[dict]) -> None:
    """Below the lanes: a timing chart and the FLM/FMLM token diff."""
    lane_info = [{"name": r["name"], "title": parts.title(r), "kind": r["kind"], "seconds": r["gen"].seconds,
                  "nfe": r["gen"].nfe, "n": r["n"]} for r in runs]
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
        tokens = cell_strings(common.token_table(fmlm["path"], fmlm["mtime"]))
        st.html(render.diff_html(flm["gen"].tokens[sample].tolist(), fmlm["gen"].tokens[sample].tolist(), tokens,
                                 labels=(f"{parts.title(flm)}", f"{parts.title(fmlm)}")))


def run_lanes(slots: dict, size: str | None) -> list[dict]:
    """Run every lane for real, the cheapest first (the one-step text is on screen before the long runs end);
    a lane equal to an earlier one (same checkpoint and steps) shows that run. Returns the runs in lane order."""
    errors = st.session_state["batch_errors"] = []  # kept as they come: the run may be stopped mid-way
    order = sorted(lanes, key=lambda lane: lane_ui.network_calls(lane, by_path[lane["path"]], pipes))
    titles = {lane["id"]: lane_title(by_path[lane["path"]].kind, by_path[lane["path"]].name, lane["steps"],
                                     by_path[lane["path"]].spec.fixed_steps) for lane in lanes}
    unfinished = st.session_state["batch_unfinished"] = [titles[lane["id"]] for lane in order]
    st.session_state["batch"], done, by_setting = [], {}, {}
    for lane in order:
        info, setting = by_path[lane["path"]], (lane["path"], lane["steps"])
        with slots[lane["id"]].container():
            bar = st.progress(0.0, text=f"{titles[lane['id']]}: starting…")
            try:
                run = by_setting.get(setting) or common.execute(
                    info, lane["steps"], seed, num_samples, progress=common.progress_reporter(bar, titles[lane["id"]]),
                    prefix=prefix, suffix=suffix, knobs=knobs)
            except Exception as err:  # noqa: BLE001 - one line, no traceback
                errors.append(f"{titles[lane['id']]}: {one_line(err)}")
                unfinished.remove(titles[lane["id"]])
                bar.empty()
                st.error(errors[-1])
                continue
            bar.empty()
        done[lane["id"]] = by_setting[setting] = run
        st.session_state["batch"].append(run["id"])
        unfinished.remove(titles[lane["id"]])
        with slots[lane["id"]].container():
            parts.show_lane(run, bench, big, size, narrow=len(slots) + show_real >= 4)
    st.session_state["batch"] = [done[lane["id"]]["id"] for lane in lanes if lane["id"] in done]
    return [done[lane["id"]] for lane in lanes if lane["id"] in done]


bench = parts.bench_context()
show_real = bool(st.session_state.get("show_real"))
headline, overview, results = st.container(), st.container(), st.container()  # the headline stays in view
if clicked:
    text_size = parts.text_size(len(lanes) + show_real, big)
    cols = results.columns(len(lanes) + show_real)
    done = run_lanes({lane["id"]: col.empty() for lane, col in zip(lanes, cols)}, text_size)
    if show_real:
        with cols[-1]:
            parts.show_real_text(done, bench, seed, big, text_size)
elif has_results:
    store = common.run_store()
    done = [store[i] for i in st.session_state.get("batch", []) if i in store]
    text_size = parts.text_size(len(done) + show_real, big)
    with results:
        if done:
            cols = st.columns(len(done) + show_real)
            for col, run in zip(cols, done):
                with col:
                    parts.show_lane(run, bench, big, text_size, narrow=len(cols) >= 4)
            if show_real:
                with cols[-1]:
                    parts.show_real_text(done, bench, seed, big, text_size)
        for message in st.session_state.get("batch_errors", []):
            st.error(message)
        if st.session_state.get("batch_unfinished"):
            st.warning(f"Not finished: {', '.join(st.session_state['batch_unfinished'])} (the run stopped when the "
                       "page was left or the settings changed). Press Generate to run it again.")
if clicked or has_results:
    with headline:
        parts.show_headline(done, bench, big)
    with overview:
        parts.show_quality_overview(done, bench, big)
    with results:
        show_summary(done)
        st.caption("Open **Trajectory** in the sidebar to play these runs side by side on one clock, or scrub one "
                   "step by step.")

"""The Trajectory page's side-by-side view (Streamlit): several recorded runs play on one clock (app.sync), so
the audience sees a one-step run land in one frame while the many-step runs are still forming. It only
redraws what the runs recorded; it never calls a model."""
from __future__ import annotations

import numpy as np
import streamlit as st

from flm_core.kinds import kind_of
from app import common, render
from app.lane_specs import lane_title
from app.record import blank_view, step_view, to_numpy
from app.sync import CLOCKS, SYNC_FRAMES, clock_end, clock_phrase, done_at, frame_value, shown_index

SYNC_INTERVAL = 0.45  # seconds per frame while playing
MAX_SYNC_RUNS = 6


def arrays_of(run: dict) -> dict[str, np.ndarray]:
    """The run's record as numpy arrays, converted once and kept with the run."""
    derived = run["derived"]
    if "arrays" not in derived:
        derived["arrays"] = to_numpy(run["gen"].trajectory)
    return derived["arrays"]


def short_label(run: dict) -> str:
    spec = kind_of(run["kind"])
    return lane_title(run["kind"], run["name"], run["gen"].steps, spec.fixed_steps) + f" · seed {run['seed']}"


def choose_runs(store) -> list[str]:
    """The runs to play: the latest Generate batch first; a new batch replaces the choice (and, in presentation
    mode, starts playing)."""
    ids = [i for i in reversed(store) if store[i]["gen"].trajectory is not None]
    batch = tuple(i for i in st.session_state.get("batch", []) if i in ids)
    if st.session_state.get("sync_batch") != batch:
        st.session_state["sync_batch"] = batch
        st.session_state["sync_runs"] = list(dict.fromkeys(batch)) or ids[:4]
        st.session_state["sync_frame"] = 0
        st.session_state["sync_playing"] = st.session_state["sync_hold"] = common.big()
    st.session_state["sync_runs"] = [i for i in st.session_state.get("sync_runs", []) if i in ids]
    chosen = st.multiselect("Runs", ids, format_func=lambda i: short_label(store[i]), key="sync_runs",
                            max_selections=MAX_SYNC_RUNS, help="Recorded runs, played together on one clock.")
    return chosen


def toggle_play() -> None:
    now = not st.session_state.get("sync_playing", False)
    st.session_state["sync_playing"] = now
    st.session_state["sync_hold"] = False
    if now and st.session_state.get("sync_frame", SYNC_FRAMES) >= SYNC_FRAMES:
        st.session_state["sync_frame"] = 0
        st.session_state["sync_hold"] = True  # the first frame shows the start itself


def current_frame(playing: bool) -> int:
    k = int(st.session_state.get("sync_frame", SYNC_FRAMES))
    if playing and not st.session_state.pop("sync_hold", False):
        k = min(k + 1, SYNC_FRAMES)
        st.session_state["sync_frame"] = k
        if k >= SYNC_FRAMES:
            st.session_state["sync_playing"] = False
    st.session_state["sync_frame"] = k
    return k


def lane_frame(run: dict, times: np.ndarray, value, before, tokens, sample: int, big: bool) -> tuple[str, str]:
    """(status, html) of one run at the clock `value` (`before`: the clock one frame earlier)."""
    arrays, gen = arrays_of(run), run["gen"]
    discrete = kind_of(run["kind"]).discrete
    idx, prev = shown_index(times, value), shown_index(times, before)
    length = arrays["final_tokens"].shape[-1]
    view = blank_view(length) if idx < 0 else step_view(arrays, sample, idx, discrete)
    if idx >= 0:  # orange: what changed since the previous frame
        old = blank_view(length) if prev < 0 else step_view(arrays, sample, prev, discrete)
        view["changed"] = (view["ids"] != old["ids"]) & ~view["pending"] & ~old["pending"]
    calls = f"{gen.nfe} call{'s' if gen.nfe != 1 else ''}"
    if idx < 0:
        status = ("masked" if discrete else "noise") if big else \
            "before the first call: " + ("nothing written" if discrete else "noise")
    elif idx == len(times) - 1:
        status = f"✓ {calls}" if big else f"✓ done: {gen.nfe} network call{'s' if gen.nfe != 1 else ''}"
    else:
        status = f"step {int(arrays['step'][idx]) + 1}/{gen.steps}" if big else \
            f"step {int(arrays['step'][idx]) + 1} of {gen.steps}"
    html = render.step_text_html(view["ids"], view["confidence"], view["changed"], view["pending"], tokens,
                                 size="0.85rem" if big else "0.9rem", max_lines=3 if big else None)
    return status, html


def player(runs: list[dict], clock: str, sample: int, big: bool) -> None:
    """Play / Pause, the frame slider and every run at the frame, one row each."""
    playing = bool(st.session_state.get("sync_playing", False))
    k = current_frame(playing)
    records = [(run, done_at(arrays_of(run)["step"], arrays_of(run)["progress"], run["gen"].steps, run["gen"].nfe,
                             run["gen"].seconds, clock)) for run in runs]
    end = clock_end([float(times[-1]) for _, times in records], clock)
    value, before = frame_value(k, SYNC_FRAMES, clock, end), frame_value(k - 1, SYNC_FRAMES, clock, end)
    left, middle, right = st.columns([1, 3, 2], vertical_alignment="center")
    left.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                on_click=toggle_play, key="sync_play", shortcut="P", help="Play all runs on one clock (key: P).")
    middle.select_slider("Frame", options=list(range(SYNC_FRAMES + 1)), key="sync_frame",
                         label_visibility="collapsed")
    right.markdown(f"**Frame {k}/{SYNC_FRAMES}** · {clock_phrase(value, clock, end)}")
    for run, times in records:
        tokens = common.token_table(run["path"], run["mtime"])
        status, html = lane_frame(run, times, value, before, tokens, min(sample, run["n"] - 1), big)
        name, text = st.columns([1, 6] if big else [1, 5], vertical_alignment="center")
        short = short_label(run).split(" · ")[0]
        name.markdown(f"**{short}**  \n:gray[{status}]" if big else f"**{short}**  \n{run['name']}  \n:gray[{status}]")
        text.html(html)


def side_by_side(store, big: bool) -> None:
    """The view: choose the runs and the clock, then play; in presentation mode the player comes first and the
    choices fold away below it."""
    stage = st.container()
    with st.expander("Runs and clock") if big else st.container():
        chosen = choose_runs(store)
        runs = [store[i] for i in chosen]
        c1, c2 = st.columns([3, 1])
        common.defaults(sync_clock=CLOCKS[0])
        clock = c1.segmented_control("Clock", CLOCKS, key="sync_clock", help=(
            "model time t: each run at the model time its steps read (a one-step run is done from its first "
            "call). network calls: after how many calls. wall time: this click's measured time, steps spread "
            "evenly.")) or CLOCKS[0]
        most = max((r["n"] for r in runs), default=1)
        sample = int(c2.number_input("Sample", 0, most - 1, 0, key="sync_sample")) if most > 1 else 0
        if not big:
            st.caption("Frame 0 is before the first network call (░: noise / masked / not written yet); each later "
                       "frame shows every run at its last recorded step that the clock has reached. Text is the "
                       "prediction's argmax for the flows, the state itself for MDLM / AR; faint = unsure, orange "
                       "= changed since the previous frame.")
    if not runs:
        stage.info("Choose at least one run (press **Generate** on the Generate page to make a set).")
        return
    playing = bool(st.session_state.get("sync_playing", False))

    @st.fragment(run_every=SYNC_INTERVAL if playing else None)
    def frames() -> None:
        if bool(st.session_state.get("sync_playing", False)) != playing:
            st.rerun()  # arm or disarm the play timer (needs a full run)
        player(runs, clock, sample, big)

    with stage:
        frames()

"""The Generate page's lane controls (Streamlit glue over app.lane_specs): the lanes live in
st.session_state["lanes"] as (checkpoint, steps) pairs, so they outlive a visit to another page; each lane's
widgets are set from them before they are drawn and write back through their callbacks."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from flm_core.pipeline import Pipeline
from flm_core.schedule import STEP_GRID
from app import common
from app.catalogue import CheckpointInfo
from app.lane_specs import MAX_LANES, added_lane, default_lanes, kept_lanes, new_lane, talk_preset

LANES_KEY = "lanes"


def lanes_state(infos: Sequence[CheckpointInfo]) -> list[dict]:
    """The lanes, first the default ones; lanes of vanished checkpoints leave, and if that empties them the
    default comes back (lanes the user removed stay removed)."""
    kept = st.session_state.get(LANES_KEY)
    if kept is None:
        kept = default_lanes(infos)
    lanes = kept_lanes(kept, infos) or (default_lanes(infos) if kept else [])
    st.session_state[LANES_KEY] = lanes
    return lanes


def _lane(lane_id: int) -> dict | None:
    return next((lane for lane in st.session_state.get(LANES_KEY, []) if lane["id"] == lane_id), None)


def _set_checkpoint(lane_id: int, infos: Sequence[CheckpointInfo]) -> None:
    lane, path = _lane(lane_id), st.session_state.get(f"lane_ckpt::{lane_id}")
    info = next((c for c in infos if c.path == path), None)
    if lane is None or info is None:
        return
    old = next((c for c in infos if c.path == lane["path"]), None)
    same_kind = old is not None and old.kind == info.kind
    lane.update(new_lane(lane_id, info, lane["steps"] if same_kind else None))


def _set_steps(lane_id: int) -> None:
    lane = _lane(lane_id)
    if lane is not None:
        lane["steps"] = int(st.session_state.get(f"lane_steps::{lane_id}", lane["steps"]))


def _remove(lane_id: int) -> None:
    st.session_state[LANES_KEY] = [lane for lane in st.session_state.get(LANES_KEY, []) if lane["id"] != lane_id]


def add_lane(infos: Sequence[CheckpointInfo]) -> None:
    lanes = st.session_state.get(LANES_KEY, [])
    lane = added_lane(lanes, infos)
    if lane is not None:
        st.session_state[LANES_KEY] = [*lanes, lane]


def apply_preset(infos: Sequence[CheckpointInfo]) -> None:
    """The talk preset, FMLM@1 | FLM@1 | FLM@32 | MDLM@32; lane ids continue, so no widget keeps an old value."""
    start = max((lane["id"] for lane in st.session_state.get(LANES_KEY, [])), default=-1) + 1
    st.session_state[LANES_KEY] = [dict(lane, id=start + i) for i, lane in enumerate(talk_preset(infos))]


def lane_control(number: int, lane: dict, infos: Sequence[CheckpointInfo], pipes: dict[str, Pipeline]) -> None:
    """One lane's checkpoint box, step slider (none for a fixed-steps kind, AR) and remove button; its model is
    loaded here, before any click, so that the click times generation only (a load error shows here)."""
    by_path = {c.path: c for c in infos}
    info, lane_id = by_path[lane["path"]], lane["id"]
    st.session_state[f"lane_ckpt::{lane_id}"] = lane["path"]
    st.selectbox(f"Lane {number}", list(by_path), format_func=lambda p: by_path[p].label, key=f"lane_ckpt::{lane_id}",
                 on_change=_set_checkpoint, args=(lane_id, tuple(infos)))
    with common.guard(f"Loading {info.label}"):
        pipes[info.path] = common.pipeline_for(info)
    if not info.spec.fixed_steps:
        st.session_state[f"lane_steps::{lane_id}"] = lane["steps"]
        st.select_slider("Steps", options=STEP_GRID, key=f"lane_steps::{lane_id}", on_change=_set_steps,
                         args=(lane_id,), help="Network calls (log scale, 1 to 1024).")
    elif info.path in pipes:
        calls = pipes[info.path].sampler.num_steps(lane["steps"])
        st.caption(f"{info.spec.label}: {calls} network calls, one per token (L-1), whatever the step count: "
                   "no step choice.")
    st.button("Remove lane", key=f"lane_rm::{lane_id}", on_click=_remove, args=(lane_id,), type="tertiary",
              icon=":material/close:")


def lane_controls(lanes: list[dict], infos: Sequence[CheckpointInfo], pipes: dict[str, Pipeline]) -> None:
    """All lanes side by side, then "Add lane" and the talk preset."""
    for number, (col, lane) in enumerate(zip(st.columns(len(lanes)) if lanes else [], lanes), start=1):
        with col:
            lane_control(number, lane, infos, pipes)
    a, b, _ = st.columns([1, 3, 1])
    a.button("Add lane", key="add_lane", on_click=add_lane, args=(tuple(infos),), icon=":material/add:",
             disabled=len(lanes) >= MAX_LANES, help=f"Up to {MAX_LANES} lanes; one checkpoint may run in several "
                                                    "lanes at different step counts.")
    b.button("Talk preset: FMLM@1 | FLM@1 | FLM@32 | MDLM@32", key="talk_preset", on_click=apply_preset,
             args=(tuple(infos),), icon=":material/co_present:")


def network_calls(lane: dict, info: CheckpointInfo, pipes: dict[str, Pipeline]) -> int:
    """Network calls a run of the lane makes (its steps, or the fixed count of an AR)."""
    pipe = pipes.get(info.path)
    return pipe.sampler.num_steps(lane["steps"]) if pipe is not None else lane["steps"]

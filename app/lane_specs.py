"""The Generate page's lanes: each a (checkpoint, steps) pair, so that one checkpoint runs at several step
counts side by side (FLM@1 beside FLM@32) without copying folders. Pure functions over plain dicts
{"id": int, "path": str, "steps": int}; the kinds' properties come from flm_core.kinds (CheckpointInfo.spec)."""
from __future__ import annotations

from typing import Callable, Sequence

from flm_core.kinds import Kind
from app.catalogue import CheckpointInfo
from app.kind_style import kind_label

MAX_LANES = 6

# The talk preset: FMLM@1 | FLM@1 | FLM@32 | MDLM@32 (each where a checkpoint of that kind is loaded).
TALK_PRESET: tuple[tuple[Callable[[Kind], bool], int], ...] = (
    (lambda k: k.two_times, 1),
    (lambda k: not k.discrete and not k.two_times, 1),
    (lambda k: not k.discrete and not k.two_times, 32),
    (lambda k: k.discrete and not k.fixed_steps, 32),
)


def new_lane(lane_id: int, info: CheckpointInfo, steps: int | None = None) -> dict:
    """A lane of checkpoint `info` at `steps` (its kind's default without; a fixed-steps kind, AR, keeps its
    default whatever is asked: it makes L-1 calls in any case)."""
    spec = info.spec
    return {"id": lane_id, "path": info.path,
            "steps": spec.default_steps if spec.fixed_steps or steps is None else int(steps)}


def default_lanes(infos: Sequence[CheckpointInfo]) -> list[dict]:
    """One lane for each flow kind (FMLM and FLM) at its default steps; the first checkpoint without one."""
    lanes, seen = [], set()
    for info in infos:
        if not info.spec.discrete and info.kind not in seen:
            lanes.append(new_lane(len(lanes), info))
            seen.add(info.kind)
    return lanes or ([new_lane(0, infos[0])] if infos else [])


def talk_preset(infos: Sequence[CheckpointInfo]) -> list[dict]:
    """FMLM@1 | FLM@1 | FLM@32 | MDLM@32, from the first checkpoint of each kind (a role without one is left out)."""
    lanes = []
    for wanted, steps in TALK_PRESET:
        info = next((c for c in infos if wanted(c.spec)), None)
        if info is not None:
            lanes.append(new_lane(len(lanes), info, steps))
    return lanes


def next_id(lanes: Sequence[dict]) -> int:
    return max((lane["id"] for lane in lanes), default=-1) + 1


def added_lane(lanes: Sequence[dict], infos: Sequence[CheckpointInfo]) -> dict | None:
    """The lane "Add lane" appends: a checkpoint without a lane yet, at its default steps; else the last lane's
    checkpoint at a step count it does not run yet (its steps x 4, or / 4). None at MAX_LANES or without infos."""
    if len(lanes) >= MAX_LANES or not infos:
        return None
    used = {lane["path"] for lane in lanes}
    fresh = next((c for c in infos if c.path not in used), None)
    if fresh is not None or not lanes:
        return new_lane(next_id(lanes), fresh or infos[0])
    last = lanes[-1]
    info = next((c for c in infos if c.path == last["path"]), infos[0])
    taken = {lane["steps"] for lane in lanes if lane["path"] == last["path"]}
    steps = next((s for s in (last["steps"] * 4, max(1, last["steps"] // 4), 1, 32) if s not in taken), last["steps"])
    return new_lane(next_id(lanes), info, min(steps, 1024))


def kept_lanes(lanes: Sequence[dict], infos: Sequence[CheckpointInfo]) -> list[dict]:
    """The lanes whose checkpoint is still offered (a vanished folder drops its lanes), fixed-steps kinds at
    their default."""
    by_path = {c.path: c for c in infos}
    return [new_lane(lane["id"], by_path[lane["path"]], lane["steps"]) for lane in lanes if lane["path"] in by_path]


def short_title(kind: str, steps: int, fixed: bool) -> str:
    """'FMLM@1', 'FLM@32'; a fixed-steps kind (AR) by its label alone."""
    return kind_label(kind) if fixed else f"{kind_label(kind)}@{steps}"


def lane_title(kind: str, name: str, steps: int, fixed: bool) -> str:
    """'FLM@32 · flm-wiki'."""
    return f"{short_title(kind, steps, fixed)} · {name}"

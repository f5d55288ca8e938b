"""The flows' sampler knobs on the Generate and Trajectory pages: re-noising (eta) and autoguidance (a guide
checkpoint and its weight w). One setting for the page; `applied` says what a run of a given checkpoint gets:
re-noising for the flows only, guidance for checkpoints of the guide's kind (the others run as usual)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from app.catalogue import CheckpointInfo

KEYS = ("knob_renoise", "knob_guide", "knob_guidance")  # kept across pages (common.KEPT_SETTINGS)
NO_GUIDE = ""


@dataclass(frozen=True)
class Knobs:
    """renoise: eta of flm_core's re-noised flow step (0: deterministic); guide: the guide checkpoint (None:
    none); guidance: w in l_guide + w (l_model - l_guide) (1: the model alone)."""

    renoise: float = 0.0
    guide: CheckpointInfo | None = None
    guidance: float = 1.0

    @property
    def guided(self) -> bool:
        return self.guide is not None and self.guidance != 1


def applied(knobs: Knobs, info: CheckpointInfo) -> Knobs:
    """The knobs a run of `info` gets: no re-noising for a discrete kind (MDLM, AR), no guide unless it is of
    the same kind (flm_core refuses other pairs)."""
    eta = 0.0 if info.spec.discrete else knobs.renoise
    if knobs.guided and knobs.guide.kind == info.kind:
        return replace(knobs, renoise=eta)
    return Knobs(renoise=eta)


def describe(knobs: Knobs) -> str:
    """'re-noise 0.5 · guided by flm-guide-wiki (w 2)'; '' for the plain sampler."""
    parts = [f"re-noise {knobs.renoise:g}"] if knobs.renoise else []
    if knobs.guided:
        parts.append(f"guided by {knobs.guide.name} (w {knobs.guidance:g})")
    return " · ".join(parts)


def guide_options(infos: Sequence[CheckpointInfo]) -> list[str]:
    """NO_GUIDE, then the flow checkpoints' paths (an FLM guides FLMs, an FMLM guides FMLMs)."""
    return [NO_GUIDE, *(c.path for c in infos if not c.spec.discrete)]


def controls(infos: Sequence[CheckpointInfo]) -> Knobs:
    """The page's knob widgets (Streamlit) in one row; returns the current setting."""
    import streamlit as st

    by_path = {c.path: c for c in infos}
    options = guide_options(infos)
    st.session_state.setdefault("knob_renoise", 0.0)
    st.session_state.setdefault("knob_guidance", 1.0)
    if st.session_state.get("knob_guide") not in options:
        st.session_state["knob_guide"] = NO_GUIDE
    knobs = Knobs(st.session_state["knob_renoise"], by_path.get(st.session_state["knob_guide"]),
                  st.session_state["knob_guidance"])
    a, b, c = st.columns([2, 2, 1], vertical_alignment="bottom")  # no expander: the pages draw this inside theirs
    a.slider("Re-noise η", 0.0, 1.0, step=0.05, key="knob_renoise",
             help="Flows only: each step keeps √(1-η²) of the implied noise and draws η of it afresh "
                  "(0: the deterministic Euler / flow-map step). MDLM and AR run as usual.")
    b.selectbox("Guide (autoguidance)", options, key="knob_guide",
                format_func=lambda p: "none" if p == NO_GUIDE else by_path[p].label,
                help="A weaker model of the same kind and tokenizer: logits l_guide + w (l_model - l_guide). "
                     "It guides the lanes of its kind; each guided step calls both networks.")
    c.number_input("w", 0.0, 10.0, step=0.25, key="knob_guidance", disabled=st.session_state["knob_guide"] == NO_GUIDE,
                   help="Guidance weight: 1 is the model alone, above 1 moves away from the guide.")
    return knobs

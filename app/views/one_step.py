"""Why one step works: on a toy language, the factorised sampler (MDLM) and the flow map (FMLM), and FLM as a third
lane, each at one step from one seed on the same number of samples; every sample checked by the language's rules
(badge, broken token highlighted), the validity of each side, and the factorisation argument in this click's
numbers. The runs join the session's kept runs, so the Trajectory page can replay them."""
from __future__ import annotations

import streamlit as st

from flm_core.errors import one_line
from app import common, toy_bench, toy_runs
from app.lane_specs import lane_title
from app.why_one_step import explanation, headline, role

MAX_SAMPLES = 64
GET_TOY_MODELS = "SHIP=checkpoints scripts/train_toy.sh"
# (role, picker label, the shipped checkpoint it starts on when present)
LANES = (("factorised", "Factorised sampler (MDLM)", "mdlm-toy"), ("flow map", "Flow map (FMLM)", "fmlm-toy"),
         ("flow", "Flow (FLM), third lane", "flm-toy"))

big = common.big()
if not big:
    st.title("Why one step works")
    st.caption("A toy language whose rules are known exactly (in toy:story, names, pronouns, colours, fruits and "
               "counts must agree across the whole story). Each model writes its samples in one network call from the "
               "same seed, and the language's checker marks each sample valid or names the rule it broke first.")

toys = [c for c in common.usable(common.catalog()) if c.toy]
if not toys:
    st.info(f"No toy-language checkpoints here: `{GET_TOY_MODELS}` trains the four toy models into checkpoints/.")
    st.stop()


def picker(role_: str, label: str, default: str, column):
    """A selectbox over the toy checkpoints of one role, first on `default` where present; None without any."""
    options = [c for c in toys if role(c.kind) == role_]
    if not options:
        column.caption(f"{label}: no toy checkpoint of this kind, so no lane.")
        return None
    by_path = {c.path: c for c in options}
    key = f"one_step_ckpt::{role_}"
    if st.session_state.get(key) not in by_path:
        st.session_state[key] = next((c.path for c in options if c.name == default), options[0].path)
    return by_path[column.selectbox(label, list(by_path), format_func=lambda p: by_path[p].label, key=key)]


def settings() -> tuple[list, int, int]:
    """The three pickers, samples, seed and third-lane toggle; returns (the lanes' checkpoints, samples, seed)."""
    columns = st.columns(3)
    chosen = [(role_, picker(role_, label, default, col)) for (role_, label, default), col in zip(LANES, columns)]
    a, b, c = st.columns([1, 1, 2], vertical_alignment="bottom")
    common.defaults(one_step_n=8, one_step_seed=0, one_step_flow=True)
    n = int(a.number_input("Samples (each lane)", 1, MAX_SAMPLES, key="one_step_n"))
    seed = int(b.number_input("Seed (shared)", 0, 2**31 - 1, key="one_step_seed"))
    with_flow = c.toggle("Third lane: FLM at one step", key="one_step_flow", disabled=chosen[2][1] is None,
                         help="One Euler step of the flow the flow map was distilled from: the same single network "
                              "call, without the distillation.")
    return [info for role_, info in chosen if info is not None and (role_ != "flow" or with_flow)], n, seed


def fold() -> None:
    """Presentation mode: a click folds the settings away, so the samples fill the screen."""
    st.session_state["one_step_settings"] = False


top = st.container()  # presentation mode: the button above the folded settings
if big:
    st.session_state.setdefault("one_step_settings", not st.session_state.get("one_step_runs"))
    with st.expander("Lanes and settings", key="one_step_settings", on_change="rerun", icon=":material/tune:"):
        lanes, n, seed = settings()
else:
    lanes, n, seed = settings()
if (top if big else st).button("Run at one step", type="primary", key="one_step_run", icon=":material/bolt:",
                               disabled=not lanes, on_click=fold if big else None):
    st.session_state["one_step_runs"], st.session_state["one_step_errors"] = [], []
    st.session_state["one_step_seed_run"] = seed
    for info in lanes:
        with st.spinner(f"{info.label} at one step…"):
            try:
                run = common.execute(info, 1, seed, n)
                if toy_runs.run_marks(run) is None:
                    raise ValueError(f"{info.source} is not a toy language flm_core knows, so nothing checks it")
            except Exception as err:  # noqa: BLE001 - one line, no traceback
                st.session_state["one_step_errors"].append(f"{info.label}: {one_line(err)}")
                continue
        st.session_state["one_step_runs"].append(run["id"])

store = common.run_store()
runs = [store[i] for i in st.session_state.get("one_step_runs", []) if i in store]
for message in st.session_state.get("one_step_errors", []):
    st.error(message)
if not runs:
    st.stop()


def lane_summary(run: dict) -> dict:
    counts = toy_runs.run_marks(run)["tally"]
    return {"title": lane_title(run["kind"], run["name"], 1, False), "kind": run["kind"], "valid": counts["valid"],
            "grammatical": counts["grammatical"], "n": counts["n"], "failures": counts["failures"],
            "distinct": len({tuple(row) for row in run["gen"].tokens.tolist()})}


summaries = [lane_summary(run) for run in runs]
st.markdown(headline(summaries, st.session_state.get("one_step_seed_run", seed)))
if (reference := toy_bench.one_step_phrase(runs)) is not None:  # the same checkpoints on many more samples
    st.caption(reference)
size = "1.05rem" if big and len(runs) <= 2 else "0.9rem" if big else None
for col, run, summary in zip(st.columns(len(runs)), runs, summaries):
    with col:
        st.markdown(f"#### {summary['title']}")
        if not big:  # presentation mode: the headline and the tally say it, the screen is for the samples
            gen = run["gen"]
            valid, grammatical = st.columns(2)
            valid.metric("Valid samples", f"{100 * summary['valid'] / summary['n']:.0f} %",
                         help="Share of samples that keep every rule of the language (flm_core.toy's checker).")
            grammatical.metric("Grammatical", f"{100 * summary['grammatical'] / summary['n']:.0f} %",
                               help="Share of samples that follow the grammar (the story's layout), whatever the "
                                    "agreements between their words: what survives of the sequence's structure.")
            ms = f"{1e3 * gen.seconds:.0f} ms" if gen.seconds < 1 else f"{gen.seconds:.1f} s"
            st.caption(f"{gen.nfe} network call{'s' if gen.nfe != 1 else ''} · {ms} · {summary['distinct']} "
                       f"distinct of {summary['n']}")
        toy_runs.show_texts(run, big, size)
st.markdown("### Why")
st.markdown(explanation(summaries))
st.caption("These runs are kept: **Trajectory** → One run shows each on the simplex, position by position.")

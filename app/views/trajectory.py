"""Trajectory: scrub through one recorded run step by step (never reruns the model)."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from flm_core.kinds import kind_of
from flm_core.schedule import STEP_GRID, decoding_error
from flm_core.trajectory import SKETCH_DIM, TOP_K, sketch_matrix
from app import charts, common, knobs as sampler_knobs, render, sync_view, toy_runs
from app.export import denoising_frames, export_run
from app.maps import sketch_map
from app.phrases import steps_phrase
from app.record import (argmax_changes, blank_view, frame_indices, next_play_frame, not_final_share, pending_share,
                        step_view)
from app.simplex import state_ternary, ternary_path
from app.tokens_view import cell_strings
from app.toy_marks import focus_token, verdict_phrase

PLAY_INTERVAL = 0.7  # seconds per frame while playing
GIF_FRAMES = 40
GRID_COLUMNS = 96  # recorded steps drawn in the argmax grid
VIEWS = ("Text", "Argmax grid", "Superposition", "Simplex", "Decoding error", "Map")
MODES = ("Side by side", "One run")

big = common.big()
if not big:  # presentation mode keeps the screen for the runs themselves
    st.title("Trajectory")
    st.caption("Recorded runs, side by side on one clock or one run step by step. Runs come from the Generate page "
               "or from the form below; the views only redraw what the runs recorded (flm_core's Trajectory), they "
               "never call a model again.")

infos = common.usable(common.catalog())
store = common.run_store()

def new_run_form(rerun: bool = False) -> None:
    """Record a new run of any checkpoint (rerun: show it at once, where the form comes after the views)."""
    with st.expander("New run", expanded=not store):
        if not infos:
            st.info("No checkpoints found: add one in the sidebar or under checkpoints/.")
            return
        # First offered: a flow with one time input (FLM), whose many steps over a dense state are the ones to see.
        info = common.checkpoint_selector("Checkpoint", infos, key="traj_new_ckpt",
                                          prefer=lambda kind: not kind.discrete and not kind.two_times)
        fixed = info is not None and info.spec.fixed_steps
        c1, c2, c3 = st.columns(3)
        common.defaults(traj_new_steps=32, traj_new_n=1, traj_new_seed=0)
        new_steps = c1.select_slider("Steps", STEP_GRID, key="traj_new_steps", disabled=fixed)
        new_n = c2.number_input("Samples", 1, 16, key="traj_new_n")
        new_seed = c3.number_input("Seed", 0, 2**31 - 1, key="traj_new_seed")
        knobs = sampler_knobs.controls(infos)
        if fixed:
            with common.guard(f"Loading {info.label}"):
                calls = common.pipeline_for(info).sampler.num_steps(new_steps)
                st.caption(f"{info.spec.label}: fixed at L-1 = {calls} network calls.")
        if st.button("Run and record", key="traj_new_run") and info is not None:
            bar = st.progress(0.0, text="starting…")
            with common.guard(f"Running {info.label}"):
                run = common.execute(info, new_steps, new_seed, new_n,
                                     progress=common.progress_reporter(bar, info.label), knobs=knobs)
                st.session_state["traj_run"] = run["id"]
                st.session_state["traj_mode_next"] = MODES[1]  # the new run, shown alone
            bar.empty()
            if rerun:
                st.rerun()


form_last = big and bool(store)  # presentation mode: the runs first, the form below them
if not form_last:
    new_run_form()

store = common.run_store()
if not store:
    st.info("No recorded run yet: press **Generate** on the Generate page or use **New run** above.")
    st.stop()

batch = tuple(i for i in st.session_state.get("batch", []) if i in store)
if st.session_state.get("traj_seen_batch") != batch:  # a new set from Generate opens side by side
    st.session_state["traj_seen_batch"] = batch
    st.session_state["traj_mode"] = MODES[0] if len(batch) > 1 else st.session_state.get("traj_mode", MODES[1])
if "traj_mode_next" in st.session_state:
    st.session_state["traj_mode"] = st.session_state.pop("traj_mode_next")
common.defaults(traj_mode=MODES[1])
mode = st.segmented_control("Show", MODES, key="traj_mode", label_visibility="collapsed") or MODES[1]
if mode == MODES[0]:
    sync_view.side_by_side(store, big)
    if form_last:
        new_run_form(rerun=True)
    st.stop()

ids = list(store)[::-1]  # newest first
if st.session_state.get("traj_run") not in store:
    st.session_state["traj_run"] = ids[0]
run_id = st.selectbox("Run", ids, format_func=lambda i: common.run_label(store[i]), key="traj_run")
player = st.container()  # presentation mode puts the step slider and the views here, above the settings
run = store[run_id]
gen = run["gen"]
traj = gen.trajectory
if traj is None:
    st.error("This run was made without a trajectory record.")
    st.stop()

spec = kind_of(run["kind"])
discrete = spec.discrete
derived = run["derived"]
if "not_final" not in derived:
    arrays = sync_view.arrays_of(run)
    gamma = arrays["gamma"].astype(float)
    free = None if gen.held is None else ~gen.held.numpy()  # a prompt's positions are not the model's to write
    derived["argmax_not_final"] = not_final_share(arrays["argmax"], arrays["final_tokens"], free)
    derived["pending"] = pending_share(arrays["pending"])
    derived["state_not_final"] = (None if discrete else
                                  not_final_share(arrays["state_argmax"], arrays["final_tokens"], free))
    # Flow models: the prediction's argmax is what becomes the text. Discrete models sample their tokens and
    # keep them, so a position is final exactly when it is no longer masked / still to generate.
    derived["not_final"] = derived["pending"] if discrete else derived["argmax_not_final"]
    derived["theory"] = (decoding_error(torch.tensor(gamma), run["vocab_size"]).numpy()
                         if np.isfinite(gamma).all() else None)
arrays = derived["arrays"]
tokens = common.token_table(run["path"], run["mtime"])
cells = cell_strings(tokens)  # one token per cell (grid, superposition): a word-level vocabulary without its spaces
S = len(arrays["step"])
L = run["seq_len"]

c1, c2, _ = st.columns([1, 1, 2])
sample = c1.selectbox("Sample", range(run["n"]), key=f"traj_sample::{run_id}") if run["n"] > 1 else 0
toy = toy_runs.run_marks(run)
mark = toy["marks"][sample] if toy else None  # a toy sample opens on its broken token (else its first word)
position = c2.number_input("Position (simplex view)", 0, L - 1, focus_token(mark, L) if mark else min(5, L - 1),
                           key=f"traj_pos::{run_id}::{sample}")
if mark:
    st.caption(f"{toy['source']} · sample {sample}: {verdict_phrase(mark)}")
common.defaults(traj_views=list(VIEWS))
views = st.pills("Views", VIEWS, selection_mode="multi", key="traj_views")
st.caption(f"{spec.label} · {steps_phrase(gen.steps)}, {S} recorded · NFE {gen.nfe} · "
           f"{gen.seconds:.3f} s on {gen.device} · K={run['vocab_size']} · L={L}")

# Exports (built lazily, on click).
e1, e2, _ = st.columns([1, 1, 1])
meta = {"checkpoint": run["path"], "seed": run["seed"], "num_samples": run["n"]}
e1.download_button("Export run (JSON)", data=lambda: export_run(meta, gen), file_name=
                   f"{run['name']}_{gen.steps}steps_seed{run['seed']}.json", mime="application/json",
                   key="export_json", on_click="ignore")


def gif_bytes() -> bytes:
    label = f"{spec.label} · {run['name']}"
    return render.gif_frames(denoising_frames(arrays, sample, tokens, discrete, label, gen.steps, gen.nfe, GIF_FRAMES))


e2.download_button("Denoising GIF (slides)", data=gif_bytes, file_name=f"{run['name']}_denoising.gif",
                   mime="image/gif", key="export_gif", on_click="ignore")

# Play state: presentation mode starts playing each newly opened run once.
slider_key = f"traj_step::{run_id}::{sample}"
if big and st.session_state.get("autoplayed") != run_id:
    st.session_state["autoplayed"] = run_id
    st.session_state["playing"] = st.session_state["play_hold"] = S > 1
    st.session_state[slider_key] = 0
playing = bool(st.session_state.get("playing", False)) and S > 1


def toggle_play() -> None:
    now = not st.session_state.get("playing", False)
    st.session_state["playing"] = now
    st.session_state["play_hold"] = False
    if now and st.session_state.get(slider_key, S - 1) >= S - 1:
        st.session_state[slider_key] = 0
        st.session_state["play_hold"] = True  # the first frame shows step 1 itself


def current_step() -> int:
    """The recorded step to show: while playing, the next frame (Play stops on the last); else the slider's."""
    idx = int(st.session_state.get(slider_key, S - 1))
    if playing and not st.session_state.pop("play_hold", False):
        idx = next_play_frame(idx, S)
        st.session_state[slider_key] = idx
        if idx >= S - 1:
            st.session_state["playing"] = False
    elif slider_key not in st.session_state:
        st.session_state[slider_key] = S - 1
    return idx


def step_controls(idx: int) -> int:
    """Play / Pause, the step slider and the step's figures; returns the step chosen."""
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    left.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                on_click=toggle_play, key="play_button", disabled=S < 2)
    if S > 1:
        idx = right.select_slider("Step", options=list(range(S)), key=slider_key,
                                  format_func=lambda i: f"{int(arrays['step'][i]) + 1}")
    else:
        right.markdown("**One step**: the whole sequence comes from a single network call.")
        idx = 0
    t, g = float(arrays["progress"][idx]), float(arrays["gamma"][idx])
    share = float(derived["not_final"][idx])
    stats = f"step {int(arrays['step'][idx]) + 1}/{gen.steps} · model time t = {t:.3f}"
    stats += f" · noise level g = {g:.3f}" if np.isfinite(g) else ""
    if discrete:
        stats += (f" · not decided yet (masked / to generate): {100 * share:.0f} % of positions"
                  f" · prediction argmax ≠ final token: {100 * float(derived['argmax_not_final'][idx]):.0f} %")
    else:
        stats += f" · argmax ≠ final at {100 * share:.0f} % of positions"
    st.markdown(stats)
    return idx


def text_view(idx: int) -> None:
    if S == 1:
        before_after()
        return
    view = step_view(arrays, sample, idx, discrete)
    st.html(render.step_text_html(view["ids"], view["confidence"], view["changed"], view["pending"], tokens, big=big))
    st.caption("Flow models: the prediction's argmax at this step (faint = unsure, orange = changed since the "
               "previous recorded step). MDLM / AR: the state itself (░ = still masked / not generated).")


def before_after() -> None:
    """A one-step run as what it is: nothing, one network call, everything."""
    before = blank_view(L)
    after = step_view(arrays, sample, 0, discrete)
    st.markdown("**Before** · " + ("pure Gaussian noise: no token decodable yet" if not discrete else
                                   "every position still masked"))
    st.html(render.step_text_html(before["ids"], before["confidence"], before["changed"], before["pending"], tokens,
                                  big=big))
    st.markdown(f"**After {gen.nfe} network call{'s' if gen.nfe != 1 else ''}** · the whole sequence at once "
                "(faint = unsure)")
    st.html(render.step_text_html(after["ids"], after["confidence"], np.zeros(L, bool), after["pending"], tokens,
                                  big=big))


def grid_view(idx: int, moving: bool) -> None:
    grid_key = ("grid", sample)
    if grid_key not in derived:  # at most GRID_COLUMNS evenly spaced recorded steps keep scrubbing light
        cols = np.asarray(frame_indices(S, GRID_COLUMNS))
        am = arrays["argmax"][cols, sample]
        derived[grid_key] = dict(cols=cols, argmax=am, confidence=arrays["top_probs"][cols, sample, :, 0],
                                 changes=argmax_changes(am), pending=arrays["pending"][cols, sample])
    grid = derived[grid_key]
    column = int(np.searchsorted(grid["cols"], idx, side="right") - 1)
    st.plotly_chart(charts.argmax_grid(grid["argmax"], grid["confidence"], (arrays["step"][grid["cols"]] + 1).tolist(),
                                       cells, grid["changes"], grid["pending"],
                                       current=None if moving else max(column, 0), big=big), key="chart_grid")
    if len(grid["cols"]) < S:
        st.caption(f"{len(grid['cols'])} of the {S} recorded steps shown, evenly spaced; ✕ marks an argmax "
                   "change since the previous shown column.")


def superposition_view(idx: int) -> None:
    st.markdown("**Superposition** — each position's top candidates at this step, opacity ∝ √probability; "
                "the final token is underlined in red, the top-1 is bold.")
    st.html(render.superposition_html(arrays["top_ids"][idx, sample], arrays["top_probs"][idx, sample], cells,
                                      arrays["final_tokens"][sample], arrays["pending"][idx, sample], big=big))


def simplex_view(idx: int) -> None:
    final_id = int(arrays["final_tokens"][sample, position])
    ids = arrays["top_ids"][:, sample, position]
    pred = ternary_path(ids, arrays["top_probs"][:, sample, position], final_id)
    state = None if discrete else state_ternary(ids, arrays["state_at_top"][:, sample, position], final_id)
    jump = gen.steps == 1 and not discrete
    st.plotly_chart(charts.simplex_figure(pred, arrays["progress"], current=idx, state=state, jump=jump,
                                          labels=(f"final “{tokens[final_id].strip() or tokens[final_id]}”",
                                                  "runner-up"), big=big), key="chart_simplex")
    notes = [f"Position {position}: mass of the prediction on its final token, on the most likely other "
             "token (runner-up) and on everything else, one marker per recorded step (colour = t)."]
    if pred["bound"].any():
        notes.append(f"▽ markers ({int(pred['bound'].sum())} steps): the final token was outside the "
                     f"recorded top-{TOP_K}, so its mass is drawn at the last recorded probability, an upper bound.")
    if state is not None:
        notes.append("Cyan: the noisy state x_g itself, softmax-free — its own coordinates at the recorded "
                     "candidates, shifted by the smallest and normalised to sum 1 (final / largest other /"
                     " remaining candidates); shown at steps where the final token is a candidate.")
    if jump:
        notes.append(f"One step: {spec.label} jumps from pure noise (no information, the 'rest' corner) to its "
                     "answer in a single network call.")
    if discrete:
        notes.append("Discrete model: the state is a token or a mask, so only the prediction is drawn.")
    st.caption(" ".join(notes))


def map_view(idx: int, moving: bool) -> None:
    methods = ["PCA"] + (["UMAP"] if _has_umap() else [])
    method = st.radio("Projection", methods, horizontal=True, key="map_method",
                      help="PCA is instant. UMAP (umap-learn) is slow: its first use compiles for about "
                           "a minute on a laptop CPU.") if len(methods) > 1 else "PCA"
    map_key = ("map", sample, method)
    if map_key not in derived:
        with st.spinner(f"{method} of {S * L} sketches…"):
            derived[map_key] = sketch_map(arrays["prediction_sketch"][:, sample], arrays["final_tokens"][sample],
                                          sketch_matrix(run["vocab_size"]).numpy(), method=method.lower())
    m = derived[map_key]
    st.plotly_chart(charts.sketch_map_figure(m["points"], m["vertices"], arrays["progress"],
                                             current=None if moving else idx, highlight=int(position),
                                             method=method, big=big), key="chart_map")
    note = ""
    if not m["embedded"].all():
        note = (f" UMAP is slow, so it places {int(m['embedded'].sum())} evenly spaced recorded steps; "
                "other steps have no point.")
    st.caption(f"Every position's prediction, as its fixed random {SKETCH_DIM}-D sketch p·P (flm_core.trajectory), "
               "projected to 2-D; ✕ = the vertex P[final token] each position converges to. The red "
               "track is the simplex view's position." + note)


def decoding_error_view(idx: int) -> None:
    if discrete:
        st.plotly_chart(charts.decoding_error_figure(arrays["progress"], arrays["gamma"], derived["not_final"],
                                                     current=idx, pending=derived["argmax_not_final"], big=big,
                                                     label="not final yet (masked / to generate)",
                                                     pending_label="prediction argmax ≠ final (tokens are sampled)"),
                        key="chart_error")
        st.caption("Red: share of positions not decided yet; a decided position keeps its token. Dotted: how "
                   "often the prediction's argmax differs from the token finally drawn there. t is the run's "
                   "progress, from 0 (nothing written) to 1 (the finished sample); there is no noise level g for "
                   "a discrete state.")
        return
    st.plotly_chart(charts.decoding_error_figure(arrays["progress"], arrays["gamma"], derived["not_final"],
                                                 theory=derived["theory"], current=idx, big=big,
                                                 state_error=derived["state_not_final"]), key="chart_error")
    st.caption("Red: share of positions whose predicted argmax is not yet the final token. Grey: the same "
               "for the noisy state's own argmax, measured on this run (solid) and in theory on the ideal "
               "path, 1 − q(g) (dashed, flm_core.schedule.decoding_error); with the α-reparameterised clock "
               "the theory falls linearly in t.")


@st.fragment(run_every=PLAY_INTERVAL if playing else None)
def scrubber() -> None:
    """The step controls and the chosen views, redrawn alone while scrubbing or playing."""
    if bool(st.session_state.get("playing", False)) != playing:
        st.rerun()  # arm or disarm the play timer (needs a full run)
    idx = step_controls(current_step())
    # While playing, the argmax grid and the map (the views that are slow to redraw) show the whole run without
    # the current-step marks: an unchanged chart is not redrawn, so the browser keeps pace and Pause stops on
    # the step on screen. The marks return on the last frame and on Pause.
    moving = bool(st.session_state.get("playing", False))
    if moving and not big and {"Argmax grid", "Map"} & set(views):
        st.caption("Playing: the argmax grid and the map show the whole run; their current-step marks return on "
                   "Pause.")
    if "Text" in views or S == 1:  # a one-step run's before / after is its story: always shown
        text_view(idx)
    if S == 1 and {"Argmax grid", "Decoding error"} & set(views):
        st.caption("One step: the argmax grid and the decoding error would be a single column and a single "
                   "point, so the before / after above replaces them.")
    if "Argmax grid" in views and S > 1:
        grid_view(idx, moving)
    if "Superposition" in views:
        superposition_view(idx)
    side_by_side = [name for name in ("Simplex", "Map") if name in views]  # in two columns when both are chosen
    for name, col in zip(side_by_side, st.columns(2) if len(side_by_side) == 2 else [st.container()]):
        with col:
            if name == "Simplex":
                simplex_view(idx)
            else:
                map_view(idx, moving)
    if "Decoding error" in views and S > 1:
        decoding_error_view(idx)


def _has_umap() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


with player if big else st.container():
    scrubber()
if form_last:
    new_run_form(rerun=True)

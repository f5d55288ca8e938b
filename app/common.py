"""Streamlit glue shared by the pages: checkpoint catalog, cached models, the run store, errors."""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import textwrap
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import streamlit as st
import torch

import flm_core
from flm_core.kinds import Kind
from flm_core.pipeline import Pipeline
from app import catalogue, knobs as sampler_knobs
from app.catalogue import CheckpointInfo
from app.kind_style import kind_label
from app.phrases import steps_phrase
from flm_core.errors import one_line
from app.tokens_view import token_strings

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_RUNS = 12  # runs kept in the session (each holds its trajectory)
# Each run is repeated (same seed, same result) up to REPEATS times while the repeats fit in REPEAT_BUDGET_S
# seconds, and its time is the median of its runs: right after a click the browser redraws the page on the
# same CPU, which can slow one run several-fold. The page says how many runs each median is of.
REPEATS = 3
REPEAT_BUDGET_S = 3.0


# --------------------------------------------------------------------------------------------
# Errors: one st.error line, never a traceback
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def guard(what: str):
    """Show failures inside the block as st.error; flm_core raises ValueError subclasses with one line."""
    try:
        yield
    except ValueError as err:
        st.error(f"{what}: {one_line(err)}", icon="⚠️")
    except Exception as err:  # noqa: BLE001 - the app must never show a traceback
        st.error(f"{what} failed ({type(err).__name__}): {one_line(err)}", icon="⚠️")


# --------------------------------------------------------------------------------------------
# Presentation mode
# --------------------------------------------------------------------------------------------
PRESENTATION_PARAM = "presentation"  # ?presentation=1 in the URL: presentation mode that survives a reload


def url_presentation() -> bool:
    return st.query_params.get(PRESENTATION_PARAM, "") in ("1", "true", "yes", "on")


def big() -> bool:
    """Presentation mode: large type and auto-play."""
    return bool(st.session_state.get("presentation", False))


def start_presentation_from_url() -> None:
    """A new session (a reload) takes presentation mode from the URL."""
    if "presentation" not in st.session_state:
        st.session_state["presentation"] = url_presentation()


def presentation_to_url() -> None:
    """Keep the URL's flag in step with the toggle, so that a reload (or a shared link) keeps the mode; page
    changes drop query parameters, so every run sets it again."""
    if big() and not url_presentation():
        st.query_params[PRESENTATION_PARAM] = "1"
    elif not big() and PRESENTATION_PARAM in st.query_params:
        del st.query_params[PRESENTATION_PARAM]


def apply_style() -> None:
    css = """
    <style>
    .block-container {padding-top: 2.2rem;}
    div[data-testid="stMetricValue"] {font-size: 1.5rem;}
    </style>"""
    if big():  # Streamlit sizes everything in rem, so a larger root font scales the whole page
        css += """
        <style>
        html {font-size: 22px !important;}
        header[data-testid="stHeader"] {height: 2.4rem; min-height: 2.4rem; background: transparent;}
        .block-container {max-width: 100% !important; padding: 2.6rem 1.5rem 2rem 1.5rem !important;}
        div[data-testid="stMetricValue"] {font-size: 1.6rem;}
        .stMarkdown h3 {font-size: 1.3rem; padding: 0.2rem 0 0.1rem 0;}
        .stMarkdown h4 {font-size: 1.0rem; padding: 0.2rem 0 0 0;}
        [data-testid="stHeaderActionElements"] {display: none;}
        </style>"""
    st.html(css)


# --------------------------------------------------------------------------------------------
# Checkpoints and models
# --------------------------------------------------------------------------------------------
# Widget keys whose values outlive their page. Streamlit forgets the value of a widget that a run does not
# draw (another page is open); assigning such a key to itself on every run (`keep_settings`, from
# main.py) makes it plain session state that the widget picks up again when its page comes back.
# Their widgets take their first value from `defaults`, never from value=/default= (both at once warn).
KEPT_SETTINGS = {"num_samples", "seed", "prompt", "ending", "time_ckpt", "time_steps", "time_k",
                 "train_ckpts", "train_metrics", "traj_new_ckpt", "traj_new_steps", "traj_new_n", "traj_new_seed",
                 "traj_views", "map_method", "traj_mode", "sync_clock", "show_real", "one_step_n", "one_step_seed",
                 "one_step_flow", "one_step_ckpt::factorised", "one_step_ckpt::flow map", "one_step_ckpt::flow",
                 *sampler_knobs.KEYS}


def keep_settings() -> None:
    for key in [k for k in st.session_state if k in KEPT_SETTINGS]:
        st.session_state[key] = st.session_state[key]


def defaults(**values) -> None:
    """First values of widgets whose settings are kept (KEPT_SETTINGS)."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def kept_choices(key: str, options, default: list) -> None:
    """First value and upkeep of a kept multiselect: choices no longer offered (a vanished checkpoint, a
    metric no chosen log has) leave it; if that empties it, the default comes back, while a selection
    the user emptied stays empty."""
    kept = st.session_state.setdefault(key, default)
    st.session_state[key] = [c for c in kept if c in options] or (default if kept else [])


def catalog() -> list[CheckpointInfo]:
    """All checkpoints: $FLM_EXPLORER_CHECKPOINTS (default ./checkpoints), user-added paths and the authors'
    checkpoints in the Hugging Face cache."""
    roots = catalogue.checkpoint_roots(repo_root=REPO_ROOT)
    return catalogue.scan_checkpoints(roots, st.session_state.get("extra_paths", []), catalogue.authors_checkpoints())


def usable(infos: list[CheckpointInfo]) -> list[CheckpointInfo]:
    return [c for c in infos if c.error is None]


def benchmarks_path() -> Path:
    """$FLM_EXPLORER_BENCHMARKS, else benchmarks.json in the first checkpoint folder."""
    explicit = os.environ.get(catalogue.ENV_BENCHMARKS)
    if explicit:
        return Path(explicit)
    return catalogue.checkpoint_roots(repo_root=REPO_ROOT)[0] / "benchmarks.json"


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def load_pipeline(path: str, mtime: float):
    """flm_core.load, once per (path, file time), warmed so that the first click times generation only: a
    one-step run builds the schedule table and warms torch's kernels; where a run makes a fixed seq_len - 1
    calls whatever it is asked (AR), one forward pass of two tokens does."""
    pipe = flm_core.load(path)
    if pipe.spec.fixed_steps:
        pipe.logits(torch.zeros(1, 2, dtype=torch.long), 0.0)
    else:
        pipe.generate(1, 1, 0, record=True)
    return pipe


@st.cache_resource(max_entries=16, show_spinner="Timing one network call…")
def call_seconds(path: str, mtime: float) -> float:
    """Seconds of one network call on one sample of the (warmed) checkpoint, measured once per process: the
    time model of run estimates before a model's first run (a batch of B costs at most B times as much)."""
    gen = load_pipeline(path, mtime).generate(1, 1, 0)
    return gen.seconds / max(gen.nfe, 1)


@st.cache_resource(max_entries=16, show_spinner=False)
def token_table(path: str, mtime: float) -> list[str]:
    """Printable string of every token id of a checkpoint's tokenizer."""
    pipe = load_pipeline(path, mtime)
    return token_strings(pipe.tokenizer, pipe.vocab_size)


def pipeline_for(info: CheckpointInfo):
    return load_pipeline(info.path, info.mtime)


@st.cache_resource(max_entries=4, show_spinner="Loading guide…")
def guided_pipeline(path: str, mtime: float, guide: str, guide_mtime: float):
    """A pipeline of `path` guided by `guide`: a new Pipeline over the cached networks, so the cached unguided
    one (shared by every session) is never changed; raises ValueError for a guide flm_core refuses."""
    pipe = load_pipeline(path, mtime)
    guided = Pipeline(pipe.config, pipe.network, pipe.tokenizer, pipe.path, str(pipe.device))
    guided.set_guide(load_pipeline(guide, guide_mtime))
    return guided


# --------------------------------------------------------------------------------------------
# Runs kept in the session (scrubbing never reruns a model)
# --------------------------------------------------------------------------------------------
def run_store() -> "OrderedDict[str, dict]":
    return st.session_state.setdefault("runs", OrderedDict())


def run_key(info: CheckpointInfo, steps: int, seed: int, n: int, prefix: str = "", suffix: str = "",
            knobs: sampler_knobs.Knobs = sampler_knobs.Knobs()) -> str:
    guide = [knobs.guide.path, knobs.guidance] if knobs.guided else []
    return json.dumps([info.path, round(info.mtime), steps, seed, n, prefix, suffix, knobs.renoise, *guide])


def run_label(run: dict) -> str:
    gen = run["gen"]
    prompt = (run["prefix"] + (f" … {run['suffix']}" if run["suffix"] else "")).strip()
    return (f"{kind_label(run['kind'])} · {run['name']} · {steps_phrase(gen.steps)}"
            f" · seed {run['seed']} · {run['n']} sample{'s' if run['n'] > 1 else ''}"
            + (f" · prompt “{textwrap.shorten(prompt, 40, placeholder='…')}”" if prompt else "")
            + (f" · {run['knobs']}" if run.get("knobs") else ""))


def execute(info: CheckpointInfo, steps: int, seed: int, n: int,
            progress: Callable[[int, int], None] | None = None, prefix: str = "", suffix: str = "",
            knobs: sampler_knobs.Knobs = sampler_knobs.Knobs()) -> dict:
    """Run the model for real (record=True) and keep the run under its key; raises ValueError on bad input.
    knobs: the page's flow-sampler setting, as it applies to this checkpoint (`knobs.applied`)."""
    knobs = sampler_knobs.applied(knobs, info)
    pipe = (guided_pipeline(info.path, info.mtime, knobs.guide.path, knobs.guide.mtime) if knobs.guided
            else pipeline_for(info))

    def once(report=None):
        return pipe.generate(int(n), int(steps), int(seed), record=True, progress=report, prefix=prefix, suffix=suffix,
                             renoise=knobs.renoise, guidance=knobs.guidance)

    gen = once(progress)
    times = [gen.seconds]
    while len(times) < REPEATS and sum(times) + statistics.median(times) <= REPEAT_BUDGET_S:
        times.append(once().seconds)
    gen.seconds = statistics.median(times)
    run = {"id": run_key(info, steps, seed, n, prefix, suffix, knobs), "name": info.name, "path": info.path,
           "kind": pipe.kind, "steps": int(steps), "seed": int(seed), "n": int(n), "prefix": prefix,
           "suffix": suffix, "gen": gen, "timed_runs": len(times), "times": times, "created": time.time(),
           "vocab_size": pipe.vocab_size, "seq_len": pipe.seq_len, "mtime": info.mtime, "derived": {},
           "knobs": sampler_knobs.describe(knobs)}
    store = run_store()
    store.pop(run["id"], None)
    store[run["id"]] = run
    while len(store) > MAX_RUNS:
        store.popitem(last=False)
    history = st.session_state.setdefault("history", [])
    history.append({"model": info.name, "kind": pipe.kind, "steps": gen.steps, "nfe": gen.nfe, "num_samples": n,
                    "seconds": gen.seconds, "seconds_per_sample": gen.seconds / max(n, 1), "device": gen.device,
                    "tokens_per_second": gen.tokens_per_second})
    return run


def progress_reporter(bar, label: str, min_interval: float = 0.5) -> Callable[[int, int], None]:
    """A flm_core progress callback that updates an st.progress bar every `min_interval` s, the first time after
    `min_interval` s: each update makes the browser redraw on the CPU the run is timed on."""
    start = time.perf_counter()
    state = {"last": start, "start": start}

    def report(i: int, n: int) -> None:
        now = time.perf_counter()
        if now - state["last"] >= min_interval:
            state["last"] = now
            bar.progress(min(1.0, i / max(n, 1)), text=f"{label}: step {i}/{n} · {now - state['start']:.1f} s")

    return report


def checkpoint_selector(label: str, infos: list[CheckpointInfo], key: str,
                        prefer: Callable[[Kind], bool] | None = None) -> CheckpointInfo | None:
    """A selectbox over usable checkpoints, first set to the first whose kind `prefer` accepts."""
    options = usable(infos)
    if not options:
        return None
    by_path = {c.path: c for c in options}
    index = next((i for i, c in enumerate(options) if prefer is not None and prefer(c.spec)), 0)
    if st.session_state.get(key) not in by_path:
        st.session_state[key] = options[index].path
    choice = st.selectbox(label, list(by_path), format_func=lambda p: by_path[p].label, key=key)
    return by_path.get(choice, options[index])

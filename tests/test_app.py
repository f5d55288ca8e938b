"""The Streamlit app: every page under AppTest with tiny random checkpoints, and the pure chart builders.

Tiny checkpoints (vocab ~300, L 24, hidden 32) are written with flm_core.checkpoint.save_checkpoint
into a temporary folder, and the app is pointed at it through FLM_EXPLORER_CHECKPOINTS.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from flm_core.bench import matched_speedups
from flm_core.checkpoint import save_checkpoint
from flm_core.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from flm_core.models import build_network
from flm_core.tokens import train_tokenizer

from app import catalogue, charts, common, render
from app.bench_table import read_benchmarks
from app.export import denoising_frames, export_run
from app.kind_style import KIND_COLOR
from app.lanes import estimate_seconds, live_speedups, token_diff
from app.maps import sketch_map
from app.phrases import steps_phrase, times_phrase
from app.record import (PLAY_FRAMES, argmax_changes, frame_indices, next_play_frame, not_final_share,
                        pending_share, step_view, to_numpy)
from app.simplex import state_ternary, ternary_path
from app.sync import CLOCKS, clock_end, clock_phrase, done_at, frame_value, shown_index
from app.sync_view import SYNC_FRAMES
from app.tokens_view import joined_pieces, token_strings

APP = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
SEQ_LEN = 24
TEXTS = ["The flow moves one-hot vectors from noise to text along a straight path.",
         "A flow map jumps from noise to the data in one step; the teacher takes many.",
         "Masked diffusion unmasks tokens; the autoregressive model writes left to right."] * 8
OBJECTIVE = {"flm": "flm", "fmlm": "fmlm-semigroup", "mdlm": "mdlm", "ar": "ar"}
REAL_TEXTS = ["The Moon is the only natural satellite of the Earth, and its fifth largest.",
              "A river is a natural flowing watercourse, usually freshwater, flowing towards an ocean or a lake."]


@torch.no_grad()
def _randomize(network: torch.nn.Module, seed: int) -> None:
    """Seeded random weights everywhere (zero-initialised layers included), so outputs vary."""
    gen = torch.Generator().manual_seed(seed)
    for param in network.parameters():
        noise = torch.randn(param.shape, generator=gen)
        param.copy_(noise / math.sqrt(param.shape[-1]) if param.dim() >= 2 else 1.0 + 0.1 * noise)


def make_tiny_checkpoints(root: Path, seq_len: int = SEQ_LEN) -> dict[str, Path]:
    """One random tiny checkpoint per kind under root/<kind>, plus a metrics.jsonl and benchmarks.json."""
    tokenizer = train_tokenizer(TEXTS, 300)
    vocab = tokenizer.get_vocab_size()
    paths = {}
    for i, kind in enumerate(("flm", "fmlm", "mdlm", "ar")):
        model = ModelConfig(vocab_size=vocab, seq_len=seq_len, hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16,
                            dropout=0.0, causal=kind == "ar", double_time=kind == "fmlm")
        config = RunConfig(kind=kind, model=model, objective=ObjectiveConfig(name=OBJECTIVE[kind]),
                           training=TrainConfig(batch_size=8, precision="fp32"))
        config.validate()
        torch.manual_seed(i)
        network = build_network(model)
        _randomize(network, seed=i)
        if kind == "fmlm":  # like distillation: start from the FLM's weights (plus its own second time input)
            shared = {k: v for k, v in flm_weights.items() if k in network.state_dict()}
            network.load_state_dict(shared, strict=False)
            network.zero_init_second_time()
        if kind == "flm":
            flm_weights = network.state_dict()
        out = root / f"tiny_{kind}"
        save_checkpoint(out, config, network, tokenizer.to_str(), card=f"# tiny {kind}\n\nrandom weights for tests")
        metric = "consistency_kl" if kind == "fmlm" else "nll"
        lines = [{"step": s, "split": "train", metric: 5.0 / s, "lr": 1e-3} for s in range(1, 6)]
        lines += [{"step": 5, "split": "val", metric: 1.2}]
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        paths[kind] = out
    rows = [{"model": "tiny_fmlm", "kind": "fmlm", "steps": 1, "nfe": 1, "seconds_per_sample": 0.01, "gen_ppl": 90.0,
             "entropy": 5.1, "mauve": 0.5, "memorization": 0.01, "word_validity": 0.8, "num_samples": 8},
            {"model": "tiny_flm", "kind": "flm", "steps": 64, "nfe": 64, "seconds_per_sample": 0.4, "gen_ppl": 80.0,
             "entropy": 5.2, "mauve": None, "memorization": 0.0, "word_validity": 0.85, "num_samples": 8}]
    rows.append({"model": "data (validation)", "kind": "data", "steps": None, "nfe": None, "num_samples": 5,
                 "gen_ppl": 30.0, "entropy": 5.4, "word_validity": 0.95,
                 "examples": ["Example real text from the benchmark."]})  # the bench's reference row: not timed
    data = root / "data"  # as prepare-data leaves it: validation texts beside the blocks
    data.mkdir(exist_ok=True)
    (data / "val_texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in REAL_TEXTS), encoding="utf-8")
    result = {"rows": rows, "speedups": matched_speedups(rows), "settings": {"data": str(data), "num_samples": 8,
              "repeats": 3, "evaluator": "tiny_ar"}, "environment": {"device": "cpu"}}
    (root / "benchmarks.json").write_text(json.dumps(result), encoding="utf-8")
    # Card data as the shipped checkpoints have it: the FMLM's size and training; the AR's run went on after
    # the step its weights were exported at (its log runs to step 5, the weights are from step 3).
    stage = {"command": "python -m flm_core train", "tokens_seen": 100, "precision": "bf16", "init_from": None,
             "validation": {"nll": 1.5}}
    cards = {"fmlm": {"parameters": 7_133_952, "stages": [dict(stage, steps=5, wall_minutes=2.6,
                                                              hardware="NVIDIA H200 (CUDA)")]},
             "ar": {"parameters": 5_780_256,
                    "stages": [dict(stage, steps=3, wall_minutes=2.0, hardware="NVIDIA H100")]}}
    for kind, card in cards.items():
        (paths[kind] / "card.json").write_text(json.dumps(dict(card, benchmark=None)), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("app_ckpts")
    make_tiny_checkpoints(root)
    return root


@pytest.fixture
def app(tiny_root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, str(tiny_root))
    monkeypatch.delenv(catalogue.ENV_BENCHMARKS, raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


# --------------------------------------------------------------------------------------------
# Pages under AppTest
# --------------------------------------------------------------------------------------------
def test_generate_page_runs_flm_and_fmlm(app):
    _ok(app)
    assert app.title[0].value == "Generate"
    assert [(Path(lane["path"]).name, lane["steps"]) for lane in app.session_state["lanes"]] == [
        ("tiny_fmlm", 1), ("tiny_flm", 32)]
    assert app.text_input(key="prompt").value == "" and not any("invisible" in c.value for c in app.caption)
    app.button(key="generate").click().run()
    _ok(app)
    labels = [m.label for m in app.metric]
    assert labels.count("Wall time") == 2 and labels.count("NFE") == 2
    assert any(m.label.startswith("vs FLM") and "faster" in m.value for m in app.metric)
    assert any(m.label == "Positions where FMLM (1 step) matches FLM (32 steps)" for m in app.metric)
    html = " ".join(str(h.proto.body) for h in app.get("html"))
    assert 'data-lane="fmlm"' in html and 'data-lane="flm"' in html and "flm-diff" in html
    runs = app.session_state["runs"]
    assert len(runs) == 2 and {r["gen"].nfe for r in runs.values()} == {1, 32}
    # Each run is repeated while the repeats are cheap and shows the median of its runs, and says so.
    assert all(1 <= r["timed_runs"] <= common.REPEATS and len(r["times"]) == r["timed_runs"] for r in runs.values())
    assert all(r["gen"].seconds == statistics.median(r["times"]) for r in runs.values())
    assert sum("median of" in c.value and "identical run" in c.value for c in app.caption) == 2
    assert app.session_state["batch_unfinished"] == [] and not app.warning
    app.session_state["batch_unfinished"] = ["FLM · tiny_flm"]  # what a run stopped by leaving the page leaves
    app.run()
    assert any("Not finished: FLM · tiny_flm" in w.value for w in app.warning)
    app.session_state["batch"] = []  # stopped during the first (or only) lane: nothing finished at all
    app.session_state["batch_errors"] = ["FMLM · tiny_fmlm: out of memory"]
    app.run()
    assert [e.value for e in app.error] == ["FMLM · tiny_fmlm: out of memory"]
    assert any("Not finished" in w.value for w in app.warning)


def test_generate_with_a_prompt(app, tiny_root):
    """Every lane keeps the prompt; the page says what a one-step flow and AR do with it; FLM/FMLM agreement
    counts the positions they wrote; the run's label names the prompt."""
    app.button(key="add_lane").click().run()  # the checkpoints without a lane yet: MDLM, then AR
    app.button(key="add_lane").click().run()
    assert sorted(Path(lane["path"]).name for lane in app.session_state["lanes"]) == [
        "tiny_ar", "tiny_flm", "tiny_fmlm", "tiny_mdlm"]
    app.text_input(key="prompt").set_value("the").run()
    app.text_input(key="ending").set_value("end").run()
    notes = " ".join(c.value for c in app.caption)
    assert "at 1 step starts from pure noise" in notes and "writes the ending when it gets there" in notes
    app.button(key="generate").click().run()
    _ok(app)
    runs = list(app.session_state["runs"].values())
    assert len(runs) == 4
    for run in runs:
        gen = run["gen"]
        assert all(t.startswith("\nthe") and t.endswith("end") for t in gen.texts), (run["kind"], gen.texts)
        assert gen.held is not None and "prompt “the … end”" in common.run_label(run)
    flm, fmlm = (next(r for r in runs if r["kind"] == k) for k in ("flm", "fmlm"))
    free = ~flm["gen"].held.numpy()
    expected = (flm["gen"].tokens.numpy()[:, free] == fmlm["gen"].tokens.numpy()[:, free]).mean()
    shown = next(m.value for m in app.metric if m.label.startswith("Positions where FMLM"))
    assert shown == f"{100 * expected:.1f} %"
    app.text_input(key="prompt").set_value("word " * 40).run()
    app.button(key="generate").click().run()
    assert not app.exception and any("shorten the prefix" in e.value for e in app.error)


def test_generate_all_four_kinds_and_ar_note(app, tiny_root):
    app.button(key="add_lane").click().run()
    app.button(key="add_lane").click().run()
    assert any("L-1" in c.value and f"{SEQ_LEN - 1} network calls" in c.value for c in app.caption)
    for lane in app.session_state["lanes"]:
        if not lane["path"].endswith("_ar"):
            app.select_slider(key=f"lane_steps::{lane['id']}").set_value(2)
    app.number_input(key="num_samples").set_value(1)
    app.button(key="generate").click().run()
    _ok(app)
    nfes = sorted(r["gen"].nfe for r in app.session_state["runs"].values())
    assert nfes == [2, 2, 2, SEQ_LEN - 1]


def test_lanes_run_one_checkpoint_at_two_step_counts(app, tiny_root):
    """Lanes are (checkpoint, steps) pairs: FLM@1 beside FLM@32 beside FMLM@1, without copying a folder; "Add
    lane", the talk preset and removing a lane."""
    app.button(key="add_lane").click().run()  # a checkpoint without a lane yet (MDLM) ...
    new = app.session_state["lanes"][-1]["id"]
    app.selectbox(key=f"lane_ckpt::{new}").set_value(str(tiny_root / "tiny_flm")).run()  # ... made a second FLM
    assert app.session_state["lanes"][-1]["steps"] == 32  # another kind: the FLM's default steps
    app.select_slider(key=f"lane_steps::{new}").set_value(1).run()
    app.number_input(key="num_samples").set_value(1)
    app.button(key="generate").click().run()
    _ok(app)
    headings = [m.value for m in app.markdown if m.value.startswith("#### ")]
    assert headings == ["#### FMLM@1 · tiny_fmlm", "#### FLM@32 · tiny_flm", "#### FLM@1 · tiny_flm"]
    runs = [app.session_state["runs"][i] for i in app.session_state["batch"]]
    assert [(Path(r["path"]).name, r["gen"].nfe) for r in runs] == [("tiny_fmlm", 1), ("tiny_flm", 32), ("tiny_flm", 1)]
    assert {m.label for m in app.metric if m.label.startswith("vs ")} == {"vs FLM@32 · tiny_flm", "vs FLM@1 · tiny_flm"}
    assert any(m.label == "Positions where FMLM (1 step) matches FLM (32 steps)" for m in app.metric)  # the teacher's
    app.button(key="talk_preset").click().run()
    lanes = app.session_state["lanes"]
    assert [(Path(lane["path"]).name, lane["steps"]) for lane in lanes] == [
        ("tiny_fmlm", 1), ("tiny_flm", 1), ("tiny_flm", 32), ("tiny_mdlm", 32)]
    app.button(key=f"lane_rm::{lanes[1]['id']}").click().run()
    _ok(app)
    assert [(Path(lane["path"]).name, lane["steps"]) for lane in app.session_state["lanes"]] == [
        ("tiny_fmlm", 1), ("tiny_flm", 32), ("tiny_mdlm", 32)]


def test_headline_is_the_quality_matched_speedup_beside_this_click(app, monkeypatch, tmp_path):
    app.button(key="generate").click().run()
    _ok(app)
    markdown = [m.value for m in app.markdown]
    assert markdown[0] == "### FMLM@1 is 40× faster than FLM at 64 steps, where FLM first matches its quality"
    source = next(c.value for c in app.caption if c.value.startswith("Quality-matched, from the benchmark"))
    assert "`benchmarks.json`; 8 samples, median of 3 timed runs; cpu; Gen PPL by `tiny_ar`" in source
    live = next(m for m in markdown if m.startswith("**this click: median"))
    counts = {r["timed_runs"] for r in app.session_state["runs"].values()}
    assert live.startswith(f"**this click: median of {counts.pop()} run") if len(counts) == 1 else "medians" in live
    assert [m.label for m in app.metric if m.label.startswith("vs ")] == ["vs FLM@32 · tiny_flm"]
    monkeypatch.setenv(catalogue.ENV_BENCHMARKS, str(tmp_path / "absent.json"))  # not benchmarked: said so
    app.run()
    _ok(app)
    assert app.markdown[0].value == "### FMLM@1: no quality-matched speedup (this checkpoint is not in the benchmark)"
    assert any(m.label == "vs FLM@32 · tiny_flm" for m in app.metric)


def test_quality_note_says_what_the_models_are_beside_real_text(app):
    app.toggle(key="show_real").set_value(True).run()
    app.button(key="generate").click().run()
    _ok(app)
    markdown = " ".join(m.value for m in app.markdown)
    assert ("**Small demo models**: 7.1M parameters, trained for 3 minutes (NVIDIA H200). Expect broken words, not "
            "English. Real text scores Gen PPL 30.0 and 95 % real words.") in markdown
    captions = [c.value for c in app.caption]
    assert ("7.1M parameters · 2.6 min of distillation · Gen PPL 90.0 (real text 30.0) · 80 % real words "
            "(real text 95 %)") in captions
    assert any(c.endswith("M parameters (counted from the weights) · no card data: training unknown · not "
                          "benchmarked at 32 steps") for c in captions)  # an unknown checkpoint: what is known
    assert "#### Real text · validation" in markdown
    real = [h for h in app.get("html") if 'data-lane="data"' in str(h.proto.body)]
    assert len(real) == 1 and any(t[:20] in str(real[0].proto.body) for t in REAL_TEXTS)
    assert any(c.startswith("From `val_texts.jsonl`") for c in captions)


def test_bad_user_path_shows_error_not_traceback(app, tmp_path, tiny_root, monkeypatch):
    app.text_input(key="user_path").input("/etc").run()
    assert not app.exception
    assert any("outside the allowed folders" in e.value for e in app.sidebar.error)
    monkeypatch.setenv(catalogue.ENV_ALLOW, str(tmp_path))
    app.text_input(key="user_path").input(str(tmp_path / "nope")).run()
    assert not app.exception
    assert any("no such directory" in e.value for e in app.sidebar.error)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"kind": "flm", "model": {"vocab_size": 1, "seq_len": 8}}')
    app.text_input(key="user_path").input(str(bad)).run()
    assert not app.exception and app.sidebar.error
    assert "vocab_size" in app.sidebar.error[0].value
    # Incompatible: an FLM's weights under an FMLM config.
    odd = tmp_path / "odd"
    shutil.copytree(tiny_root / "tiny_flm", odd)
    config = json.loads((odd / "config.json").read_text())
    config["kind"], config["model"]["double_time"], config["objective"]["name"] = "fmlm", True, "fmlm-semigroup"
    (odd / "config.json").write_text(json.dumps(config))
    app.text_input(key="user_path").input(str(odd)).run()
    assert not app.exception
    assert "weights do not match" in app.sidebar.error[0].value
    # A good one is added to the catalog.
    good = tmp_path / "good"
    shutil.copytree(tiny_root / "tiny_mdlm", good)
    app.text_input(key="user_path").input(str(good)).run()
    assert not app.exception and not app.sidebar.error
    assert "MDLM · good" in app.selectbox(key="lane_ckpt::0").options


def test_incompatible_checkpoint_in_catalog_is_reported(tmp_path, monkeypatch, tiny_root):
    from streamlit.testing.v1 import AppTest

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("broken" in w.value for w in at.sidebar.warning)
    assert any("No checkpoints yet" in i.value for i in at.info)


def test_trajectory_page_scrub_and_exports(app):
    app.button(key="generate").click().run()
    app.switch_page("views/trajectory.py").run()
    _ok(app)
    assert app.segmented_control(key="traj_mode").value == "Side by side"  # a new set from Generate
    app.segmented_control(key="traj_mode").set_value("One run").run()
    _ok(app)
    assert app.title[0].value == "Trajectory"
    run_ids = app.selectbox(key="traj_run").options
    assert len(run_ids) == 2
    slider = next(s for s in app.select_slider if s.key and s.key.startswith("traj_step::"))
    assert len(slider.options) == 32
    slider.set_value(3).run()
    _ok(app)
    kinds = {type(c.proto).__name__ for c in app.get("plotly_chart")}
    assert len(app.get("plotly_chart")) == 4, kinds  # grid, simplex, map, decoding error
    assert any("step 4/32" in m.value for m in app.markdown)
    assert any("flm-superposition" in str(h.proto.body) for h in app.get("html"))
    labels = [d.proto.label for d in app.get("download_button")]
    assert "Export run (JSON)" in labels and "Denoising GIF (slides)" in labels
    # The one-step FMLM run: a single recorded step, drawn as a jump.
    fmlm = next(i for i in app.session_state["runs"] if "tiny_fmlm" in i)
    app.selectbox(key="traj_run").set_value(fmlm).run()
    _ok(app)
    assert any("One step" in m.value for m in app.markdown)
    # ... shown as before / after, not one stretched grid column or a single-point error plot.
    assert any(m.value.startswith("**Before** · pure Gaussian noise") for m in app.markdown)
    assert any(m.value.startswith("**After 1 network call**") for m in app.markdown)
    texts = [str(h.proto.body) for h in app.get("html") if "flm-step-text" in str(h.proto.body)]
    assert len(texts) == 2 and texts[0].count("░") == SEQ_LEN and "░" not in texts[1]
    assert len(app.get("plotly_chart")) == 2  # simplex and map; no grid, no decoding error


def test_unreadable_weights_show_an_error(tmp_path, monkeypatch, tiny_root):
    from streamlit.testing.v1 import AppTest

    broken = tmp_path / "broken_fmlm"
    shutil.copytree(tiny_root / "tiny_fmlm", broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("not a readable safetensors file" in e.value for e in at.error)
    at.button(key="generate").click().run()
    assert not at.exception
    assert any("broken_fmlm" in e.value and "safetensors" in e.value for e in at.error)


def test_trajectory_new_run_form_and_discrete_model(app, tiny_root):
    app.switch_page("views/trajectory.py").run()
    assert any("No recorded run" in i.value for i in app.info)
    app.selectbox(key="traj_new_ckpt").set_value(str(tiny_root / "tiny_mdlm"))
    app.select_slider(key="traj_new_steps").set_value(8)
    app.button(key="traj_new_run").click().run()
    _ok(app)
    assert "tiny_mdlm" in app.selectbox(key="traj_run").value
    assert len(app.get("plotly_chart")) == 4


def test_presentation_mode_autoplays(app):
    app.button(key="generate").click().run()
    app.toggle(key="presentation").set_value(True).run()
    assert app.query_params.get("presentation") in ("1", ["1"])  # a reload keeps the mode
    app.switch_page("views/trajectory.py").run()
    _ok(app)
    assert app.session_state["sync_playing"] is True  # the new set plays side by side
    assert any(b.label == "Pause" for b in app.button)
    app.segmented_control(key="traj_mode").set_value("One run").run()
    _ok(app)
    assert app.session_state["playing"] is True


def _grid_has_step_mark(at) -> bool:
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Argmax per position" in c.proto.spec)
    return bool(spec["layout"].get("shapes"))


def test_play_shows_at_most_play_frames_and_pause_stops_on_the_step_shown(app, tiny_root):
    """Play walks a long run in evenly spaced frames (step 1 first, the last step last); while it plays the grid
    drops its current-step mark (an unchanged chart is not redrawn), which returns on the last frame and on Pause."""
    app.switch_page("views/trajectory.py").run()
    app.selectbox(key="traj_new_ckpt").set_value(str(tiny_root / "tiny_flm"))
    app.select_slider(key="traj_new_steps").set_value(128)
    app.button(key="traj_new_run").click().run()
    _ok(app)
    slider = next(s.key for s in app.select_slider if s.key and s.key.startswith("traj_step::"))
    assert app.select_slider(key=slider).value == 127 and _grid_has_step_mark(app)
    app.button(key="play_button").click().run()
    shown, marked = [app.select_slider(key=slider).value], [_grid_has_step_mark(app)]
    while app.session_state["playing"]:
        app.run()
        shown.append(app.select_slider(key=slider).value)
        marked.append(_grid_has_step_mark(app))
    _ok(app)
    assert shown == frame_indices(128, PLAY_FRAMES) and len(shown) == PLAY_FRAMES
    assert not any(marked[:-1]) and marked[-1]
    app.button(key="play_button").click().run()  # from the end, Play starts again at step 1
    app.run()
    app.run()
    assert app.session_state["playing"] and not _grid_has_step_mark(app)
    on_screen = app.select_slider(key=slider).value
    app.button(key="play_button").click().run()  # Pause
    _ok(app)
    assert not app.session_state["playing"] and _grid_has_step_mark(app)
    assert app.select_slider(key=slider).value == on_screen == frame_indices(128, PLAY_FRAMES)[2]


def test_trajectory_of_a_prompted_flow_run_shows_the_prompt_and_scores_the_rest(app):
    app.text_input(key="prompt").set_value("the").run()
    app.button(key="generate").click().run()
    app.switch_page("views/trajectory.py").run()
    app.segmented_control(key="traj_mode").set_value("One run").run()
    _ok(app)
    run = app.session_state["runs"][app.selectbox(key="traj_run").value]
    arrays, gen = run["derived"]["arrays"], run["gen"]
    held = gen.held.numpy()
    recorded = gen.trajectory.argmax.numpy()  # the record: the held token at held positions, the guess elsewhere
    free_share = (recorded[:, :, ~held] != gen.tokens.numpy()[None][:, :, ~held]).mean(axis=(1, 2))
    np.testing.assert_allclose(run["derived"]["not_final"], free_share)
    first = step_view(arrays, 0, 0, discrete=False)
    assert (first["ids"][held] == gen.tokens[0].numpy()[held]).all() and (first["confidence"][held] == 1).all()


def test_side_by_side_plays_runs_on_one_clock(app):
    """The Trajectory page plays the Generate set on one clock: frame 0 is before any network call, and on the
    model-time clock the one-step FMLM is done at frame 1 while the 32-step FLM is at its first step."""
    app.button(key="generate").click().run()
    app.switch_page("views/trajectory.py").run()
    _ok(app)

    def status() -> dict[str, str]:
        rows = [m.value for m in app.markdown if m.value.startswith("**FMLM@1**") or m.value.startswith("**FLM@32**")]
        return {row.split("**")[1]: row.split(":gray[")[1].rstrip("]") for row in rows}

    app.select_slider(key="sync_frame").set_value(0).run()
    assert status() == {"FMLM@1": "before the first call: noise", "FLM@32": "before the first call: noise"}
    boxes = [str(h.proto.body) for h in app.get("html") if "flm-step-text" in str(h.proto.body)]
    assert len(boxes) == 2 and all(b.count("░") == SEQ_LEN for b in boxes)
    app.select_slider(key="sync_frame").set_value(1).run()
    assert status() == {"FMLM@1": "✓ done: 1 network call", "FLM@32": "step 1 of 32"}
    app.segmented_control(key="sync_clock").set_value("network calls").run()
    _ok(app)
    assert status()["FLM@32"].startswith("step ") and any("network calls" in m.value for m in app.markdown)
    app.button(key="sync_play").click().run()
    while app.session_state["sync_playing"]:
        app.run()
    _ok(app)
    assert app.session_state["sync_frame"] == SYNC_FRAMES
    assert status() == {"FMLM@1": "✓ done: 1 network call", "FLM@32": "✓ done: 32 network calls"}


def test_headline_and_quality_phrases(tmp_path):
    from app.headline import bench_index, bench_model, live_phrase, matched_entries, matched_sentence, speed_phrase
    from app.quality import card_facts, overview, read_val_texts, real_samples
    from app.training_log import up_to, weights_note

    entry = {"fmlm": "fmlm-wiki", "model": "flm-wiki", "kind": "flm", "matched": True, "steps": 8, "speedup": 5.334,
             "fmlm_gen_ppl": 6652.3}
    other = dict(entry, model="mdlm-wiki", kind="mdlm", steps=4, speedup=2.65)
    assert matched_sentence(entry, "FMLM@1") == ("FMLM@1 is 5.3× faster than FLM at 8 steps, where FLM first matches "
                                                 "its quality")
    assert matched_sentence(dict(entry, matched=False, speedup=None), "FMLM@1").startswith(
        "No setting of FLM in the benchmark matches FMLM@1's quality (Gen PPL ≤ 6,652")
    assert matched_entries([entry, other], "fmlm-wiki", ["mdlm-wiki"]) == [other]  # the lanes' models first ...
    assert matched_entries([entry, other], "fmlm-wiki", ["ar-wiki"]) == [entry, other]  # ... else all of them
    assert live_phrase([3, 3]) == "this click: median of 3 runs" and live_phrase([1]) == "this click: median of 1 run"
    assert live_phrase([3, 1, 2]) == "this click: medians of 3, 2 and 1 runs"
    assert speed_phrase(0.98) == "about as fast" and speed_phrase(27.2) == "27× faster"
    (tmp_path / "ckpts" / "flm-wiki").mkdir(parents=True)
    rows = [{"model": "flm-wiki", "kind": "flm", "checkpoint": "checkpoints/flm-wiki"}, {"model": "d", "kind": "data"}]
    index = bench_index(rows, tmp_path / "ckpts" / "benchmarks.json", tmp_path / "repo")  # moved with its benchmark
    assert bench_model(index, str(tmp_path / "ckpts" / "flm-wiki")) == "flm-wiki" and len(index) == 1
    card = {"parameters": 7_084_544,
            "stages": [{"steps": 10, "wall_minutes": 5.5, "hardware": "NVIDIA H200 (CUDA), 3 runs"},
                       {"steps": 4, "wall_minutes": 3.9, "hardware": "NVIDIA H100 80GB HBM3 (CUDA)"}]}
    facts = card_facts(card)
    assert facts == {"parameters": 7_084_544, "minutes": 9.4, "stages": 2,
                     "hardware": ["NVIDIA H200", "NVIDIA H100 80GB HBM3"]}
    assert card_facts(None)["parameters"] is None
    assert overview([facts, card_facts(None)], None, brief=True) == (
        "**Small demo models**: 7.1M parameters, 9 min of training. 1 lane without card data: training not known.")
    assert overview([card_facts(None)], None).startswith("**Unknown checkpoints**")
    (tmp_path / "val.jsonl").write_text('"one two three four five six"\n{"text": "seven"}\nnot json\n')
    assert read_val_texts([tmp_path / "absent.jsonl", tmp_path / "val.jsonl"]) == ([], "")  # an unreadable line
    (tmp_path / "val.jsonl").write_text('"one two three four five six"\n{"text": "seven"}\n')
    texts, source = read_val_texts([tmp_path / "val.jsonl"])
    assert texts == ["one two three four five six", "seven"] and source.endswith("val.jsonl")
    assert real_samples(["one two three four five six"], 1, 0, 12) == ["one two …"]
    records = [{"step": 2, "nll": 3.0}, {"step": 4, "nll": 2.0}, {"step": 6, "nll": 2.5}]
    assert up_to(records, 4) == records[:2] and up_to(records, None) == records
    note = weights_note(card, records, "FLM · flm-wiki")
    assert note.startswith("**FLM · flm-wiki**: weights from stage 2 of 2, step 4 · 3.9 min on NVIDIA H100")
    assert "Stage 1 trained the weights it started from" in note and "goes on to step 6" in note


def test_shared_clock():
    one = done_at([0], [0.0], 1, 1, 0.01, CLOCKS[0])
    many = done_at(np.arange(4), [0.0, 0.25, 0.5, 0.75], 4, 4, 0.4, CLOCKS[0])
    assert frame_value(0, 4, CLOCKS[0], 1.0) is None and shown_index(many, None) == -1
    assert frame_value(1, 4, CLOCKS[0], 1.0) == 0.0 and (shown_index(one, 0.0), shown_index(many, 0.0)) == (0, 0)
    assert shown_index(many, frame_value(3, 4, CLOCKS[0], 1.0)) == 2  # t = 2/3
    wall = done_at(np.arange(4), [0.0] * 4, 4, 4, 0.4, CLOCKS[2])
    np.testing.assert_allclose(wall, [0.1, 0.2, 0.3, 0.4])
    end = clock_end([0.01, 0.4], CLOCKS[2])
    fast = done_at([0], [0.0], 1, 1, 0.01, CLOCKS[2])
    assert end == 0.4 and shown_index(fast, frame_value(1, 40, CLOCKS[2], end)) == 0  # lands in the first frame
    np.testing.assert_allclose(done_at([0, 1], [0, 0.5], 2, 254, 1.0, CLOCKS[1]), [127, 254])  # 2 steps of 127 calls
    assert clock_phrase(None, CLOCKS[1], 32) == "before the first network call"
    assert clock_phrase(8, CLOCKS[1], 32) == "8 of 32 network calls" and "ms" in clock_phrase(0.1, CLOCKS[2], 0.4)


def test_one_step_gif_shows_noise_then_the_text(tiny_root):
    import io
    from PIL import Image
    import flm_core

    pipe = flm_core.load(tiny_root / "tiny_fmlm")
    gen = pipe.generate(1, 1, 0, record=True)
    frames = denoising_frames(to_numpy(gen.trajectory), 0, token_strings(pipe.tokenizer, pipe.vocab_size), False,
                              "FMLM · tiny", gen.steps, gen.nfe)
    assert [f["title"] for f in frames] == ["FMLM · tiny · before the first network call: noise",
                                            "FMLM · tiny · after step 1/1", "FMLM · tiny · final text (1 network call)"]
    assert all(p[3] for p in frames[0]["pieces"]) and not any(p[3] for p in frames[1]["pieces"])
    gif = Image.open(io.BytesIO(render.gif_frames(frames)))
    assert gif.n_frames == 3 and gif.info["duration"] == 1200  # the noise is held long enough to be seen


def test_gif_wraps_between_words_and_at_newlines():
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = render._font(20)
    pieces = [(" aaaa", 1.0, False, False)] * 9 + [(" v", 1.0, False, False), ("resis", 1.0, False, False),
                                                   ("\nnext", 1.0, False, False)]
    placed = render._running_text(draw, pieces, font, 400, 50, 30)
    v, resis, newline = placed[9], placed[10], placed[-1]
    assert v[1] == resis[1]  # "v" + "resis" stay on one line
    assert newline[2] == "next" and newline[0] == 16 and newline[1] > resis[1]  # a newline starts a line


def test_shares_count_only_the_positions_the_model_writes():
    argmax = np.array([[[1, 6, 9]], [[1, 8, 9]]])  # (S=2, B=1, L=3); position 0 held to its token 1
    final = np.array([[1, 8, 9]])
    np.testing.assert_allclose(not_final_share(argmax, final), [1 / 3, 0.0])
    np.testing.assert_allclose(not_final_share(argmax, final, free=np.array([False, True, True])), [0.5, 0.0])


def test_flow_step_view_shows_the_prediction_and_what_changed():
    arrays = {"argmax": np.array([[[1, 6, 7]], [[1, 8, 7]]]), "final_tokens": np.array([[1, 8, 9]]),
              "top_probs": np.array([[[[1.0, 0.0], [0.3, 0.2], [0.6, 0.1]]], [[[1.0, 0.0], [0.7, 0.1], [0.5, 0.2]]]]),
              "pending": np.zeros((2, 1, 3), bool)}
    view = step_view(arrays, 0, 1, discrete=False)
    assert view["ids"].tolist() == [1, 8, 7] and view["confidence"].tolist() == [1.0, 0.7, 0.5]
    assert view["changed"].tolist() == [False, True, False] and not view["pending"].any()


def test_next_play_frame():
    assert [next_play_frame(i, 5, 32) for i in range(5)] == [1, 2, 3, 4, 4]
    frames = frame_indices(1000, 10)
    assert next_play_frame(0, 1000, 10) == frames[1]
    assert next_play_frame(frames[1] + 1, 1000, 10) == frames[2]  # after a manual scrub, the next frame
    assert next_play_frame(999, 1000, 10) == 999


def test_page_settings_survive_a_visit_to_another_page(app, monkeypatch):
    """Streamlit drops the state of widgets a run does not draw; the app keeps its settings across pages,
    without Streamlit's "default value and Session State" warning (logged once per process)."""
    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    flm_lane = next(lane["id"] for lane in app.session_state["lanes"] if Path(lane["path"]).name == "tiny_flm")
    app.number_input(key="num_samples").set_value(5)
    app.number_input(key="seed").set_value(7)
    app.select_slider(key=f"lane_steps::{flm_lane}").set_value(64)
    app.run()
    app.switch_page("views/time_schedule.py").run()
    app.number_input(key="time_k").set_value(999)
    app.run()
    _ok(app)
    app.switch_page("views/generate.py").run()
    _ok(app)
    assert app.number_input(key="num_samples").value == 5 and app.number_input(key="seed").value == 7
    assert app.select_slider(key=f"lane_steps::{flm_lane}").value == 64
    app.switch_page("views/time_schedule.py").run()
    assert app.number_input(key="time_k").value == 999
    assert policies._shown_default_value_warning is False


def test_time_page(app):
    app.switch_page("views/time_schedule.py").run()
    _ok(app)
    fig = app.get("plotly_chart")[0]
    spec = json.loads(fig.proto.spec)
    names = {t.get("name") for t in spec["data"]}
    assert {"K = 3", "K = 64", "K = 2048", "K = 30522"} <= {n.split(" (")[0] for n in names if n}
    assert any(n and n.startswith("sampler grid (8 steps)") for n in names)


def test_benchmarks_page_with_and_without_file(app, tiny_root, tmp_path, monkeypatch):
    app.switch_page("views/benchmarks.py").run()
    _ok(app)
    assert app.get("plotly_chart") and app.dataframe
    assert any("timed with 8 samples in one batch" in c.value for c in app.caption)
    monkeypatch.setenv(catalogue.ENV_BENCHMARKS, str(tmp_path / "absent.json"))
    app.run()
    _ok(app)
    assert any("No benchmark yet" in i.value for i in app.info)
    no_ppl = tmp_path / "no_ppl.json"  # `bench` without an evaluator: timings, no Gen PPL
    no_ppl.write_text(json.dumps({"rows": [{"model": "m", "kind": "fmlm", "steps": 1, "nfe": 1, "num_samples": 8,
                                            "seconds_per_sample": 0.01, "entropy": 4.0}]}))
    monkeypatch.setenv(catalogue.ENV_BENCHMARKS, str(no_ppl))
    app.run()
    _ok(app)
    assert not app.get("plotly_chart") and app.dataframe  # no empty chart, the table still


def test_training_page(app):
    app.switch_page("views/training.py").run()
    _ok(app)
    assert set(app.multiselect(key="train_metrics").value) == {"nll", "consistency_kl"}
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert len(spec["data"]) == 7  # 4 checkpoints x (train, val), but the AR's val lies beyond its weights
    colors = {t["name"].split(" (")[0]: t["line"]["color"] for t in spec["data"]}
    assert {KIND_COLOR[kind] for kind in ("flm", "fmlm")} <= set(colors.values())
    assert len(set(colors.values())) == 4  # the kinds' colours of the other pages, one per checkpoint
    ar = next(t for t in spec["data"] if t["name"].startswith("AR") and t["name"].endswith("(train)"))
    assert max(ar["x"]) == 3  # the log of the run that made the weights, up to the step they were exported at
    notes = " ".join(m.value for m in app.markdown)
    assert "**AR · tiny_ar**: weights from stage 1 of 1, step 3 · 2.0 min on NVIDIA H100" in notes
    assert "goes on to step 5 after the weights were exported" in notes
    assert "**FLM · tiny_flm**: no card data" in notes
    app.toggle(key="train_beyond").set_value(True).run()
    assert len(json.loads(app.get("plotly_chart")[0].proto.spec)["data"]) == 8
    app.multiselect(key="train_metrics").set_value([]).run()
    _ok(app)
    assert not app.get("plotly_chart") and any("at least one metric" in i.value for i in app.info)
    app.multiselect(key="train_metrics").set_value(["consistency_kl"]).run()  # only the FMLM logs it
    mdlm = next(p for p in app.multiselect(key="train_ckpts").value if p.endswith("tiny_mdlm"))
    app.multiselect(key="train_ckpts").set_value([mdlm]).run()
    _ok(app)
    assert app.multiselect(key="train_metrics").value == ["nll"] and app.get("plotly_chart")  # default again


# --------------------------------------------------------------------------------------------
# Pure helpers and chart builders
# --------------------------------------------------------------------------------------------
def test_ternary_path_marks_bound_and_sums_to_one():
    ids = np.array([[5, 7, 9], [7, 5, 9], [3, 4, 9], [-1, -1, -1]])
    probs = np.array([[0.5, 0.3, 0.1], [0.6, 0.2, 0.1], [0.4, 0.3, 0.2], [0, 0, 0]], float)
    out = ternary_path(ids, probs, final_id=7)
    assert out["valid"].tolist() == [True, True, True, False]
    assert out["bound"].tolist() == [False, False, True, False]
    np.testing.assert_allclose(out["final"][:2], [0.3, 0.6])
    np.testing.assert_allclose(out["runner"][:2], [0.5, 0.2])
    out = ternary_path(ids, probs, final_id=4)
    assert out["bound"].tolist() == [True, True, False, False]
    np.testing.assert_allclose(out["final"][0], 0.1)  # drawn at the k-th probability
    total = out["final"] + out["runner"] + out["rest"]
    np.testing.assert_allclose(total[:3], 1.0)


def test_state_ternary_converges_to_final_vertex():
    ids = np.array([[1, 2, 3], [1, 2, 3]])
    state = np.array([[0.2, -0.4, 0.1], [0.99, 0.01, 0.0]])
    out = state_ternary(ids, state, final_id=1)
    assert out["valid"].all() and out["final"][1] > 0.97
    assert not state_ternary(ids, np.full((2, 3), np.nan), 1)["valid"].any()


def test_pca_and_sketch_map_shapes():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(10, 4, 8))
    pts[0, 0] = np.nan
    P = rng.normal(size=(50, 8))
    out = sketch_map(pts, np.array([1, 2, 3, 4]), P)
    assert out["points"].shape == (10, 4, 2) and out["vertices"].shape == (4, 2)
    assert np.isnan(out["points"][0, 0]).all() and np.isfinite(out["points"][1:]).all()


def test_umap_map_is_subsampled(monkeypatch):
    # umap-learn itself is optional and slow to JIT-compile; its call is stubbed here (PCA stands in).
    from app import maps

    monkeypatch.setattr(maps, "umap_2d", maps.pca_2d)
    rng = np.random.default_rng(0)
    out = sketch_map(rng.normal(size=(40, 10, 8)), np.arange(10), rng.normal(size=(20, 8)), method="umap",
                              max_umap_points=100)
    assert out["embedded"].sum() == 10 and np.isfinite(out["points"][out["embedded"]]).all()
    assert np.isnan(out["points"][~out["embedded"]]).all() and out["vertices"].shape == (10, 2)


def test_errors_shares_diff_and_speedups():
    argmax = np.array([[[1, 2]], [[1, 3]], [[4, 3]]])  # (S=3, B=1, L=2)
    final = np.array([[4, 3]])
    np.testing.assert_allclose(not_final_share(argmax, final), [1.0, 0.5, 0.0])
    assert argmax_changes(argmax[:, 0]).tolist() == [[False, False], [False, True], [True, False]]
    diff = token_diff(np.array([[1, 2, 3]]), np.array([[1, 0, 3]]))
    assert diff["agreement"] == pytest.approx(2 / 3)
    ups = live_speedups([{"name": "a", "kind": "fmlm", "seconds": 0.1, "nfe": 1},
                             {"name": "b", "kind": "flm", "seconds": 2.0, "nfe": 64}])
    assert ups == [{"name": "b", "kind": "flm", "time_ratio": pytest.approx(20.0), "nfe_ratio": 64.0}]
    assert times_phrase(20.0, "faster", "slower") == "20× faster"
    assert times_phrase(3.21, "faster", "slower") == "3.2× faster"
    assert times_phrase(1 / 1024, "fewer calls", "more calls") == "1,024× more calls"  # FMLM ran more steps
    assert times_phrase(0.25, "faster", "slower") == "4.0× slower"
    assert steps_phrase(1) == "1 step" and steps_phrase(32) == "32 steps"


def test_run_time_estimate_scales_the_latest_run_of_the_same_checkpoint():
    from types import SimpleNamespace

    runs = [{"path": "a", "n": 2, "gen": SimpleNamespace(seconds=4.0, nfe=32)},
            {"path": "b", "n": 1, "gen": SimpleNamespace(seconds=1.0, nfe=1)},
            {"path": "a", "n": 4, "gen": SimpleNamespace(seconds=2.0, nfe=8)}]  # latest of "a": 1/16 s per call-sample
    assert estimate_seconds(runs, "a", nfe=1024, samples=2) == pytest.approx(128.0)
    assert estimate_seconds(runs, "b", nfe=3, samples=1) == pytest.approx(3.0)
    assert estimate_seconds(runs, "c", nfe=1, samples=1) is None


def test_discrete_step_view_shows_the_state_after_each_step():
    """MDLM / AR: the record's pending flags are those after each step; a written position shows its token."""
    pending = np.array([[[1, 0, 1]], [[0, 0, 1]], [[0, 0, 0]]], dtype=bool)  # (S=3, B=1, L=3)
    arrays = {"argmax": np.tile([4, 5, 6], (3, 1, 1)), "top_probs": np.full((3, 1, 3, 2), 0.5),
              "final_tokens": np.array([[7, 8, 9]]), "pending": pending}
    views = [step_view(arrays, 0, i, discrete=True) for i in range(3)]
    assert [v["ids"].tolist() for v in views] == [[-1, 8, -1], [7, 8, -1], [7, 8, 9]]
    assert [v["changed"].tolist() for v in views] == [[False, True, False], [True, False, False],
                                                      [False, False, True]]
    assert views[1]["confidence"].tolist() == [1.0, 1.0, 0.0]
    np.testing.assert_allclose(pending_share(pending), [2 / 3, 1 / 3, 0.0])


def test_read_benchmarks_takes_the_bench_output_only(tmp_path):
    assert read_benchmarks(tmp_path / "none.json") == ([], "no benchmark yet")
    rows, msg = read_benchmarks(Path(__file__).resolve().parents[1] / "checkpoints" / "benchmarks.json")
    assert msg is None and {"fmlm", "flm", "data"} <= {r["kind"] for r in rows}  # the shipped bench output
    good = {"rows": [{"model": "m", "kind": "flm", "steps": 8, "gen_ppl": 12.5, "mauve": None,
                      "seconds_per_sample": float("nan"), "examples": ["a b"]}], "speedups": []}
    (tmp_path / "good.json").write_text(json.dumps(good))  # NaN as the JSON literal
    rows, msg = read_benchmarks(tmp_path / "good.json")
    assert msg is None and rows[0]["gen_ppl"] == 12.5 and rows[0]["steps"] == 8.0 and rows[0]["examples"] == ["a b"]
    assert rows[0]["seconds_per_sample"] is None and rows[0]["mauve"] is None and rows[0]["nfe"] is None
    row = good["rows"][0]
    for content, problem in (("{oops", "unreadable (Expecting property name"),
                             (json.dumps([row]), 'expected an object with a "rows" list'),
                             (json.dumps({"results": [row]}), 'expected an object with a "rows" list'),
                             (json.dumps({"rows": [3]}), "row 0 is not an object"),
                             (json.dumps({"rows": [row, {"model": "m"}]}), "row 1 has no model and kind"),
                             (json.dumps({"rows": [dict(row, gen_ppl="12.5")]}), "row 0 has a gen_ppl that is not")):
        (tmp_path / "b.json").write_text(content)
        rows, msg = read_benchmarks(tmp_path / "b.json")
        assert rows == [] and msg.startswith(f"{tmp_path / 'b.json'}: ") and problem in msg and "\n" not in msg


def test_validate_user_path(tmp_path):
    allowed = [tmp_path / "ok"]
    (tmp_path / "ok" / "ckpt").mkdir(parents=True)
    (tmp_path / "ok" / "ckpt" / "config.json").write_text("{}")
    assert catalogue.validate_user_path(str(tmp_path / "ok" / "ckpt"), allowed) == (tmp_path / "ok" / "ckpt").resolve()
    with pytest.raises(ValueError, match="no such directory"):
        catalogue.validate_user_path(str(tmp_path / "ok" / "x"), allowed)
    with pytest.raises(ValueError, match="no config.json"):
        catalogue.validate_user_path(str(tmp_path / "ok"), allowed)
    with pytest.raises(ValueError, match="enter the path"):
        catalogue.validate_user_path("  ", allowed)
    # Outside the allowed folders: refused before anything is read, also through ../ and symlinks.
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "config.json").write_text("{}")
    (tmp_path / "ok" / "link").symlink_to(tmp_path / "secret")
    for text in (str(tmp_path / "secret"), str(tmp_path / "ok" / ".." / "secret"), str(tmp_path / "ok" / "link"),
                 "/etc"):
        with pytest.raises(ValueError, match="outside the allowed folders.*FLM_EXPLORER_ALLOW_PATHS"):
            catalogue.validate_user_path(text, allowed)
    (tmp_path / "secret" / "model.safetensors").write_bytes(b"x")  # a file inside linking outside
    (tmp_path / "ok" / "ckpt" / "model.safetensors").symlink_to(tmp_path / "secret" / "model.safetensors")
    with pytest.raises(ValueError, match="model.safetensors links outside the allowed folders"):
        catalogue.validate_user_path(str(tmp_path / "ok" / "ckpt"), allowed)


def test_allowed_roots_are_the_scanned_roots_runs_and_the_environment(tmp_path):
    env = {catalogue.ENV_CHECKPOINTS: str(tmp_path / "a"), catalogue.ENV_ALLOW: os.pathsep.join(["/x", "/y"])}
    assert catalogue.allowed_roots(env, repo_root=tmp_path) == [tmp_path / "a", tmp_path / "runs", Path("/x"), Path("/y")]
    assert catalogue.allowed_roots({}, repo_root=tmp_path) == [tmp_path / "checkpoints", tmp_path / "runs"]


def test_timing_figure_plots_time_per_sample_with_nfe():
    lanes = [{"name": "a", "kind": "fmlm", "seconds": 0.1, "nfe": 1, "n": 2},
             {"name": "b", "kind": "flm", "seconds": 3.2, "nfe": 64, "n": 2}]
    fig = charts.timing_figure(lanes)
    bar = fig.data[0]
    assert list(bar.y) == ["FMLM · a", "FLM · b"] and list(bar.x) == pytest.approx([0.05, 1.6])
    assert list(bar.text) == ["50 ms · 1 NFE", "1600 ms · 64 NFE"]
    assert list(bar.marker.color) == [KIND_COLOR["fmlm"], KIND_COLOR["flm"]]
    assert fig.layout.xaxis.title.text == "wall time per sample (log scale)" and fig.layout.xaxis.type == "log"


def test_argmax_grid_draws_confidence_tokens_changes_and_pending():
    argmax = np.array([[1, 2, -1], [1, 3, 0]])  # (S=2, L=3); -1: no prediction yet
    conf = np.array([[0.5, 0.4, 0.0], [0.9, 0.6, 0.3]])
    pending = np.array([[False, True, True], [False, False, False]])
    fig = charts.argmax_grid(argmax, conf, [1, 2], ["t0", "t1", "t2", "t3"], argmax_changes(argmax), pending,
                             current=1)
    heat, grey, marks = fig.data
    np.testing.assert_allclose(np.asarray(heat.z, float), [[0.5, 0.9], [np.nan, 0.6], [np.nan, 0.3]])
    assert np.asarray(heat.text).tolist() == [["t1", "t1"], ["t2", "t3"], ["·", "t0"]]  # (L, S)
    np.testing.assert_allclose(np.asarray(grey.z, float), [[np.nan, np.nan], [1.0, np.nan], [1.0, np.nan]])
    assert (list(marks.x), list(marks.y)) == ([1], [1])  # position 1 changed 2 -> 3 (0 after -1 is no change)
    assert fig.layout.shapes[0].x0 == 1  # the current step's column
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("recorded step", "position")


def test_simplex_figure_draws_the_path_and_a_one_step_jump():
    ids = np.array([[4, 1, 2], [4, 1, 2], [1, 4, 2]])
    probs = np.array([[0.5, 0.3, 0.1], [0.7, 0.2, 0.05], [0.6, 0.3, 0.1]])
    fig = charts.simplex_figure(ternary_path(ids, probs, 4), [0.0, 0.5, 1.0], current=1)
    path, current = fig.data
    assert list(path.a) == pytest.approx([0.5, 0.7, 0.3]) and list(path.b) == pytest.approx([0.3, 0.2, 0.6])
    assert list(path.c) == pytest.approx([0.2, 0.1, 0.1]) and list(path.marker.color) == [0.0, 0.5, 1.0]
    assert current.name == "current step" and list(current.a) == pytest.approx([0.7])
    assert [fig.layout.ternary[a].title.text for a in ("aaxis", "baxis", "caxis")] == ["final", "runner-up", "rest"]
    jump = charts.simplex_figure(ternary_path(np.array([[4, 1, 2]]), np.array([[0.7, 0.2, 0.1]]), 4), [0.0],
                                 jump=True)
    assert jump.data[0].name == "one network call"
    assert list(jump.data[0].a) == [0, 0.7] and list(jump.data[0].c) == pytest.approx([1, 0.1])  # from 'rest'


def test_decoding_error_figure_plots_shares_against_progress_and_noise():
    progress, gamma, err = [0.0, 1 / 3, 2 / 3, 1.0], [0.0, 0.3, 0.6, 0.9], [1.0, 0.6, 0.3, 0.0]
    fig = charts.decoding_error_figure(progress, gamma, err, theory=[0.9, 0.6, 0.3, 0.0],
                                       state_error=[0.95, 0.7, 0.4, 0.0], current=2)
    assert [tr.name for tr in fig.data if tr.showlegend] == [
        "prediction argmax ≠ final", "theory 1-q(g): state argmax", "state argmax ≠ final (measured)"]
    vs_t, vs_g = (tr for tr in fig.data if tr.name == "prediction argmax ≠ final")
    assert list(vs_t.x) == progress and list(vs_g.x) == gamma and list(vs_t.y) == err
    assert [list(tr.x) for tr in fig.data if tr.name == "current"] == [[2 / 3], [0.6]]
    assert [fig.layout[a].title.text for a in ("xaxis", "xaxis2", "yaxis")] == ["t", "g", "share of positions"]
    discrete = charts.decoding_error_figure(progress, np.full(4, np.nan), err, pending=[0.9, 0.5, 0.2, 0.0],
                                            label="not final yet", pending_label="argmax ≠ final")
    assert [tr.name for tr in discrete.data] == ["not final yet", "argmax ≠ final"]  # no g panel
    assert discrete.layout.annotations[1].text == "vs g (no g: discrete model)"


def test_sketch_map_figure_draws_predictions_vertices_and_a_track():
    rng = np.random.default_rng(1)
    points, vertices, progress = rng.normal(size=(6, 5, 2)), rng.normal(size=(5, 2)), np.linspace(0, 1, 6)
    fig = charts.sketch_map_figure(points, vertices, progress, current=2, highlight=1)
    cloud, verts, current, track = fig.data
    assert len(cloud.x) == 30 and list(cloud.marker.color) == pytest.approx(np.repeat(progress, 5))
    np.testing.assert_allclose(verts.x, vertices[:, 0], rtol=1e-6)
    np.testing.assert_allclose(current.y, points[2, :, 1], rtol=1e-6)
    assert track.name == "position 1"
    np.testing.assert_allclose(track.x, np.r_[points[:, 1, 0], vertices[1, 0]], rtol=1e-6)
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("PCA 1", "PCA 2")
    big = charts.sketch_map_figure(rng.normal(size=(300, 40, 2)), rng.normal(size=(40, 2)), np.linspace(0, 1, 300),
                                   current=299, max_points=4000)
    assert len(big.data[0].x) <= 4000 and len(big.data[2].x) == 40  # a thinned cloud, the current step whole


def test_schedule_figure_draws_each_vocabulary_and_the_grid():
    curves = {k: {"gamma": np.linspace(0, 1, 5), "alpha": np.linspace(0, 1, 5) ** (k / 32),
                  "error": 1 - np.linspace(0, 1, 5)} for k in (3, 64)}
    grid = {"t": np.linspace(0, 1, 4), "gamma": np.array([0, 0.5, 0.8, 1]), "error": np.linspace(1, 0, 4)}
    fig = charts.schedule_figure(curves, model_k=64, grid=grid)
    assert [tr.name for tr in fig.data if tr.showlegend is not False] == [
        "K = 3", "K = 64 (this model)", "sampler grid (3 steps)"]
    this = fig.data[2]
    assert (this.line.color, this.line.width) == ("#111", 3.5)
    np.testing.assert_allclose(this.y, curves[64]["alpha"])
    assert list(fig.data[4].x) == [0, 0.5, 0.8, 1] and list(fig.data[4].y) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [fig.layout[a].title.text for a in ("yaxis", "yaxis2")] == ["t", "1 - q"]


def test_benchmark_figure_draws_benchmark_lines_and_session_runs():
    rows = [{"model": "m", "kind": "flm", "steps": 8.0, "nfe": 8.0, "seconds_per_sample": 0.2, "gen_ppl": 50.0},
            {"model": "m", "kind": "flm", "steps": 2.0, "nfe": 2.0, "seconds_per_sample": 0.05, "gen_ppl": 90.0}]
    session = [{"model": "m", "kind": "fmlm", "steps": 1, "nfe": 1, "seconds_per_sample": 0.01}]
    fig = charts.benchmark_figure(rows, session)
    line, ticks = fig.data
    assert (line.name, list(line.x), list(line.y), list(line.text)) == ("FLM", [0.05, 0.2], [90.0, 50.0], ["2", "8"])
    assert line.line.color == KIND_COLOR["flm"]
    assert (ticks.name, list(ticks.x), list(ticks.y)) == ("your FMLM runs", [0.01], ["FMLM"])
    assert fig.layout.yaxis.title.text == "Gen PPL (log, lower is better)" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis2.title.text == "time per sample (log scale)" and "10 ms" in fig.layout.xaxis2.ticktext
    timing_only = charts.benchmark_figure([], session)
    assert [tr.name for tr in timing_only.data] == ["your FMLM runs"]
    assert "no Gen PPL" in timing_only.layout.title.text
    with pytest.raises(ValueError, match="nothing to draw"):
        charts.benchmark_figure([{"model": "m", "kind": "flm", "seconds_per_sample": 0.2}], [])
    # A fresh session (no runs yet): one panel, whose time axis carries the ticks and the title.
    fresh = charts.benchmark_figure(rows, [])
    assert fresh.layout.xaxis.title.text == "time per sample (log scale)" and fresh.layout.xaxis.tickvals
    assert "xaxis2" not in fresh.layout.to_plotly_json()


def test_benchmark_chart_shows_real_text_flags_degenerate_settings_and_the_self_scored_ar():
    """The app's chart and the CLI's (flm_core.bench.figure) draw the same pieces: real text's Gen PPL as a line,
    a degenerate setting (entropy below 90 % of real text's) flagged instead of ranked, the AR that scores itself
    marked, the entropy in the hover."""
    from flm_core import bench

    def row(kind, steps, ppl, entropy, seconds, **extra):
        return dict(model=f"{kind}-wiki", kind=kind, steps=steps, nfe=steps, gen_ppl=ppl, entropy=entropy,
                    seconds_per_sample=seconds, **extra)

    rows = [row("flm", 1, 981.0, 1.5, 0.01), row("flm", 8, 4914.0, 4.5, 0.08), row("flm", 32, 2328.0, 4.5, 0.3),
            row("fmlm", 1, 6652.0, 4.3, 0.015), row("ar", 127, 8.9, 4.4, 0.03, self_evaluated=True),
            {"model": "data (validation)", "kind": "data", "steps": None, "gen_ppl": 37.97, "entropy": 4.36}]
    fig = charts.benchmark_figure(rows)
    by_name = {t.name: t for t in fig.data}
    flm = by_name["FLM"]
    assert list(flm.x) == [0.08, 0.3] and list(flm.text) == ["8", "32"]  # FLM@1 is not on the line ...
    flagged = by_name["degenerate: entropy < 90% of real text's"]
    assert list(flagged.text) == ["FLM@1 · repeats itself"] and flagged.marker.symbol == "x"  # ... but flagged
    assert "entropy 1.50" in flagged.hovertext[0] and "entropy 4.50" in flm.hovertext[0]
    ar = by_name["AR"]
    assert ar.marker.symbol == "circle-open" and ar.text[0] == "127 · scored by itself"
    assert "not comparable" in ar.hovertext[0]
    real = by_name["real text (validation): Gen PPL 38"]
    assert list(real.y) == [37.97, 37.97] and list(real.x) == [0.01, 0.3]
    cli = bench.figure({"rows": rows, "speedups": bench.matched_speedups(rows)})
    assert [t.name for t in cli.data][:len(fig.data)] == [t.name for t in fig.data]


def test_training_figure_draws_train_and_val_curves_in_the_kinds_colours():
    logs = {"a": [{"step": 2, "split": "train", "nll": 2.5}, {"step": 1, "split": "train", "nll": 3.0},
                  {"step": 2, "split": "val", "nll": 2.0}]}
    train, val = charts.training_figure(logs, ["nll"]).data
    assert (train.name, list(train.x), list(train.y)) == ("a (train)", [1, 2], [3.0, 2.5])
    assert (val.name, val.line.dash, list(val.y)) == ("a (val)", "dash", [2.0])
    many = {f"c{i}": logs["a"] for i in range(5)}
    kinds = {"c0": "flm", "c1": "fmlm", "c2": "flm", "c3": "flm", "c4": "flm"}
    colours = [tr.line.color for tr in charts.training_figure(many, ["nll"], kinds=kinds).data
               if tr.name.endswith("(train)")]
    spare = [c for c in charts.PALETTE if c not in KIND_COLOR.values()]
    assert colours == [KIND_COLOR["flm"], KIND_COLOR["fmlm"], *spare[:3]]  # a kind's colour once, then spares


def test_running_text_writes_characters_split_over_tokens_whole():
    tokens = [" vol", "ur", "\\xc3", "\\xa8", "re", "\\xe2\\x80", "\\x94", "\\xff"]
    assert joined_pieces(tokens) == [" vol", "ur", "è", "", "re", "—\ufffd", "", ""]  # 0xff: no character
    plain = re.sub(r"<[^>]+>", "", render.step_text_html([0, 1, 2, 3, 4], [1.0] * 5, [False] * 5, [False] * 5, tokens))
    assert plain == " volurère"
    half = re.sub(r"<[^>]+>", "", render.step_text_html([2, 3], [1.0, 1.0], [False, False], [False, True], tokens))
    assert half == "\ufffd░"  # its second byte is still masked: what is there is no character yet
    assert render._printable("a\xa0b\u200bc\n") == "a b·c⏎"  # a no-break space is a space on a slide


def test_render_html_and_gif():
    tokens = ["<a>", " b", "c\n"]
    html = render.superposition_html(np.array([[0, 1], [2, 0]]), np.array([[0.9, 0.1], [0.5, 0.4]]), tokens, [0, 0])
    assert "&lt;a&gt;" in html and html.count("flm-cell") == 2
    assert "#ffd6d6" in render.diff_html([0, 1], [0, 2], tokens)
    gif = render.gif_frames([{"title": "step 1", "pieces": [(" hello", 0.5, False, False), ("", 0, False, True)]},
                             {"title": "final", "pieces": [(" hello", 1.0, True, False)]}])
    assert gif[:6] == b"GIF89a"
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(gif)).n_frames == 2


def test_gif_text_is_set_as_large_as_the_longest_frame_allows():
    """Slides: a short text gets the largest type, a long one fills the frame instead of its top third."""
    import io
    from PIL import Image

    def inked_rows(pieces) -> np.ndarray:
        gif = Image.open(io.BytesIO(render.gif_frames([{"title": "t", "pieces": pieces}])))
        body = np.asarray(gif.convert("L"))[60:]  # below the title bar
        return np.nonzero((body < 128).any(axis=1))[0] + 60

    short = inked_rows([(" hello", 1.0, False, False)])
    assert short.max() - short.min() >= 25  # the largest size, 40 px
    long = inked_rows([(" word", 1.0, False, False)] * 120)
    assert 540 * 0.75 < long.max() < 540  # fills the frame, and fits it


def test_denoising_gif_from_a_real_run(tiny_root):
    import io
    from PIL import Image
    import flm_core

    pipe = flm_core.load(tiny_root / "tiny_mdlm")
    gen = pipe.generate(1, 8, 0, record=True)
    arrays = to_numpy(gen.trajectory)
    tokens = token_strings(pipe.tokenizer, pipe.vocab_size)
    frames = denoising_frames(arrays, 0, tokens, True, "MDLM · tiny", gen.steps, gen.nfe, max_frames=5)
    assert len(frames) == 7 and frames[-1]["title"].endswith("(8 network calls)")
    assert frames[0]["title"].endswith("before the first network call: masked") and all(
        p[3] for p in frames[0]["pieces"])  # the start: every position masked
    first = [p[3] for p in frames[1]["pieces"]]  # the state after step 1 of 8: mostly still masked
    assert first == gen.trajectory.pending[0, 0].tolist() and sum(first) > len(first) // 2
    assert not any(p[3] for p in frames[-2]["pieces"])  # the last step leaves nothing masked
    gif = render.gif_frames(frames)
    assert Image.open(io.BytesIO(gif)).n_frames == 7


def test_export_run_is_strict_json(tiny_root):
    import flm_core

    gen = flm_core.load(tiny_root / "tiny_mdlm").generate(1, 3, 0, record=True)
    text = export_run({"checkpoint": "x"}, gen)
    data = json.loads(text)
    assert data["nfe"] == 3 and len(data["texts"]) == 1 and data["trajectory"]["gamma"] == [None] * 3


def test_flow_sampler_knobs_reach_the_runs_they_apply_to(app, tiny_root):
    """Re-noising goes to the flows, the guide to lanes of its kind; both are recorded and named in the label."""
    app.button(key="add_lane").click().run()  # + MDLM
    app.slider(key="knob_renoise").set_value(0.5).run()
    app.selectbox(key="knob_guide").set_value(str(tiny_root / "tiny_flm")).run()
    app.number_input(key="knob_guidance").set_value(2.0).run()
    app.button(key="generate").click().run()
    _ok(app)
    runs = {r["kind"]: r for r in app.session_state["runs"].values()}
    assert {k: (r["gen"].renoise, r["gen"].guidance, r["gen"].nfe) for k, r in runs.items()} == {
        "fmlm": (0.5, 1.0, 1), "flm": (0.5, 2.0, 64), "mdlm": (0.0, 1.0, 32)}  # a guided step calls both networks
    assert runs["flm"]["gen"].guide == str(tiny_root / "tiny_flm")
    assert common.run_label(runs["flm"]).endswith("re-noise 0.5 · guided by tiny_flm (w 2)")
    assert not runs["mdlm"]["knobs"] and any(c.value.startswith("Sampler: re-noise 0.5 · guided") for c in app.caption)
    app.switch_page("views/trajectory.py").run()  # the same setting on the Trajectory page's form
    assert app.slider(key="knob_renoise").value == 0.5 and app.number_input(key="knob_guidance").value == 2.0
    app.button(key="traj_new_run").click().run()
    _ok(app)
    newest = list(app.session_state["runs"].values())[-1]
    assert newest["kind"] == "flm" and (newest["gen"].guidance, newest["gen"].renoise) == (2.0, 0.5)


def test_knobs_apply_by_kind():
    from app.knobs import Knobs, applied, describe, guide_options

    infos = {kind: catalogue.CheckpointInfo(kind, f"/{kind}", kind, 300, 24, 0.0) for kind in ("flm", "fmlm", "mdlm")}
    knobs = Knobs(0.25, infos["fmlm"], 1.5)
    assert applied(knobs, infos["fmlm"]) == knobs
    assert applied(knobs, infos["flm"]) == Knobs(0.25)  # another kind: unguided
    assert applied(knobs, infos["mdlm"]) == Knobs()  # no Gaussian noise to draw afresh
    assert describe(knobs) == "re-noise 0.25 · guided by fmlm (w 1.5)" and describe(Knobs(0.0, infos["flm"], 1.0)) == ""
    assert guide_options(list(infos.values())) == ["", "/flm", "/fmlm"]

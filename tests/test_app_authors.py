"""The sidebar's "Authors' checkpoints" under AppTest, against the local Hub (tests/hub_server.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from app import catalogue
from hub_server import hub, hub_repos  # noqa: F401 - fixtures
from test_app import APP, make_tiny_checkpoints

REPO = "david3684/FMLM-B-LM1B"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("authors_app")
    make_tiny_checkpoints(root)
    return root


@pytest.fixture
def app(tiny_root, hub, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, str(tiny_root))
    monkeypatch.delenv(catalogue.ENV_BENCHMARKS, raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _lines(at) -> list[str]:
    return [m.value for m in at.sidebar.markdown if "·" in m.value and "(authors')" not in m.value
            and ("LM1B" in m.value or "OWT" in m.value)]


def test_download_button_fetches_and_the_model_joins_every_list(app, hub, tiny_root):
    lines = _lines(app)
    assert len(lines) == 4 and not any("in the cache" in line for line in lines)
    assert "**FMLM · FMLM-B-LM1B** · LM1B, L=128 · 139M parameters, 558 MB" in lines
    assert [b.key for b in app.sidebar.button if b.key.startswith("download::")] == [
        "download::david3684/FLM-B-LM1B", "download::david3684/FMLM-B-LM1B", "download::david3684/FLM-B-OWT",
        "download::david3684/FMLM-B-OWT"]
    app.sidebar.button(key=f"download::{REPO}").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert hub.served("model.safetensors") and any("FMLM-B-LM1B" in line and "in the cache" in line
                                                   for line in _lines(app))
    assert f"download::{REPO}" not in [b.key for b in app.sidebar.button]
    listed = catalogue.scan_checkpoints([tiny_root], (), catalogue.authors_checkpoints())
    assert [c.name for c in listed][-1] == "FMLM-B-LM1B (authors')"  # after ours: default lanes stay the quick ones
    label = "FMLM · FMLM-B-LM1B (authors')"
    assert any(label in m.value for m in app.sidebar.markdown)  # the Checkpoints list
    assert label in app.selectbox(key="lane_ckpt::0").options  # the Generate page's lanes
    app.switch_page("views/trajectory.py").run()
    assert not app.exception
    assert any(label in sb.options for sb in app.selectbox)  # the Trajectory page's picker


def test_a_refused_download_is_one_line_with_the_command(app, hub):
    hub.refuse = 503
    app.sidebar.button(key=f"download::{REPO}").click().run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "\n" not in errors[0] and "refused the request" in errors[0]
    assert f"run `python -m flm_core download {REPO}`" in errors[0]


def test_offline_says_so_in_one_line_without_buttons(tiny_root, hub, monkeypatch):
    from huggingface_hub import constants
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, str(tiny_root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    notes = [c.value for c in at.sidebar.caption if c.value.startswith("Offline")]
    assert len(notes) == 1 and "`python -m flm_core download all`" in notes[0] and str(hub.cache) in notes[0]
    assert not [b for b in at.sidebar.button if b.key.startswith("download::")]


def test_a_slow_first_run_is_announced_from_a_timed_call(app):
    """Before any run, a lane whose calls x samples exceed SLOW_SECONDS is announced, timed on this machine."""
    from app import common

    lanes = app.session_state["lanes"]
    flm = next(lane for lane in lanes if Path(lane["path"]).name == "tiny_flm")
    app.select_slider(key=f"lane_steps::{flm['id']}").set_value(1024).run()
    app.number_input(key="num_samples").set_value(16).run()
    per_call = common.call_seconds(flm["path"], catalogue.describe_checkpoint(flm["path"]).mtime)
    notes = [c.value for c in app.caption if c.value.startswith("Estimated from this machine's timed network calls")]
    assert len(notes) == (per_call * 1024 * 16 > 10)  # a tiny model's call: a few ms, so about 30-100 s here
    if notes:
        assert "FLM@1024 · tiny_flm about " in notes[0] and notes[0].endswith(" s.")

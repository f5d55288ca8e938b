"""Notebook 05 on its download path: with download = True it fetches the authors' LM1B pair and the evaluator
from the local Hub (tests/hub_server.py; the kernel inherits HF_ENDPOINT and HF_HUB_CACHE) and samples them."""
from __future__ import annotations

from hub_server import hub, hub_repos  # noqa: F401 - fixtures
from test_notebooks import execute, shown_text

NOTEBOOK = "05_released_checkpoints.ipynb"


def test_notebook_05_downloads_loads_and_samples(hub):
    nb = execute(NOTEBOOK, dict(download=True, flm_steps=[2], fmlm_steps=[1], num_samples=1, evaluator="gpt2-large"))
    text = shown_text(nb)
    for repo in ("david3684/FLM-B-LM1B", "david3684/FMLM-B-LM1B"):
        assert f"downloaded {repo} (" in text and (hub.cache / f"models--{repo.replace('/', '--')}").is_dir()
    assert "FLM: kind flm" in text and "FMLM: kind fmlm" in text and "vocabulary 30522" in text
    assert "--- FMLM, 1 step(s)" in text and "--- FLM, 2 step(s)" in text
    assert "not present" not in text and "skipped" not in text
    assert hub.served("model.safetensors")  # the evaluator's weights came from the Hub too

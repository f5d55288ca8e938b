"""The Authors' checkpoints Download button in a real browser (Debian chromium through Playwright), the app
started with HF_ENDPOINT pointing at the local Hub (tests/hub_server.py): the progress bar shows while the
bytes arrive, then the checkpoint is listed as in the cache and among the checkpoints, labelled the authors'."""
from __future__ import annotations

import pytest

from hub_server import hub, hub_repos  # noqa: F401 - fixtures
from test_app import make_tiny_checkpoints
from test_app_browser import CHROMIUM, _serve, _shot, pytestmark, settle  # noqa: F401


@pytest.fixture
def app_url(hub, tmp_path):
    make_tiny_checkpoints(tmp_path / "ckpts", seq_len=32)
    yield from _serve(str(tmp_path / "ckpts"), tmp_path, OMP_NUM_THREADS="1")  # HF_ENDPOINT, HF_HUB_CACHE: the hub fixture


def test_download_button_in_the_browser(app_url, hub, tmp_path):
    from playwright.sync_api import sync_playwright

    hub.throttle = 0.05  # 8 MB in 256 KiB pieces: about 1.6 s of progress
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator(".st-key-generate button:visible").wait_for(timeout=60_000)
        settle(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Authors' checkpoints").click()
        row = sidebar.locator('[data-testid="stMarkdownContainer"]', has_text="FMLM · FMLM-B-LM1B").first
        row.wait_for(timeout=30_000)
        assert "558 MB" in row.inner_text() and sidebar.get_by_role("button", name="Download").count() == 4
        sidebar.get_by_role("button", name="Download").nth(1).click()  # FLM-B-LM1B, FMLM-B-LM1B, ...
        sidebar.locator('[data-testid="stProgress"]').wait_for(timeout=30_000)
        assert "FMLM-B-LM1B:" in sidebar.locator('[data-testid="stProgress"]').inner_text()
        _shot(page, tmp_path, "09_authors_download_progress")
        sidebar.get_by_text("in the cache").wait_for(timeout=120_000)
        settle(page)
        assert sidebar.get_by_role("button", name="Download").count() == 3
        sidebar.get_by_text("Checkpoints", exact=True).click()
        sidebar.get_by_text("FMLM · FMLM-B-LM1B (authors')").wait_for(timeout=30_000)
        _shot(page, tmp_path, "10_authors_downloaded")
        assert page.get_by_text("Traceback").count() == 0 and not errors, errors
        browser.close()
    assert hub.served("model.safetensors") == [None]

"""The app in a real browser: `streamlit run app/main.py` driven by Debian chromium through Playwright.

Generates with FLM and FMLM, measures the time from the click to the one-step FMLM text on screen,
scrubs the trajectory, runs the toy world's "Why one step works" page and saves screenshots (copied to
$FLM_SCREENSHOTS when set, for review).
Skips cleanly when /usr/bin/chromium or the playwright package is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
REVIEW_DIR = Path(os.environ.get("FLM_SCREENSHOTS", ""))  # set it to keep the screenshots for review
CLICK_TO_TEXT_LIMIT_S = 3.0  # the target is 1 s on a quiet CPU; CI machines get slack

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright not installed"),
]


def _tiny_checkpoints(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("_flm_test_app", Path(__file__).with_name("test_app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_tiny_checkpoints(root, seq_len=64)


def _load_screenshots_script():
    """scripts/take_screenshots.py, whose server and page helpers this test shares."""
    spec = importlib.util.spec_from_file_location("_take_screenshots", ROOT / "scripts" / "take_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_screenshots = _load_screenshots_script()
settle = _screenshots.settle


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser_ckpts")
    checkpoints = os.environ.get("FLM_EXPLORER_BROWSER_CHECKPOINTS")  # optional: measure on real models
    if not checkpoints:
        _tiny_checkpoints(root)
        checkpoints = str(root)
    yield from _serve(checkpoints, root)


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    """The app over tiny toy:story checkpoints (tests/test_app_toy.py's)."""
    root = tmp_path_factory.mktemp("browser_toy")
    spec = importlib.util.spec_from_file_location("_flm_test_app_toy", Path(__file__).with_name("test_app_toy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_toy_checkpoints(root)
    yield from _serve(str(root), root)


def _serve(checkpoints: str, root: Path, **environment: str):
    """`streamlit run app/main.py` over `checkpoints` (its log in root; more environment variables as keywords):
    yields its URL, stops it afterwards."""
    env = dict(os.environ, FLM_EXPLORER_CHECKPOINTS=checkpoints, PYTHONUNBUFFERED="1", **environment)
    env.pop("FLM_EXPLORER_BENCHMARKS", None)
    with open(root / "streamlit.log", "w") as log, _screenshots.streamlit_app(env, log, subprocess.STDOUT) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield chromium
        chromium.close()


def _shot(page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if REVIEW_DIR != Path(""):
        REVIEW_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, REVIEW_DIR / path.name)


def test_generate_and_scrub_in_browser(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server, wait_until="domcontentloaded")
    generate = page.locator(".st-key-generate button:visible")  # the button (a hidden twin measures its shortcut)
    generate.wait_for(timeout=60_000)
    settle(page)

    timings = []
    fresh = """([lane, old]) => { const e = document.querySelector(`.flm-text[data-lane="${lane}"]`);
                                 return e !== null && e.dataset.run !== old && e.offsetParent !== null; }"""
    current = "lane => document.querySelector(`.flm-text[data-lane=\"${lane}\"]`)?.dataset.run ?? ''"
    for attempt in range(2):
        old = {lane: page.evaluate(current, lane) for lane in ("fmlm", "flm")}
        start = time.perf_counter()
        generate.click()
        page.wait_for_function(fresh, arg=["fmlm", old["fmlm"]], timeout=60_000, polling=10)
        timings.append(time.perf_counter() - start)
        page.wait_for_function(fresh, arg=["flm", old["flm"]], timeout=120_000, polling=100)
        page.get_by_text("token agreement").first.wait_for(timeout=60_000)  # a rerun may briefly show two
        settle(page)
    _shot(page, tmp_path, "02_generate_results")
    (tmp_path / "timings.json").write_text(json.dumps({"click_to_fmlm_text_s": timings}))
    print(f"click -> FMLM text visible: {', '.join(f'{t:.3f} s' for t in timings)}")
    assert min(timings) < CLICK_TO_TEXT_LIMIT_S, timings
    assert page.locator(".flm-diff").count() == 1
    assert page.get_by_text("Traceback").count() == 0

    page.get_by_role("link", name="Trajectory").click()
    page.get_by_role("heading", name="Trajectory").wait_for(timeout=30_000)
    settle(page)
    _shot(page, tmp_path, "03_trajectory_side_by_side")  # a new set from Generate opens side by side
    assert page.locator(".flm-step-text").count() == 2
    page.locator(".st-key-traj_mode button").nth(1).click()  # "One run"
    settle(page)
    _shot(page, tmp_path, "03_trajectory_open")
    thumb = page.locator('input[type="range"][aria-label="Step"]')
    thumb.wait_for(state="attached", timeout=30_000)
    thumb.focus()
    page.keyboard.press("Home")
    page.get_by_text("step 1/32", exact=False).first.wait_for(timeout=30_000)
    settle(page)
    _shot(page, tmp_path, "03_trajectory_step1")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.get_by_text("step 4/32", exact=False).first.wait_for(timeout=30_000)
    settle(page)
    _shot(page, tmp_path, "04_trajectory_step4")
    assert page.locator(".flm-superposition").count() == 1
    assert page.locator(".js-plotly-plot").count() >= 4

    for name, heading in (("Time", "Time"), ("Benchmarks", "Benchmarks"), ("Training", "Training")):
        page.get_by_role("link", name=name).click()
        page.get_by_role("heading", name=heading).wait_for(timeout=30_000)
        settle(page)
        page.wait_for_timeout(500)
        _shot(page, tmp_path, f"05_{name.lower()}")
    assert page.get_by_text("Traceback").count() == 0
    assert not errors, errors


def test_two_browser_sessions_at_once_keep_their_own_state(server, browser, tmp_path):
    """Two sessions (separate browser contexts) generate at the same moment with different seeds on the
    shared cached models: each shows its own result, and repeating a seed afterwards gives the same text,
    so neither run disturbed the other's state or the cached models."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 2000}) for _ in range(2)]
    pages = [context.new_page() for context in contexts]
    errors: list[str] = []
    lane_text = "() => document.querySelector('.flm-text[data-lane=\"fmlm\"]')?.innerText ?? ''"
    lane_run = "() => document.querySelector('.flm-text[data-lane=\"fmlm\"]')?.dataset.run ?? ''"

    def set_seed(page, seed: int) -> None:
        box = page.locator(".st-key-seed input")
        box.fill(str(seed))
        box.press("Enter")
        settle(page)

    def wait_new_run(page, old: str) -> None:
        page.wait_for_function(f"old => ({lane_run})() !== old && ({lane_run})() !== ''", arg=old, timeout=120_000)
        settle(page)

    for page, seed in zip(pages, (11, 12)):
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(server, wait_until="domcontentloaded")
        page.locator(".st-key-generate button:visible").wait_for(timeout=60_000)
        settle(page)
        set_seed(page, seed)
    old = [page.evaluate(lane_run) for page in pages]
    for page in pages:  # both clicks before either result: the runs overlap on the server
        page.locator(".st-key-generate button:visible").click()
    for page, before in zip(pages, old):
        wait_new_run(page, before)
    first = [page.evaluate(lane_text) for page in pages]
    assert all(first) and first[0] != first[1]  # different seeds, different texts, each in its own page
    for i, page in enumerate(pages):
        _shot(page, tmp_path, f"06_session_{i}")
    # Swap seeds and run again at the same time: each page now shows what the other showed.
    set_seed(pages[0], 12)
    set_seed(pages[1], 11)
    old = [page.evaluate(lane_run) for page in pages]
    for page in pages:
        page.locator(".st-key-generate button:visible").click()
    for page, before in zip(pages, old):
        wait_new_run(page, before)
    assert [page.evaluate(lane_text) for page in pages] == first[::-1]
    assert all(page.get_by_text("Traceback").count() == 0 for page in pages)
    assert not errors, errors
    for context in contexts:
        context.close()


def _on_first_screen(page, locator, height: int) -> bool:
    """The element's top lies on the screen, with at least a line of it above the bottom edge."""
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + min(box["height"], 40) <= height


def test_presentation_mode_fits_a_projector(server, browser, tmp_path):
    """A speaker's first screen: at 1280x720 with ?presentation=1 (sidebar folded), Generate pressed with its
    key (G); the quality-matched speedup and the sample texts are in view without scrolling, the settings have
    folded away, and a reload keeps presentation mode."""
    width, height = 1280, 720
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{server}/?presentation=1", wait_until="domcontentloaded")
    page.locator(".st-key-generate button:visible").wait_for(timeout=60_000)
    settle(page)
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    assert page.locator('[data-testid="stSidebar"][aria-expanded="true"]').count() == 0
    _shot(page, tmp_path, "07_presentation_before_1280x720")
    page.keyboard.press("g")
    page.wait_for_function("() => document.querySelectorAll('.flm-text[data-lane=\"flm\"]').length > 0",
                           timeout=120_000)
    headline = page.get_by_text("faster than FLM at 64 steps, where FLM first matches its quality").first
    headline.wait_for(timeout=60_000)
    settle(page)
    page.screenshot(path=str(tmp_path / "08_presentation_after_1280x720.png"))  # the viewport: what the room sees
    if REVIEW_DIR != Path(""):
        REVIEW_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "08_presentation_after_1280x720.png", REVIEW_DIR)
    assert page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollTop ?? 0") == 0
    assert _on_first_screen(page, headline, height)
    assert _on_first_screen(page, page.get_by_text("this click: median").first, height)
    texts = page.locator(".flm-text")
    assert texts.count() >= 2 and _on_first_screen(page, texts.first, height)
    lane_box = page.locator(".st-key-lane_ckpt--0")  # Streamlit's class for the key "lane_ckpt::0"
    assert lane_box.count() == 1 and lane_box.is_hidden()  # the settings folded away
    page.reload(wait_until="domcontentloaded")
    page.locator(".st-key-generate button:visible").wait_for(timeout=60_000)
    settle(page)
    assert "presentation=1" in page.url
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "22px"
    assert page.get_by_text("Traceback").count() == 0
    assert not errors, errors


def test_why_one_step_in_browser(toy_server, browser, tmp_path):
    """The toy world's page in a real browser: the pickers start on mdlm-toy and fmlm-toy, one click runs the three
    lanes at one step, and every sample shows one badge, the broken ones with their token highlighted."""
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{toy_server}/one-step", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Why one step works", exact=True).wait_for(timeout=60_000)
    settle(page)
    assert page.locator(".st-key-one_step_ckpt--factorised input").input_value() == (
        "MDLM · mdlm-toy · toy language (story)")
    assert page.locator(".st-key-one_step_ckpt--flow-map input").input_value() == "FMLM · fmlm-toy · toy language (story)"
    _shot(page, tmp_path, "09_one_step_before")
    page.locator(".st-key-one_step_run button").click()
    page.get_by_role("heading", name="Why", exact=True).wait_for(timeout=120_000)
    settle(page)
    _shot(page, tmp_path, "10_one_step_results")
    for lane in ("mdlm", "fmlm", "flm"):
        boxes = page.locator(f'.flm-toy[data-lane="{lane}"]')
        assert boxes.count() == 8
        broken = page.locator(f'.flm-toy[data-lane="{lane}"][data-valid="0"]')
        assert broken.locator(".flm-toy-why").count() == broken.count()
        assert boxes.locator(".flm-badge").count() == 8
    why = page.get_by_text("product of the marginals")
    assert why.count() == 1
    why.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "11_one_step_why.png"))  # the viewport: the explanation in its numbers
    if REVIEW_DIR != Path(""):
        shutil.copy(tmp_path / "11_one_step_why.png", REVIEW_DIR)
    assert page.get_by_text("Traceback").count() == 0
    assert not errors, errors

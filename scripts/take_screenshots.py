"""Retake the README screenshots of the app in a real browser (Debian chromium driven by Playwright).

Starts `streamlit run app/main.py` on a free localhost port over the shipped checkpoints, then takes
  generate.png  the Generate page at 1280x720 in presentation mode after the talk preset's four lanes ran;
  one_step.png  "Why one step works" at 1400x1000, seed 0, 8 samples, after its run;
stops the server (also on error) and prints the paths written.

    python scripts/take_screenshots.py [--out DIR]    # DIR defaults to docs/screenshots
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_app(env: dict[str, str], log=subprocess.DEVNULL, errors=None):
    """`streamlit run app/main.py` on a free port with environment `env`, its output to `log` (errors to `errors`;
    None: the terminal, subprocess.STDOUT: the log): yields its URL, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                             "--server.headless", "true", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=errors)
    url = f"http://localhost:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def shipped_app_environment() -> dict[str, str]:
    """The environment for the app over the repository's checkpoints and benchmarks, as the README shows them."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("FLM_EXPLORER_CHECKPOINTS", "FLM_EXPLORER_BENCHMARKS"):
        env.pop(name, None)
    return env


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


def settle(page) -> None:
    """Wait until Streamlit's status widget says the script is no longer running."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')",
                           timeout=300_000)
    page.wait_for_timeout(300)


def shoot(page, path: Path) -> None:
    """The viewport once the app is idle, the mouse moved off the controls (no hover tooltip or shade)."""
    page.mouse.move(page.viewport_size["width"] - 5, page.viewport_size["height"] // 2)
    settle(page)
    page.screenshot(path=str(path))
    page.close()


def generate_shot(browser, url: str, path: Path) -> None:
    """Presentation mode at 1280x720: the talk preset, Generate, and the first screen once every lane is done."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(f"{url}/?presentation=1", wait_until="domcontentloaded")
    generate = page.locator(".st-key-generate button:visible")  # the button (a hidden twin measures its shortcut)
    generate.wait_for(timeout=60_000)
    settle(page)
    page.locator(".st-key-talk_preset button").click()
    settle(page)
    generate.click()
    page.get_by_text("this click: median").first.wait_for(timeout=300_000)  # shown once all lanes have run
    shoot(page, path)


def one_step_shot(browser, url: str, path: Path) -> None:
    """"Why one step works" at 1400x1000 with 8 samples at seed 0, after its one-step run."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/one-step", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Why one step works", exact=True).wait_for(timeout=60_000)
    settle(page)
    for key, value in (("one_step_n", 8), ("one_step_seed", 0)):
        box = page.locator(f".st-key-{key} input")
        box.fill(str(value))
        box.press("Enter")
        settle(page)
    page.locator(".st-key-one_step_run button").click()
    page.get_by_role("heading", name="Why", exact=True).wait_for(timeout=300_000)  # the explanation, after the lanes
    shoot(page, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"error: {CHROMIUM} not found (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        raise SystemExit("error: the playwright package is missing (pip install playwright)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    shots = {args.out / "generate.png": generate_shot, args.out / "one_step.png": one_step_shot}
    with streamlit_app(shipped_app_environment()) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            for path, take in shots.items():
                take(browser, url, path)
                print(path)
        finally:
            browser.close()


if __name__ == "__main__":
    main()

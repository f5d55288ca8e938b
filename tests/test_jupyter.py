"""The README's notebook command: `jupyter lab notebooks/ --no-browser` starts and serves the notebooks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_jupyter_lab_serves_the_notebooks(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "jupyter", "lab", "notebooks/", "--no-browser", f"--port={port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=flm-test"]
    command += ["--allow-root"] if os.geteuid() == 0 else []  # Jupyter refuses root without it (CI containers)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    bin_dir = str(Path(sys.executable).parent)  # `jupyter lab` runs the jupyter-lab script beside this python
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    with open(tmp_path / "jupyter.log", "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline, listing = time.time() + 90, None
            while listing is None and time.time() < deadline and proc.poll() is None:
                try:
                    url = f"http://127.0.0.1:{port}/api/contents?token=flm-test"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        listing = json.load(response)
                except OSError:
                    time.sleep(0.5)
            assert listing is not None, (tmp_path / "jupyter.log").read_text()[-2000:]
            names = sorted(item["name"] for item in listing["content"])
            assert names == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) and len(names) >= 5
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=flm-test", timeout=10) as response:
                assert response.status == 200 and b"JupyterLab" in response.read()
        finally:
            proc.terminate()
            proc.wait(timeout=20)

"""The README's Python snippet runs as written from a folder outside the repository (as after
`pip install -e .`), and its copy-paste command blocks hold no optional-flag brackets."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_python_snippet_runs_from_another_folder(tmp_path):
    (snippet,) = [b for b in blocks("python") if "flm_core.load" in b]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_command_blocks_hold_no_optional_flags():
    for block in blocks("bash"):
        for line in block.splitlines():
            command = line.split("  #")[0]
            assert not re.search(r"\[--?[\w-]+", command), line

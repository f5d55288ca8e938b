"""The training scripts' defaults: they write under their run folder and never into checkpoints/ unless
SHIP=checkpoints says so. Each script runs for real under bash, with a stand-in `python` first on PATH that
records its arguments instead of training (so the test takes a second)."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = """#!/bin/sh
echo "$@" >> "$CALLS"
"""


def run_script(name: str, tmp_path: Path, **env: str) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(STAND_IN)
    (bin_dir / "python").chmod(0o755)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "manifest.json").write_text("{}")  # a prepared folder: the scripts skip prepare-data
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
                   "DATA": str(data), **env}
    subprocess.run(["bash", str(ROOT / "scripts" / name), str(tmp_path / "runs")], cwd=tmp_path, env=environment,
                   check=True, capture_output=True, text=True, timeout=60)
    return [shlex.split(line) for line in calls.read_text().splitlines()]


def export_targets(calls: list[list[str]]) -> list[str]:
    return [call[call.index("--out") + 1] for call in calls if call[:3] == ["-m", "flm_core", "export"]]


@pytest.mark.parametrize("script, names", [
    ("train_shipped.sh", {"flm-wiki", "fmlm-wiki", "mdlm-wiki", "ar-wiki"}),
    ("continue_shipped.sh", {"flm-wiki", "fmlm-wiki", "mdlm-wiki"}),
    ("train_toy.sh", {"flm-toy", "fmlm-toy", "mdlm-toy", "ar-toy"})])
def test_scripts_export_under_their_run_folder_by_default(script, names, tmp_path):
    targets = export_targets(run_script(script, tmp_path))
    assert {Path(t).name for t in targets} == names
    assert all(Path(t).parent == tmp_path / "runs" / "export" for t in targets), targets


def test_shipping_into_checkpoints_is_an_explicit_choice(tmp_path):
    calls = run_script("continue_shipped.sh", tmp_path, SHIP="checkpoints")
    assert {Path(t).parent for t in export_targets(calls)} == {Path("checkpoints")}
    starts = [call[call.index("--init-from") + 1] for call in calls if "--init-from" in call]
    # FLM and MDLM continue side by side (either may start first); the FMLM is distilled after them
    assert sorted(starts[:2]) == ["checkpoints/flm-wiki", "checkpoints/mdlm-wiki"]
    assert starts[2:] == ["checkpoints/fmlm-wiki"]

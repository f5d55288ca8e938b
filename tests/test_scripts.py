"""The training scripts' defaults: they write under their run folder and never into checkpoints/ unless
SHIP=checkpoints says so. Each script runs for real under bash, with a stand-in `python` first on PATH that
records its arguments instead of training (so the test takes a second)."""
from __future__ import annotations

import json
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
    assert starts[2:] == ["checkpoints/fmlm-wiki"]  # the student of that FLM
    flm = next(call for call in calls if call[:4] == ["-m", "flm_core", "train", "flm"])
    assert "--self-condition" in flm  # the best measured FLM recipe; the FMLM then takes its second pass


def test_the_objective_ab_gives_each_arm_the_same_minutes_from_the_same_teacher(tmp_path):
    """A: semigroup for MINUTES; B: residual then two-network (from that residual) for MINUTES/2 each; B' the
    second stage again with share 0.1; every run starts from the same teacher and writes under the run folder."""
    calls = run_script("ab_authors_objective_toy.sh", tmp_path, MINUTES="10")
    trains = {call[call.index("--out") + 1]: call for call in calls if call[:4] == ["-m", "flm_core", "train", "fmlm"]}
    runs = tmp_path / "runs"
    assert set(trains) == {str(runs / n) for n in ("fmlm-semigroup", "fmlm-residual", "fmlm-two-network",
                                                  "fmlm-two-network-boundary01")}
    value = lambda call, flag: call[call.index(flag) + 1] if flag in call else None  # noqa: E731
    assert {value(c, "--teacher") for c in trains.values()} == {"checkpoints/flm-toy"}
    minutes = {Path(out).name: float(value(c, "--max-minutes")) for out, c in trains.items()}
    assert minutes["fmlm-semigroup"] == minutes["fmlm-residual"] + minutes["fmlm-two-network"] == 10
    assert minutes["fmlm-two-network-boundary01"] == minutes["fmlm-two-network"]
    assert {value(c, "--objective") for c in trains.values()} == {"semigroup", "residual", "two-network"}
    for name in ("fmlm-two-network", "fmlm-two-network-boundary01"):
        assert value(trains[str(runs / name)], "--first-stage") == str(runs / "fmlm-residual")
    assert value(trains[str(runs / "fmlm-two-network-boundary01")], "--boundary-prob") == "0.1"
    assert value(trains[str(runs / "fmlm-two-network")], "--boundary-prob") is None  # the authors' 1/128 default


def test_evaluate_runs_appends_one_line_of_figures_per_seed(tmp_path):
    """The A/B scripts' shared helper, for real on the shipped toy FMLM: seeds 1-3 at two step counts, one JSON line
    each with the figures the tables read (toy: no Gen PPL keys) and nothing else."""
    out = tmp_path / "eval.jsonl"
    script = (f'source "{ROOT / "scripts" / "evaluate_runs.sh"}"; '
              f'evaluate_seeds "{out}" checkpoints/fmlm-toy "1 2" --num-samples 8')
    subprocess.run(["bash", "-c", script], cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["steps"], r["seed"]) for r in rows] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert {tuple(r) for r in rows} == {("checkpoint", "steps", "seed", "num_samples", "entropy", "toy_validity",
                                         "toy_grammatical", "toy_distance", "seconds")}
    assert {r["num_samples"] for r in rows} == {8} and {r["checkpoint"] for r in rows} == {"checkpoints/fmlm-toy"}

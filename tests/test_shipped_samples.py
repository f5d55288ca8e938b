"""The shipped checkpoints write the same tokens for the same seed, with and without a record or a prompt.

The golden ids in tests/golden/shipped_samples.json were written by `write_golden` with one torch thread;
refactors must reproduce them exactly. Re-shipping a checkpoint changes them: rerun
`python tests/test_shipped_samples.py` then, and say so in the commit."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import flm_core

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "shipped_samples.json"
CHECKPOINTS = ("flm-wiki", "fmlm-wiki", "mdlm-wiki", "ar-wiki")
PROMPT = ("The city of", "")


def settings(name: str):
    """(key, steps, record, prompted) of every golden run of checkpoint `name` (AR: its one fixed run)."""
    if name.startswith("ar"):
        return [(f"{name}|1|0|0", 1, False, False)]
    return [(f"{name}|{steps}|{int(record)}|{int(prompted)}", steps, record, prompted)
            for steps in (1, 4) for record in (False, True) for prompted in (False, True)]


def run(pipe, steps: int, record: bool, prompted: bool) -> list[list[int]]:
    prefix, suffix = PROMPT if prompted else ("", "")
    return pipe.generate(3, steps, seed=7, record=record, prefix=prefix, suffix=suffix).tokens.tolist()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_shipped_checkpoint_samples_are_unchanged(name, one_thread):
    golden = json.loads(GOLDEN.read_text())["samples"]
    pipe = flm_core.load(ROOT / "checkpoints" / name)
    for key, steps, record, prompted in settings(name):
        assert run(pipe, steps, record, prompted) == golden[key], key


def write_golden() -> None:
    torch.set_num_threads(1)
    samples = {}
    for name in CHECKPOINTS:
        pipe = flm_core.load(ROOT / "checkpoints" / name)
        samples.update({key: run(pipe, *rest) for key, *rest in settings(name)})
    GOLDEN.write_text(json.dumps({"made_by": "tests/test_shipped_samples.py::write_golden (1 torch thread)",
                                  "samples": samples}) + "\n")


if __name__ == "__main__":
    sys.exit(write_golden())

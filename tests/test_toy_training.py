"""A CI-sized training run on toy:story learns the language: the same trainer and models as on Wikipedia, with
nothing toy-specific in them.

Measured on the project's 2-core CPU: a 2-block, 64-wide AR trained for 400 steps at batch 32 (about 60 s at one
thread) writes 84% of its stories without a grammar or vocabulary error and 2.3% fully valid (128 samples);
untrained, it writes none of either. The bounds below leave room for another machine's arithmetic.
"""
from __future__ import annotations

import pytest

from flm_core.bench import evaluate_checkpoint
from flm_core.cli import main
from flm_core.data import prepare_toy

SAMPLES = 128


@pytest.fixture(scope="module")
def story_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_train") / "story"
    prepare_toy("toy:story", folder, documents={"train": 20_000, "val": 100})
    return folder


def train_ar(data, out, steps: int) -> None:
    assert main(["train", "ar", "--data", str(data), "--out", str(out), "--preset", "tiny", "--hidden-size", "64",
                 "--n-blocks", "2", "--n-heads", "2", "--cond-dim", "32", "--batch-size", "32", "--lr", "3e-3",
                 "--warmup-steps", "20", "--max-steps", str(steps), "--precision", "fp32", "--eval-every", "100000",
                 "--log-every", "100", "--seed", "0"]) == 0


def parse_share(result: dict) -> float:
    """The share of samples whose first failure, if any, is a semantic constraint (they follow the grammar)."""
    failures = result["toy_failures"]
    return 1 - (failures.get("grammar", 0) + failures.get("vocabulary", 0)) / result["num_samples"]


def test_a_short_ar_run_learns_the_grammar_and_writes_valid_stories(story_data, tmp_path):
    train_ar(story_data, tmp_path / "untrained", steps=1)
    untrained = evaluate_checkpoint(str(tmp_path / "untrained"), num_samples=SAMPLES)
    assert untrained["toy_validity"] == 0 and parse_share(untrained) == 0

    train_ar(story_data, tmp_path / "ar", steps=400)
    trained = evaluate_checkpoint(str(tmp_path / "ar"), num_samples=SAMPLES)
    assert parse_share(trained) >= 0.6, trained["toy_failures"]
    assert trained["toy_validity"] >= 1 / SAMPLES, trained["toy_failures"]
    assert trained["toy_distance"] < untrained["toy_distance"] == 1.0

"""The authors' two-stage FMLM distillation through the CLI: `train fmlm --objective residual` (a residual over the
teacher, refused as a sampler) then `--objective two-network --first-stage` (a one-network flow map that samples)."""
import json
from pathlib import Path

import pytest
import torch

import flm_core
from flm_core.checkpoint import CheckpointError
from flm_core.cli import main
from flm_core.config import RunConfig
from flm_core.pipeline import load_first_stage
from flm_core.train import build_student


@pytest.fixture(scope="module")
def stages(tiny_data, flm_checkpoint, tiny_train_args, tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    first, second = root / "residual", root / "two-network"
    common = ("--teacher", str(flm_checkpoint), "--max-steps", "4", "--lr", "3e-3", "--warmup-steps", "1")
    assert main(tiny_train_args("fmlm", tiny_data, first, *common, "--objective", "residual")) == 0
    assert main(tiny_train_args("fmlm", tiny_data, second, *common, "--objective", "two-network",
                                "--first-stage", str(first))) == 0
    return first, second


def test_the_stages_record_their_objectives_and_the_authors_boundary_shares(stages, flm_checkpoint):
    first, second = (json.loads((d / "config.json").read_text())["objective"] for d in stages)
    assert first["name"] == "fmlm-residual" and first["boundary_prob"] == 1 / 64 and first["first_stage"] is None
    assert second["name"] == "fmlm-two-network" and second["boundary_prob"] == 1 / 128
    assert second["first_stage"] == str(stages[0]) and second["teacher"] == str(flm_checkpoint)
    logs = [json.loads(line) for line in (stages[1] / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["map_mse"])) for r in logs if "map_mse" in r) and logs


def test_the_second_stage_samples_in_one_call_and_the_first_is_refused_in_one_line(stages, capsys):
    first, second = stages
    generation = flm_core.load(second).generate(2, 1, seed=3)
    assert generation.nfe == 1 and generation.tokens.shape[0] == 2
    assert main(["sample", "--checkpoint", str(first), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objective two-network --first-stage" in err, err


def test_a_first_stage_is_refused_before_its_weights_are_read(stages, tmp_path):
    config_only = tmp_path / "residual"
    config_only.mkdir()
    (config_only / "config.json").write_text((stages[0] / "config.json").read_text())
    with pytest.raises(CheckpointError, match="--objective two-network --first-stage"):
        flm_core.load(config_only)


def test_the_first_stage_residual_starts_at_zero_and_learns(stages):
    """build_student zeroes a first stage's output layer (r = 0: the teacher's Euler step, as theirs); after 4
    steps the exported residual is no longer zero."""
    start, _ = build_student(RunConfig.load(stages[0] / "config.json"), torch.device("cpu"))
    x = torch.randn(2, start.config.seq_len, start.config.vocab_size)
    assert torch.equal(start(x, torch.zeros(2), torch.ones(2)), torch.zeros_like(x))
    _, trained = load_first_stage(stages[0])
    assert not trained.training  # frozen targets: no dropout draws
    assert trained(x, torch.zeros(2), torch.ones(2)).abs().max() > 0


@pytest.mark.parametrize("extra, message", [
    (("--objective", "two-network"), "--first-stage"),
    (("--objective", "semigroup", "--first-stage", "FIRST"), "--first-stage"),
    (("--objective", "two-network", "--first-stage", "TEACHER"), "--objective residual"),
    (("--objective", "two-network", "--first-stage", "FIRST", "--no-teacher-self-condition"), "the same --teacher"),
])
def test_wrong_stage_arguments_fail_in_one_line(stages, tiny_data, flm_checkpoint, tiny_train_args, tmp_path, capsys,
                                                extra, message):
    extra = tuple({"FIRST": str(stages[0]), "TEACHER": str(flm_checkpoint)}.get(a, a) for a in extra)
    code = main(tiny_train_args("fmlm", tiny_data, tmp_path / "out", "--teacher", str(flm_checkpoint),
                                "--max-steps", "1", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out" / "config.json").exists()


def test_the_app_lists_a_first_stage_as_unusable_after_the_samplers(stages):
    from app import catalogue

    infos = catalogue.scan_checkpoints([stages[0].parent])
    assert [Path(i.path).name for i in infos] == ["two-network", "residual"]
    assert infos[0].error is None and "--first-stage" in infos[1].error
    assert infos[1].label == "residual (first stage, not a sampler)"


def test_a_first_stage_continues_from_a_first_stage(stages, tiny_data, flm_checkpoint, tiny_train_args, tmp_path):
    """--init-from a residual checkpoint warm-starts another residual run (not refused as a non-sampler), from its
    weights exactly."""
    out = tmp_path / "more"
    assert main(tiny_train_args("fmlm", tiny_data, out, "--teacher", str(flm_checkpoint), "--objective", "residual",
                                "--init-from", str(stages[0]), "--max-steps", "1")) == 0
    start, _ = build_student(RunConfig.load(out / "config.json"), torch.device("cpu"))
    before = load_first_stage(stages[0])[1].state_dict()
    assert all(torch.equal(v, before[k]) for k, v in start.state_dict().items())

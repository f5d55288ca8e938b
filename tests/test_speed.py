"""bench-speed: the ratios are computed from the right pieces and the CLI writes its JSON."""
import json
import warnings

import pytest
import torch

from flm_core import load, speed
from flm_core.cli import main


def test_median_seconds_counts_calls_and_is_positive():
    calls = []
    seconds = speed.median_seconds(lambda: calls.append(1), torch.device("cpu"), repeats=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0


def test_sampler_overhead_rows(flm_checkpoint):
    pipe = load(flm_checkpoint)
    row = speed.sampler_overhead(pipe, batch=2, steps=4, repeats=2)
    assert row["nfe"] == 4 and row["kind"] == "flm"
    assert row["overhead_ratio"] == pytest.approx(row["seconds_generate"] / (4 * row["seconds_per_call"]))
    assert row["record_ratio"] == pytest.approx(row["seconds_generate_recorded"] / row["seconds_generate"])


def test_sampler_overhead_alternates_bare_calls_plain_and_recorded_runs(flm_checkpoint, monkeypatch):
    """One untimed round, then `repeats` rounds of a bare call, a plain and a recorded run, in an order
    that goes through all six permutations."""
    pipe = load(flm_checkpoint)
    generate, network, events = pipe.generate, pipe.network, []

    def logged_generate(*args, record=False, **kwargs):
        events.append("recorded" if record else "plain")
        return generate(*args, record=record, **kwargs)

    def logged_network(*args, **kwargs):  # the bare call; runs call the sampler's own reference
        events.append("call")
        return network(*args, **kwargs)

    monkeypatch.setattr(pipe, "generate", logged_generate)
    monkeypatch.setattr(pipe, "network", logged_network)
    speed.sampler_overhead(pipe, batch=1, steps=2, repeats=6)
    rounds = [tuple(events[i:i + 3]) for i in range(0, len(events), 3)]
    assert len(rounds) == 7 and all(sorted(r) == ["call", "plain", "recorded"] for r in rounds)
    assert len(set(rounds[1:])) == 6


def test_training_throughput_figures_are_consistent():
    row = speed.training_throughput("flm", "tiny", vocab_size=64, seq_len=8, batch=4, steps=1,
                                    device=torch.device("cpu"), bf16=False)
    assert row["tokens_per_second"] == pytest.approx(32 / row["seconds_per_step"])
    assert row["mfu"] == pytest.approx(row["achieved_gflops"] / row["matmul_peak_gflops"])
    assert 0 < row["mfu"] < 1


def test_compiled_training_step_is_timed_and_labelled_without_dynamo_warnings():
    """The schedule's cached tables are read, not traced (dynamo used to warn about lru_cache and trace
    the table's build, timer included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = speed.training_throughput("flm", "tiny", vocab_size=64, seq_len=8, batch=4, steps=1,
                                        device=torch.device("cpu"), bf16=False, compiled=True)
    assert row["compiled"] is True and row["tokens_per_second"] > 0
    assert not [str(w.message)[:80] for w in caught if "Dynamo" in str(w.message)]


def test_bench_speed_cli_writes_json(flm_checkpoint, tmp_path):
    out = tmp_path / "speed.json"
    code = main(["bench-speed", "--checkpoints", str(flm_checkpoint), "--steps", "2", "--batch", "2",
                 "--repeats", "1", "--train-kinds", "ar", "--train-preset", "tiny", "--vocab-size", "64",
                 "--seq-len", "8", "--train-batch", "2", "--train-steps", "1", "--precision", "fp32",
                 "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert [r["steps"] for r in result["sampling"]] == [2]
    assert result["training"][0]["kind"] == "ar" and result["peak_memory_mb"] > 0
    assert result["complete"] is True


def test_bench_speed_keeps_what_it_measured_when_stopped(flm_checkpoint, tmp_path, monkeypatch):
    """A run stopped after its first timing leaves that timing on disk, marked incomplete."""
    out = tmp_path / "speed.json"
    timed = speed.sampler_overhead

    def stop_on_the_second(pipe, batch, steps, repeats):
        if steps == 3:
            raise KeyboardInterrupt
        return timed(pipe, batch, steps, repeats)

    monkeypatch.setattr(speed, "sampler_overhead", stop_on_the_second)
    assert main(["bench-speed", "--checkpoints", str(flm_checkpoint), "--steps", "2", "3", "--batch", "2",
                 "--repeats", "1", "--train-kinds", "--out", str(out)]) == 130
    result = json.loads(out.read_text())
    assert [r["steps"] for r in result["sampling"]] == [2] and result["complete"] is False

"""The scale scripts at toy size: the generated corpus, the measurement run, and the preset projection's
arithmetic against an independent computation."""
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import project_presets  # noqa: E402
import scale_check  # noqa: E402
import synthetic_corpus  # noqa: E402


def test_the_generated_corpus_has_the_size_asked_for_and_the_corpus_words(tmp_path):
    written = synthetic_corpus.write_corpus(tmp_path, 0.2, files=2, seed=3)
    files = sorted(tmp_path.glob("*.jsonl"))
    assert [f.name for f in files] == ["part-000.jsonl", "part-001.jsonl"]
    assert written == sum(f.stat().st_size for f in files) and 0.2e6 <= written < 0.2e6 + 20_000
    words, _ = synthetic_corpus.vocabulary()
    known = set(words)
    docs = [json.loads(line)["text"] for f in files for line in f.read_text().splitlines()]
    assert all(w.strip(".").lower() in known for doc in docs for w in doc.split())
    again = tmp_path / "again"
    synthetic_corpus.write_corpus(again, 0.2, files=2, seed=3)
    assert (again / "part-000.jsonl").read_bytes() == files[0].read_bytes()  # seeded


def test_the_scale_check_measures_preparation_and_training(tmp_path):
    run = scale_check.check(0.3, tmp_path, threads=1, train_steps=1)
    assert run["corpus_mb"] >= 0.3 and run["shards"] == {"train": 1, "val": 1}
    assert run["prepare"]["peak_rss_mb"] > 100 and run["prepare"]["mb_per_s"] > 0
    for preset in ("cpu", "tiny"):
        assert run["train"][preset]["peak_rss_mb"] >= run["train"][preset]["final_rss_anon_mb"] > 0
    assert run["train"]["cpu"]["peak_rss_mb"] > run["train"]["tiny"]["peak_rss_mb"]  # the model dominates


def speed_file(path: Path, device: str, rows: list[tuple[int, int, float, float, float]]) -> Path:
    path.write_text(json.dumps({"device": device, "training": [
        {"kind": "flm", "preset": "small", "vocab_size": k, "seq_len": l, "tokens_per_second": tps,
         "achieved_gflops": gflops, "mfu": mfu} for k, l, tps, gflops, mfu in rows]}))
    return path


def test_the_projection_is_flops_over_gpu_throughput(tmp_path):
    cpu = speed_file(tmp_path / "cpu.json", "CPU (2 threads)", [(30522, 128, 100.0, 85.0, 0.5), (50258, 1024, 50.0, 56.0, 0.4)])
    rows = project_presets.project([cpu], gpus=[1, 8], peak_tflops=400.0, mfus=[0.25], price=2.0)
    assert [(r["preset"], r["gpus"]) for r in rows] == [("paper-lm1b", 1), ("paper-lm1b", 8), ("paper-owt", 1),
                                                         ("paper-owt", 8)]
    lm1b = rows[1]
    tokens = 1_500_000 * 512 * 128
    flops = 85.0e9 / 100.0 * tokens  # FLOPs per token of the measured row, times the run's tokens
    assert lm1b["tokens"] == tokens and lm1b["flops"] == pytest.approx(flops)
    assert lm1b["wall_hours"] == pytest.approx(flops / (8 * 400e12 * 0.25) / 3600)
    assert lm1b["gpu_hours"] == pytest.approx(8 * lm1b["wall_hours"]) and lm1b["cost"] == pytest.approx(2 * lm1b["gpu_hours"])
    assert lm1b["this_device_years"] == pytest.approx(tokens / 100.0 / 3600 / 24 / 365)
    assert rows[2]["tokens"] == 1_500_000 * 512 * 1024 and lm1b["mfu_source"] == "assumed"
    gpu = speed_file(tmp_path / "gpu.json", "NVIDIA H200", [(30522, 128, 1e6, 2e5, 0.45), (50258, 1024, 5e5, 1.5e5, 0.4)])
    measured = project_presets.project([gpu], gpus=[8], peak_tflops=400.0, mfus=[0.25], price=2.0)
    assert [r["mfu_assumed"] for r in measured] == [0.45, 0.4] and measured[0]["mfu_source"] == "measured"
    assert "| paper-owt |" in project_presets.markdown(rows, 400.0, 2.0)


def test_a_missing_shape_is_named(tmp_path):
    only_lm1b = speed_file(tmp_path / "cpu.json", "CPU", [(30522, 128, 100.0, 85.0, 0.5)])
    with pytest.raises(SystemExit, match="K = 50258, L = 1024"):
        project_presets.project([only_lm1b], gpus=[1], peak_tflops=400.0, mfus=[0.5], price=1.0)

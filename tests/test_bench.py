"""flm_core.bench and the `evaluate` / `bench` subcommands on tiny random models."""
from __future__ import annotations

import json
import math

import pytest

from flm_core import bench
from flm_core.cli import main
from test_metrics import SEQ_LEN, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("bench"))


def row(model, kind, steps, ppl, entropy, sps):
    return {"model": model, "kind": kind, "steps": steps, "gen_ppl": ppl, "entropy": entropy,
            "seconds_per_sample": sps}


def test_speedups_pick_the_fastest_matching_setting():
    rows = [row("fmlm", "fmlm", 1, 100.0, 4.0, 0.01), row("fmlm", "fmlm", 4, 90.0, 4.0, 0.04),
            row("flm", "flm", 8, 150.0, 4.0, 0.05),   # worse Gen PPL
            row("flm", "flm", 16, 95.0, 4.2, 0.10),   # matches: PPL <= 100, entropy within 10%
            row("flm", "flm", 32, 80.0, 4.3, 0.20),   # matches but slower
            row("flm", "flm", 64, 60.0, 3.0, 0.05),   # better PPL, entropy collapsed (> 10% off)
            row("mdlm", "mdlm", 8, 300.0, 4.0, 0.02),
            row("ar", "ar", 15, None, 4.0, 0.03),
            dict(row("judge", "ar", 15, 5.0, 4.0, 0.001), self_evaluated=True),  # the evaluator: not comparable
            {"model": "data (validation)", "kind": "data", "steps": None, "gen_ppl": 20.0, "entropy": 4.0}]
    out = {s["model"]: s for s in bench.matched_speedups(rows)}
    assert set(out) == {"flm", "mdlm", "ar"}  # the FMLM's own multi-step rows are not "another model"
    assert out["flm"]["matched"] and out["flm"]["steps"] == 16
    assert out["flm"]["speedup"] == pytest.approx(10.0)
    assert not out["mdlm"]["matched"] and out["mdlm"]["speedup"] is None
    assert not out["ar"]["matched"]
    assert "10x faster than flm, which needs 16 steps to match its quality (Gen PPL 95 <= 100" in \
        bench.speedup_sentence(out["flm"])
    assert "no setting of mdlm" in bench.speedup_sentence(out["mdlm"])
    # every speedup names the quality at which it holds: FMLM's Gen PPL 100 against the data's 20
    assert bench.speedup_sentence(out["flm"]).endswith(", at Gen PPL 5 times the validation text's (20)")
    assert bench.matched_speedups([row("flm", "flm", 8, 10.0, 4.0, 0.1)]) == []  # no one-step FMLM


def test_bench_writes_json_markdown_and_html(world, tmp_path):
    ckpts = [str(world[k]) for k in ("flm", "fmlm", "mdlm", "ar")]
    result = bench.run_bench(ckpts, str(world["data"]), evaluator=str(world["ar"]), steps=[1, 2, 4], max_steps=2,
                             num_samples=4, seed=1, repeats=2, mauve=False)
    paths = bench.write_outputs(result, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "benchmarks.json").read_text())
    assert saved == json.loads(json.dumps(result))
    rows = saved["rows"]
    assert [(r["model"], r["steps"]) for r in rows] == [
        ("flm", 1), ("flm", 2), ("fmlm", 1), ("fmlm", 2), ("mdlm", 1), ("mdlm", 2), ("ar", SEQ_LEN - 1),
        ("data (validation)", None)]
    for r in rows[:-1]:
        assert r["nfe"] == r["steps"] and r["num_samples"] == 4 and len(r["seconds_repeats"]) == 2
        assert r["seconds_per_sample"] == pytest.approx(r["seconds"] / 4)
        assert r["tokens_per_second"] == pytest.approx(4 * SEQ_LEN / r["seconds"])
        assert r["gen_ppl"] > 1 and 0 < r["entropy"] <= math.log(SEQ_LEN) + 1e-9
        assert 0 <= r["memorization"] <= 1 and 0 <= r["word_validity"] <= 1 and r["mauve"] is None
        assert math.isfinite(r["val_nll"]) and r["val_nll_kind"]
    assert [r["self_evaluated"] for r in rows[:-1]] == [False] * 6 + [True]
    data = rows[-1]
    assert data["kind"] == "data" and data["memorization"] > 0 and data["word_validity"] > 0.9
    assert {s["model"] for s in saved["speedups"]} == {"flm", "mdlm"}  # not the AR that evaluates itself
    env = saved["environment"]
    assert env["device"] == "cpu" and env["torch_threads"] >= 1 and env["torch"]
    assert saved["settings"]["steps"] == [1, 2] and saved["settings"]["repeats"] == 2

    md = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "| Model | Kind | Steps | NFE | Gen PPL" in md
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(rows)
    assert "| ar * | ar | 15 | 15 |" in md and "Speedup of one-step FMLM" in md

    html = (tmp_path / "out" / "benchmarks.html").read_text()
    assert "<html" in html and "Plotly" in html and "<script src=\"https://cdn" not in html  # self-contained
    fig = json.loads((tmp_path / "out" / "benchmarks.plotly.json").read_text())
    names = [t.get("name") for t in fig["data"]]
    assert {"FLM", "FMLM", "MDLM", "AR"} <= set(names)  # bench.quality_traces, the app's headline chart too
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["xaxis"]["ticktext"][0].endswith("s")
    assert set(paths) == {"json", "md", "html", "plotly.json"}


def test_bench_cli(world, tmp_path, capsys):
    code = main(["bench", "--checkpoints", str(world["fmlm"]), str(world["flm"]), "--data", str(world["data"]),
                 "--steps", "1", "2", "8", "--max-steps", "2", "--num-samples", "3", "--seed", "0",
                 "--repeats", "1", "--no-mauve", "--out", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = json.loads((tmp_path / "b" / "benchmarks.json").read_text())["rows"]
    assert len(rows) == 5 and all(r["gen_ppl"] is None for r in rows)  # no evaluator
    assert json.loads(out.strip().splitlines()[-1])["md"].endswith("benchmarks.md")


def test_evaluate_cli_prints_one_json_object(world, capsys):
    code = main(["evaluate", "--checkpoint", str(world["mdlm"]), "--evaluator", str(world["ar"]),
                 "--data", str(world["data"]), "--steps", "4", "--num-samples", "3", "--seed", "2",
                 "--json", "--no-mauve"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert result["kind"] == "mdlm" and result["steps"] == 4 and result["nfe"] == 4 and result["num_samples"] == 3
    for key in ("gen_ppl", "entropy", "memorization", "word_validity", "val_nll", "seconds_per_sample"):
        assert isinstance(result[key], float), key
    assert result["mauve"] is None and result["val_nll_kind"].startswith("ELBO")
    assert set(result["data"]) == {"num_samples", "gen_ppl", "entropy", "mauve", "memorization", "word_validity"}
    assert result["data"]["entropy"] > 0


def test_evaluate_cli_table_and_one_line_errors(world, capsys):
    assert main(["evaluate", "--checkpoint", str(world["flm"]), "--data", str(world["data"]), "--steps", "2",
                 "--num-samples", "2", "--no-mauve"]) == 0
    table = capsys.readouterr().out
    assert "gen_ppl" in table and "word_validity" in table and "cross-entropy objective" in table
    assert main(["evaluate", "--checkpoint", str(world["flm"]), "--evaluator", str(world["flm"]),
                 "--data", str(world["data"]), "--no-mauve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "AR checkpoint" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", "--checkpoints", str(world["flm"]), "--data", str(world["data"]), "--steps", "8",
                 "--max-steps", "4", "--no-mauve", "--out", "unused"]) == 2
    assert "max-steps" in capsys.readouterr().err


def test_update_model_cards_sets_the_benchmark_in_the_card_data_and_keeps_the_stages(world, tmp_path):
    import shutil

    from flm_core.cards import read_card_data

    ckpt = tmp_path / "fmlm"
    shutil.copytree(world["fmlm"], ckpt)
    stages = [{"command": "python -m flm_core train fmlm ...", "steps": 3, "tokens_seen": 96, "wall_minutes": 0.1,
               "hardware": "CPU", "precision": "fp32", "init_from": None, "validation": {"diagonal_kl": 0.5}}]
    (ckpt / "card.json").write_text(json.dumps({"parameters": None, "stages": stages, "benchmark": None}))
    result = bench.run_bench([str(ckpt)], str(world["data"]), steps=[1, 2], num_samples=2, seed=0, repeats=1,
                             mauve=False)
    for _ in range(2):  # idempotent: the second run replaces the benchmark instead of appending
        assert bench.update_model_cards(result) == [str(ckpt / "README.md")]
    data = read_card_data(ckpt)
    assert data["stages"] == stages and [row[0] for row in data["benchmark"]["rows"]] == ["1", "2", "data"]
    card = (ckpt / "README.md").read_text()
    assert card.startswith("# FMLM checkpoint\n") and f"- command: `{stages[-1]['command']}`" in card
    assert card.count("## Benchmark") == 1
    assert "| 1 | 1 |" in card and "| 2 | 2 |" in card and "| data |" in card
    shown = result["rows"][0]["examples"]
    assert "Unedited samples (1 step," in card and all(text.strip() in card for text in shown)


def test_update_model_cards_leaves_checkpoints_without_card_data_alone(world, tmp_path):
    import shutil

    ckpt = tmp_path / "fmlm"
    shutil.copytree(world["fmlm"], ckpt)
    (ckpt / "README.md").write_text("# a hand-written card\n")
    result = bench.run_bench([str(ckpt)], str(world["data"]), steps=[1], num_samples=2, seed=0, repeats=1,
                             mauve=False)
    assert bench.update_model_cards(result) == []
    assert (ckpt / "README.md").read_text() == "# a hand-written card\n" and not (ckpt / "card.json").exists()


def test_seconds_axis_labels_times_with_units():
    axis = bench.seconds_axis([0.015, 0.64])
    assert axis["ticktext"] == ["10 ms", "20 ms", "50 ms", "100 ms", "200 ms", "500 ms", "1 s"]
    assert axis["type"] == "log" and 10 ** axis["range"][0] < 0.015 and 10 ** axis["range"][1] > 0.64
    assert bench.seconds_axis([0.0003, 15])["ticktext"] == ["1 ms", "10 ms", "100 ms", "1 s", "10 s"]  # decades
    assert bench.seconds_axis([None, 0.0]) == {}


def test_gen_ppl_axis_leaves_room_for_the_step_labels():
    axis = bench.gen_ppl_axis([50.0, None, 800.0])
    assert axis["dtick"] == 1 and axis["range"] == pytest.approx([math.log10(50) - 0.2, math.log10(800) + 0.3])
    assert bench.gen_ppl_axis([50.0, 60.0])["dtick"] is None  # within a decade: plotly's own ticks
    assert bench.gen_ppl_axis([]) == {"type": "log"}


def test_quality_traces_draw_one_line_per_model_labelled_with_steps():
    def row(model, kind, steps, ppl, seconds):
        return {"model": model, "kind": kind, "steps": steps, "nfe": steps, "gen_ppl": ppl, "seconds_per_sample": seconds}

    rows = [row("b", "flm", 8, 60.0, 0.2), row("b", "flm", 2, 90.0, 0.05), row("a", "fmlm", 1, 70.0, 0.01),
            row("c", "flm", 4, 80.0, 0.1), row("d", "mdlm", 4, None, 0.1),
            {"model": "data (validation)", "kind": "data", "steps": None, "gen_ppl": 30.0}]
    traces = bench.quality_traces(rows, colors={"flm": "#123456"})
    assert [t.name for t in traces] == ["FLM · b", "FLM · c", "FMLM"]  # by kind; the model only where needed
    flm_b = traces[0]
    assert list(flm_b.x) == [0.05, 0.2] and list(flm_b.y) == [90.0, 60.0] and list(flm_b.text) == ["2", "8"]
    assert flm_b.line.color == "#123456" and traces[2].line.color is None
    assert flm_b.textposition == "top center" and traces[2].textposition == "bottom center"

"""evaluate and bench on toy-language checkpoints: scored by the language's checker, no data folder needed."""
from __future__ import annotations

import json
from unittest import mock

import pytest

from flm_core import bench
from flm_core.cli import main
from flm_core.data import prepare
from flm_core.pipeline import load
from flm_core.toy import check_ids, distance, language


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy") / "story"
    with mock.patch.dict("flm_core.data.TOY_DOCUMENTS", {"train": 64, "val": 16}):
        prepare("toy:story", folder)
    return folder


@pytest.fixture(scope="module")
def toy_checkpoints(toy_data, tmp_path_factory, tiny_train_args):
    root = tmp_path_factory.mktemp("toy_ckpt")
    for kind in ("flm", "mdlm"):
        assert main(tiny_train_args(kind, toy_data, root / kind, "--max-steps", "3")) == 0
    return root


def check_words(pipe, row) -> list[str]:
    """The words of one sampled block between its leading and trailing separators (an independent reading)."""
    tokens = [pipe.tokenizer.id_to_token(int(i)) for i in row]
    text = " ".join(tokens).replace("<|sep|>", "\n").strip()
    return ["<|sep|>"] if "\n" in text else text.split()


def test_evaluate_a_toy_checkpoint_needs_no_data(toy_checkpoints, capsys):
    checkpoint = str(toy_checkpoints / "flm")
    assert main(["evaluate", "--checkpoint", checkpoint, "--steps", "4", "--num-samples", "6", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # independent reference: the checker and distance on the same samples
    pipe = load(checkpoint)
    gen = pipe.generate(6, 4, seed=0)
    story = language("toy:story")
    checks = [check_ids(story, pipe.tokenizer, row)[0] for row in gen.tokens.tolist()]
    assert result["toy_validity"] == sum(c.valid for c in checks) / 6
    assert result["toy_grammatical"] == sum(story.grammatical(check_words(pipe, row)) for row in gen.tokens) / 6
    assert result["toy_distance"] == pytest.approx(distance(story, checks))
    assert sum(result["toy_failures"].values()) == 6 - sum(c.valid for c in checks)
    assert result["data"]["toy_validity"] == 1.0 and 0 < result["data"]["toy_distance"] < 1
    assert "gen_ppl" not in result and "mauve" not in result


def test_bench_on_toy_checkpoints_writes_the_toy_table_and_figure(toy_checkpoints, tmp_path):
    checkpoints = [str(toy_checkpoints / "flm"), str(toy_checkpoints / "mdlm")]
    result = bench.run_bench(checkpoints, steps=[1, 2], num_samples=4, repeats=1)
    models = [r for r in result["rows"] if r["kind"] != "data"]
    assert [(r["kind"], r["steps"]) for r in models] == [("flm", 1), ("flm", 2), ("mdlm", 1), ("mdlm", 2)]
    assert all(0 <= r["toy_validity"] <= 1 and 0 <= r["toy_distance"] <= 1 for r in models)
    data = result["rows"][-1]
    assert (data["model"], data["toy_validity"]) == ("data (generator)", 1.0)
    assert result["settings"]["data"] == "toy:story" and result["speedups"] == []
    paths = bench.write_outputs(result, tmp_path)
    table = open(paths["md"]).read()
    assert "| Validity ↑ | Grammatical ↑ | Distance ↓ | Entropy | Broken constraints |" in table
    assert "Gen PPL" not in table
    figure = json.load(open(paths["plotly.json"]))
    assert len(figure["layout"]["annotations"]) >= 4  # the four panel titles
    assert {t["xaxis"] for t in figure["data"]} == {"x", "x2", "x3", "x4"}


def test_toy_and_corpus_models_do_not_mix_and_toy_models_take_no_evaluator(toy_checkpoints, flm_checkpoint,
                                                                              tiny_data):
    with pytest.raises(ValueError, match="same toy language"):
        bench.run_bench([str(toy_checkpoints / "flm"), str(flm_checkpoint)], str(tiny_data), steps=[1],
                        num_samples=2, repeats=1)
    with pytest.raises(ValueError, match="drop --evaluator"):
        bench.evaluate_checkpoint(str(toy_checkpoints / "flm"), evaluator=str(flm_checkpoint), num_samples=2)
    with pytest.raises(ValueError, match="needs --data DIR"):
        bench.evaluate_checkpoint(str(flm_checkpoint), num_samples=2)


def test_the_written_toy_claims_follow_the_shipped_benchmark():
    """README's and docs/experiments/toy.md's table is the shipped benchmark's, and their sentences hold on it."""
    from pathlib import Path

    from flm_core.toy.evaluation import steps_table

    root = Path(__file__).resolve().parents[1]
    rows = json.loads((root / "checkpoints" / "benchmarks-toy.json").read_text())["rows"]
    table = steps_table(rows)
    for doc in ("README.md", "docs/experiments/toy.md"):
        assert table in (root / doc).read_text(), f"{doc}: rerun steps_table on checkpoints/benchmarks-toy.json"
    at = {(r["kind"], r["steps"]): r for r in rows if r["kind"] != "data"}
    flows = [r for r in at.values() if r["kind"] != "ar"]
    assert f"{max(r['toy_validity'] for r in flows):.0%}" == "7%" and at[("ar", 31)]["toy_validity"] > 0.85  # "at most 7%"
    assert all(at[("mdlm", n)]["toy_grammatical"] == 0 for n in (1, 2, 4))  # "breaks every story"
    assert at[("mdlm", 128)]["toy_grammatical"] < 0.15 and at[("flm", 1)]["toy_grammatical"] == 0
    assert at[("fmlm", 1)]["toy_grammatical"] > at[("flm", 2)]["toy_grammatical"]  # "more than FLM at 2 steps"
    for n in (1, 2, 4, 8, 32, 128):  # "keeps the grammar at least as well as its teacher at every step count"
        assert at[("fmlm", n)]["toy_grammatical"] >= at[("flm", n)]["toy_grammatical"]
    for n in (4, 8, 32, 128):  # "but from 4 steps on it keeps fewer stories fully valid"
        assert at[("fmlm", n)]["toy_validity"] < at[("flm", n)]["toy_validity"]
    assert at[("fmlm", 1)]["toy_validity"] < 0.95  # "does not reach the 95%"

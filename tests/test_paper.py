"""The paper-reproduction command and Hub-id evaluators, end to end on the local Hub's stand-ins."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from flm_core.cli import main
from flm_core.metrics import HFEvaluator, load_evaluator
from flm_core.paper import authors_nll, authors_texts
from flm_core.released import released_tokenizer
from hub_server import hub, hub_repos  # noqa: F401 - fixtures


def test_authors_texts_keep_the_special_tokens(tmp_path):
    bert = released_tokenizer("bert-base-uncased", 30522, tmp_path)
    assert authors_texts(bert, torch.tensor([[101, 7592, 2088, 102, 0]])) == ["[CLS] hello world [SEP] [PAD]"]


def test_authors_nll_counts_every_token_and_the_first_eos(hub):
    scorer = load_evaluator("gpt2-large")  # a Hub id: downloaded from the local Hub
    assert isinstance(scorer, HFEvaluator) and hub.served("model.safetensors")
    tok, eos = scorer.tokenizer, scorer.tokenizer.eos_token_id
    texts = ["the cat sat on the mat. the dog ran", "a dog<|endoftext|>the sun", "the sun was warm in the park"]
    total, count = authors_nll(texts, scorer, max_length=8, batch_size=2)
    rows = [tok(t, add_special_tokens=False)["input_ids"][:8] for t in texts]
    widths = [max(len(r) for r in rows[:2])] * 2 + [len(rows[2])]  # batches of 2: the first two share a width
    assert len(rows[1]) < widths[1] and eos in rows[1]  # text 1 holds an EOS and is padded
    expected_total, expected_count = 0.0, 0
    for ids, width in zip(rows, widths):  # one text at a time, no padding: its ids, then one EOS if padded
        ids = ids + [eos] * (width > len(ids))
        logits = scorer.model(torch.tensor([ids])).logits[0, :-1].float().detach()
        nll = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
        first = [i for i, t in enumerate(ids) if t == eos][:1]
        counted = torch.tensor([t != eos or i in first for i, t in enumerate(ids)][1:])
        expected_total += float((nll * counted).sum())
        expected_count += int(counted.sum())
    assert count == expected_count
    assert total == pytest.approx(expected_total, rel=1e-5)


def test_reproduce_lm1b_end_to_end_on_stand_ins(hub, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "lm1b", "--num-samples", "3", "--batch-size", "2", "--flm-steps", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads((out / "reproduce_lm1b.json").read_text())
    rows = result["rows"]
    assert [(r["model"], r["steps"], r["nfe"]) for r in rows] == [
        ("david3684/FMLM-B-LM1B", 1, 1), ("david3684/FMLM-B-LM1B", 2, 2), ("david3684/FMLM-B-LM1B", 4, 4),
        ("david3684/FMLM-B-LM1B", 8, 8), ("david3684/FLM-B-LM1B", 2, 2)]
    assert result["evaluator"] == "gpt2-large" and all(r["num_samples"] == 3 for r in rows)
    for r in rows:  # random weights: Gen PPL far above 1, entropy of 16 mostly distinct ids near log 16
        assert 1 < r["gen_ppl"] < 1e6 and math.isfinite(r["gen_ppl"]) and r["scored_tokens"] > 0
        assert 1.5 < r["entropy"] <= math.log(16) + 1e-9
    table = (out / "reproduce_lm1b.md").read_text().splitlines()
    one_step = next(line for line in table if line.startswith("| david3684/FMLM-B-LM1B | 1 |"))
    assert "| 119.34 | 4.16 |" in one_step  # beside the authors' reported figure
    assert any(line.startswith("| david3684/FLM-B-LM1B | 2 |") and "| - | - |" in line for line in table)
    assert "| david3684/FMLM-B-LM1B | 8 |" in captured.out


def test_evaluate_takes_a_hub_id_then_reads_it_from_the_cache_offline(hub, tiny_data, flm_checkpoint, capsys,
                                                                      monkeypatch):
    from huggingface_hub import constants

    args = ["evaluate", "--checkpoint", str(flm_checkpoint), "--data", str(tiny_data), "--evaluator", "gpt2-large",
            "--steps", "2", "--num-samples", "2", "--no-mauve", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["evaluator"] == "gpt2-large" and first["gen_ppl"] > 1
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.refuse = 503
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["gen_ppl"] == pytest.approx(first["gen_ppl"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub.cache.parent / "empty"))
    assert main(args[:5] + ["--evaluator", "owner/no-such-model"] + args[7:]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "owner/no-such-model: not downloaded: HF_HUB_OFFLINE is set" in err

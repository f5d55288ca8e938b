"""The paper's presets at tiny scale: `prepare-data --preset paper-lm1b` (a stand-in for the LM1B dataset in
the HF cache, the real bert-base-uncased vocabulary) and `train flm --preset paper-lm1b` with the model shrunk by
flags: the authors' optimisation settings land in config.json, training runs and the checkpoint samples text."""
import json
import sys
import types

import pytest

import flm_core
from flm_core.cli import main
from flm_core.config import TRAINING_PRESETS, RunConfig
from flm_core.data import DATA_PRESETS, load_manifest

WORDS = "the a model flow token river stone light city music green old new runs makes sees".split()


@pytest.fixture(scope="module")
def lm1b_stand_in():
    """`datasets.load_dataset("lm1b", split="train")` answered by 600 short sentences."""
    rows = [{"text": " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(6 + i % 9)) + f" {i}."}
            for i in range(600)]
    calls = []

    def load_dataset(name, split, **options):
        calls.append((name, split, options))
        return iter(rows)

    return types.SimpleNamespace(load_dataset=load_dataset, calls=calls)


@pytest.fixture(scope="module")
def lm1b_data(lm1b_stand_in, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper-lm1b") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "datasets", lm1b_stand_in)
        assert main(["prepare-data", "--preset", "paper-lm1b", "--out", str(out), "--val-fraction", "0.2"]) == 0
    return out


def test_the_data_preset_reads_lm1b_with_bert_at_length_128(lm1b_data, lm1b_stand_in):
    manifest = load_manifest(lm1b_data)
    assert lm1b_stand_in.calls == [("lm1b", "train", {})]
    assert manifest["source"] == "lm1b" == DATA_PRESETS["paper-lm1b"]["source"]
    assert manifest["settings"]["tokenizer"] == "bert-base-uncased" and manifest["settings"]["seq_len"] == 128
    assert manifest["tokenizer_vocab_size"] == 30522
    assert DATA_PRESETS["paper-owt"] == {"source": "openwebtext", "tokenizer": "gpt2", "seq_len": 1024}


def test_flags_override_the_data_preset(lm1b_stand_in, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", lm1b_stand_in)
    assert main(["prepare-data", "--preset", "paper-lm1b", "--seq-len", "32", "--out", str(tmp_path)]) == 0
    assert load_manifest(tmp_path)["settings"]["seq_len"] == 32


def test_the_training_preset_trains_with_the_authors_settings(lm1b_data, tmp_path, capsys):
    out = tmp_path / "flm"
    args = ["train", "flm", "--preset", "paper-lm1b", "--data", str(lm1b_data), "--out", str(out),
            "--hidden-size", "32", "--n-blocks", "1", "--n-heads", "2", "--cond-dim", "16",  # tiny scale
            "--batch-size", "4", "--max-steps", "2", "--eval-every", "1", "--eval-batches", "1", "--precision", "fp32"]
    assert main(args) == 0
    config = RunConfig.load(out / "config.json")
    paper = TRAINING_PRESETS["paper-lm1b"]["training"]
    for name in ("lr", "warmup_steps", "min_lr_ratio", "weight_decay", "adam_beta2", "grad_clip", "ema"):
        assert getattr(config.training, name) == paper[name], name
    assert (config.training.lr, config.training.adam_beta2, config.training.ema) == (3e-4, 0.999, 0.9999)
    assert config.training.batch_size == 4 and config.training.max_steps == 2  # the flags given win
    assert config.model.dropout == 0.1 and config.model.vocab_size == 30522 and config.model.seq_len == 128
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out), "--steps", "2", "--num-samples", "2", "--seed", "0",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["texts"]) == 2 and all(isinstance(t, str) for t in result["texts"])
    pipe = flm_core.load(out)
    assert pipe.generate(1, steps=1, seed=0).tokens.shape == (1, 128)


def test_the_training_presets_are_the_paper_small_model():
    assert {name: preset["model"] for name, preset in TRAINING_PRESETS.items()} == {"paper-lm1b": "small",
                                                                                   "paper-owt": "small"}
    assert set(TRAINING_PRESETS) == set(DATA_PRESETS)  # each training preset has its data preset (length, tokenizer)
    assert TRAINING_PRESETS["paper-owt"]["training"]["batch_size"] == 512


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_kinds_that_need_our_special_tokens_refuse_a_bert_folder(lm1b_data, tmp_path, capsys, kind):
    assert main(["train", kind, "--data", str(lm1b_data), "--out", str(tmp_path), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "prepare the data without --tokenizer" in err and len(err.strip().splitlines()) == 1


def test_the_training_presets_are_the_flm_runs(lm1b_data, flm_checkpoint, tmp_path, capsys):
    assert main(["train", "fmlm", "--preset", "paper-lm1b", "--data", str(lm1b_data), "--out", str(tmp_path),
                 "--teacher", str(flm_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "paper's flm run" in err and "docs/recipe.md" in err and len(err.strip().splitlines()) == 1


def test_a_vocabulary_size_with_a_data_preset_names_the_preset(tmp_path, capsys):
    assert main(["prepare-data", "--preset", "paper-owt", "--vocab-size", "4096", "--out", str(tmp_path)]) == 2
    assert "--preset paper-owt uses the gpt2 tokenizer: drop --vocab-size" in capsys.readouterr().err

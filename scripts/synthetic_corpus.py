"""Write a large text corpus made here: random sentences over the default corpus's vocabulary.

Words are drawn by their frequency in the wiki-vital summaries; a sentence has 6-30 words, a document 2-12
sentences; documents are JSONL lines spread over --files files. Memory stays flat (one document at a time),
so the size is limited by the disk only. Made for scale tests of `prepare-data` and training, not for
learning anything (no grammar).

    python scripts/synthetic_corpus.py --megabytes 500 --out /tmp/corpus500
    python -m flm_core prepare-data --source /tmp/corpus500 --out /tmp/data500
"""
from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

import numpy as np

from flm_core.data import iter_documents


def vocabulary(source: str = "wiki-vital", size: int = 30_000) -> tuple[list[str], np.ndarray]:
    """The `size` most frequent lower-case words of the source and their relative frequencies."""
    counts = collections.Counter(w for doc in iter_documents(source) for w in re.findall(r"[a-z]+", doc.lower()))
    words, freq = zip(*counts.most_common(size))
    freq = np.asarray(freq, dtype=np.float64)
    return list(words), freq / freq.sum()


def documents(words: list[str], probs: np.ndarray, seed: int):
    """An endless stream of random documents."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(probs)
    while True:
        sentences = []
        for _ in range(rng.integers(2, 13)):
            ids = np.searchsorted(cumulative, rng.random(rng.integers(6, 31)) * cumulative[-1])
            sentence = " ".join(words[i] for i in ids)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        yield " ".join(sentences)


def write_corpus(out: Path, megabytes: float, files: int = 8, seed: int = 0, source: str = "wiki-vital") -> int:
    """Write about `megabytes` MB (10^6 bytes) of JSONL documents to out/part-NNN.jsonl; returns bytes written."""
    out.mkdir(parents=True, exist_ok=True)
    words, probs = vocabulary(source)
    stream = documents(words, probs, seed)
    per_file, written = megabytes * 1e6 / files, 0
    for index in range(files):
        size = 0
        with open(out / f"part-{index:03d}.jsonl", "w", encoding="utf-8") as f:
            while size < per_file:
                line = json.dumps({"text": next(stream)}) + "\n"
                f.write(line)
                size += len(line.encode())
        written += size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    written = write_corpus(args.out, args.megabytes, args.files, args.seed)
    print(json.dumps({"out": str(args.out), "bytes": written, "files": args.files}))


if __name__ == "__main__":
    main()

"""Byte-level BPE tokenizers (and word-level ones for the toy languages) with the three special tokens the
models rely on.

Ids 0, 1, 2 are always SEPARATOR (between documents), MASK (masked diffusion)
and PAD. Token arrays on disk are uint16, so vocabularies stay below 65536.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from flm_core.checkpoint import TOKENIZER_FILE
from flm_core.errors import one_line

SEPARATOR = "<|sep|>"
MASK = "<|mask|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (SEPARATOR, MASK, PAD)
SEP_ID, MASK_ID, PAD_ID = 0, 1, 2
FOREIGN_BOUNDARIES = ("[CLS]", "[SEP]", "<|endoftext|>")  # BERT (LM1B) and GPT-2 (OWT) line ends

MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte plus the special tokens
MAX_VOCAB_SIZE = 65535  # ids are stored as uint16


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE tokenizer; same texts and vocab_size -> identical tokenizer.json.

    The result may hold fewer than vocab_size tokens when the texts run out of merges.
    """
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size must be between {MIN_VOCAB_SIZE} (256 bytes + {len(SPECIAL_TOKENS)} "
            f"special tokens) and {MAX_VOCAB_SIZE} (uint16 token arrays), got {vocab_size}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    _check_special_ids(tokenizer, "trained tokenizer")
    tokenizer.encode_special_tokens = True
    return tokenizer


def word_tokenizer(words: Sequence[str]) -> Tokenizer:
    """A word-level tokenizer over a fixed vocabulary (the toy languages): the special tokens, then the
    words in order; text splits on whitespace and decodes with single spaces. A word outside the
    vocabulary cannot be encoded (tokenizers raises: there is no unknown token)."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *dict.fromkeys(words)))}
    if len(vocab) != len(SPECIAL_TOKENS) + len(words):
        raise ValueError("the words of a word-level vocabulary must be distinct and not special tokens")
    tokenizer = Tokenizer(models.WordLevel(vocab))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    _check_special_ids(tokenizer, "word-level tokenizer")
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer.json, given the file or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise ValueError(f"corrupt tokenizer file {path}: {one_line(e)}") from None
    if not is_foreign(tokenizer):
        _check_special_ids(tokenizer, str(path))
        tokenizer.encode_special_tokens = True
    return tokenizer


def is_foreign(tokenizer: Tokenizer) -> bool:
    """A tokenizer that is not ours (BERT WordPiece, GPT-2 BPE): no SEPARATOR at id 0, but one of their
    document boundaries ([SEP], <|endoftext|>)."""
    return tokenizer.token_to_id(SEPARATOR) != SEP_ID and any(
        tokenizer.token_to_id(t) is not None for t in FOREIGN_BOUNDARIES)


def boundary_id(tokenizer: Tokenizer) -> int:
    """The id written after each document when documents are packed into one stream: SEPARATOR for our
    tokenizers, [SEP] for BERT (the authors' LM1B wrapping) and <|endoftext|> for GPT-2 (OpenWebText)."""
    if not is_foreign(tokenizer):
        return SEP_ID
    return next(tokenizer.token_to_id(t) for t in ("[SEP]", "<|endoftext|>", "[CLS]")
                if tokenizer.token_to_id(t) is not None)


def document_start_id(tokenizer: Tokenizer) -> int:
    """The id that starts a document: SEPARATOR for our tokenizers, [CLS] (BERT) or <|endoftext|> (GPT-2)."""
    if tokenizer.token_to_id(SEPARATOR) == SEP_ID:
        return SEP_ID
    for token in ("[CLS]", "<|endoftext|>"):
        if tokenizer.token_to_id(token) is not None:
            return tokenizer.token_to_id(token)
    raise ValueError("this tokenizer has no document boundary token ([CLS], <|endoftext|> or <|sep|>)")


def decode(tokenizer: Tokenizer, ids: Sequence[int]) -> str:
    """Decode ids to text, one line per document or sentence.

    Our tokenizers (SEPARATOR at id 0): SEPARATOR becomes "\\n", MASK and PAD are dropped.
    Foreign tokenizers (the released checkpoints): BERT's [CLS] / [SEP] and GPT-2's <|endoftext|>
    end a line, empty lines are dropped, and the other special tokens ([PAD], [MASK], ...) are skipped.
    """
    ours = tokenizer.token_to_id(SEPARATOR) == SEP_ID
    boundaries = {SEP_ID} if ours else {tokenizer.token_to_id(t) for t in FOREIGN_BOUNDARIES} - {None}
    pieces, run = [], []
    for i in ids:
        i = int(i)
        if i in boundaries:
            pieces.append(tokenizer.decode(run, skip_special_tokens=True))
            run = []
        else:
            run.append(i)
    pieces.append(tokenizer.decode(run, skip_special_tokens=True))
    return "\n".join(pieces if ours else [p for p in pieces if p.strip()])


def one_hot(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B, L) integer tokens -> (B, L, K) float one-hot vectors, K = vocab_size."""
    return F.one_hot(tokens.long(), vocab_size).float()


@functools.lru_cache(maxsize=1)
def byte_level_alphabet() -> dict[str, int]:
    """Character -> byte of the byte-level BPE alphabet (GPT-2's `bytes_to_unicode`, which tokenizers'
    ByteLevel uses): a token's string writes each of its bytes as one printable character.

    tokenizers exposes the 256 characters (`ByteLevel.alphabet()`) but not which byte each stands for,
    and its pre-tokenizer maps only bytes of valid UTF-8 text, so the table is built here: printable
    Latin-1 bytes stand for themselves, the other bytes take the characters from U+0100 on, in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + i): b for i, b in enumerate(others)})
    return table


def token_bytes(tokenizer: Tokenizer, token_id: int) -> bytes | None:
    """The bytes a token of a byte-level tokenizer stands for (a token may hold part of a UTF-8 character,
    e.g. b"\\xe2\\x80", two thirds of "—"); None for a special token and for other tokenizers (BERT's)."""
    token_id = int(token_id)
    if not isinstance(tokenizer.decoder, decoders.ByteLevel) or token_id in tokenizer.get_added_tokens_decoder():
        return None
    piece, table = tokenizer.id_to_token(token_id) or "", byte_level_alphabet()
    if not piece or not all(c in table for c in piece):
        return None
    return bytes(table[c] for c in piece)


def _check_special_ids(tokenizer: Tokenizer, name: str) -> None:
    for token, expected in zip(SPECIAL_TOKENS, (SEP_ID, MASK_ID, PAD_ID)):
        if tokenizer.token_to_id(token) != expected:
            raise ValueError(f"{name}: special token {token} must have id {expected}")



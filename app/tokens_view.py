"""Tokens as the views write them: a printable string per token id, and running text of such strings."""
from __future__ import annotations

import re
from typing import Sequence

from flm_core.tokens import MASK_ID, PAD_ID, SEP_ID, token_bytes

SPECIAL_SHOWN = {SEP_ID: "⏎", MASK_ID: "░", PAD_ID: "∅"}
ESCAPED_BYTE = re.compile(r"\\x([0-9a-f]{2})")


def token_strings(tokenizer, vocab_size: int) -> list[str]:
    """Printable string of every token id (byte-level pieces decoded one by one; specials as symbols).

    A token that is only part of a UTF-8 character decodes to U+FFFD on its own; it is shown by its
    bytes instead (e.g. "\\xe2\\x80"), so distinct tokens stay distinguishable in the views. A tokenizer
    that writes a space between any two tokens (word-level: the toy languages) gets each word with a leading
    space, as byte-level BPE has its word-initial tokens, so running text of the strings reads as decoding."""
    pieces = tokenizer.decode_batch([[i] for i in range(vocab_size)], skip_special_tokens=False)
    words = [i for i in range(vocab_size) if i not in SPECIAL_SHOWN][:2]
    spaced = len(words) == 2 and tokenizer.decode(words) == f"{pieces[words[0]]} {pieces[words[1]]}"
    out = []
    for i, piece in enumerate(pieces):
        if i in SPECIAL_SHOWN:
            out.append(SPECIAL_SHOWN[i])
            continue
        raw = token_bytes(tokenizer, i) if "\ufffd" in piece else None
        out.append((" " if spaced else "") + (piece if raw is None else raw.decode("utf-8", errors="backslashreplace")))
    return out


def cell_strings(tokens: Sequence[str]) -> list[str]:
    """Token strings for views that show one token per cell (superposition, argmax grid, diff): where every word
    starts with a space (a word-level vocabulary: the toy languages) the space marks nothing and is dropped; BPE
    pieces stay as they are (their leading space marks a word start)."""
    words = [t for i, t in enumerate(tokens) if i not in SPECIAL_SHOWN]
    if words and all(t.startswith(" ") for t in words):
        return [t if i in SPECIAL_SHOWN else t[1:] for i, t in enumerate(tokens)]
    return list(tokens)


def _utf8_bytes(piece: str) -> bytes:
    """A token string of token_strings back to bytes ("\\xc3" stands for the byte 0xc3)."""
    out, last = bytearray(), 0
    for match in ESCAPED_BYTE.finditer(piece):
        out += piece[last:match.start()].encode() + bytes([int(match.group(1), 16)])
        last = match.end()
    return bytes(out + piece[last:].encode())


def joined_pieces(pieces: Sequence[str]) -> list[str]:
    """Running text of consecutive token strings: a character split over tokens (shown alone as
    "\\xc3", "\\xa8") is written whole, on the first of its tokens; the others become empty. Bytes that
    form no character are written as U+FFFD, as a text decoder does."""
    out = list(pieces)
    i = 0
    while i < len(out):
        if not ESCAPED_BYTE.search(out[i]):
            i += 1
            continue
        j = i + 1
        while j < len(out) and ESCAPED_BYTE.search(out[j]):
            j += 1
        text = b"".join(_utf8_bytes(p) for p in pieces[i:j]).decode("utf-8", errors="replace")
        out[i:j] = [text] + [""] * (j - i - 1)
        i = j
    return out

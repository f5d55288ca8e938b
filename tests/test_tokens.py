import json

import pytest
import torch

from flm_core.tokens import (
    MASK,
    MASK_ID,
    PAD,
    PAD_ID,
    SEP_ID,
    SEPARATOR,
    byte_level_alphabet,
    decode,
    load_tokenizer,
    one_hot,
    token_bytes,
    train_tokenizer,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A flow language model moves one-hot vectors along a straight path.",
    "Numbers like 1815 and 2024, punctuation; and (brackets) appear too!",
] * 5
ASCII = "Hello, world!  Two spaces,\ttabs and\nnew lines.  "
UNICODE = "naïve café — 東京 🙂 Ωμέγα\u200b end"


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS, 300)


def test_special_token_ids(tok):
    assert (SEP_ID, MASK_ID, PAD_ID) == (0, 1, 2)
    assert [tok.token_to_id(t) for t in (SEPARATOR, MASK, PAD)] == [0, 1, 2]


@pytest.mark.parametrize("text", [ASCII, UNICODE, ""])
def test_round_trip(tok, text):
    ids = tok.encode(text).ids
    assert all(i > PAD_ID for i in ids)
    assert decode(tok, ids) == text


def test_literal_special_strings_are_plain_text(tok):
    text = f"a {SEPARATOR} b {MASK}"
    ids = tok.encode(text).ids
    assert SEP_ID not in ids and MASK_ID not in ids
    assert decode(tok, ids) == text


def test_decode_renders_separator_and_skips_mask_pad(tok):
    ab, cd = tok.encode("ab").ids, tok.encode("cd").ids
    assert decode(tok, [*ab, SEP_ID, MASK_ID, *cd, PAD_ID, SEP_ID]) == "ab\ncd\n"
    assert decode(tok, torch.tensor([SEP_ID, *ab])) == "\nab"


def test_decode_any_id_in_range(tok):
    """Any run of ids decodes to its tokens' bytes as UTF-8, undecodable bytes as U+FFFD; SEPARATOR ends a line."""
    ids = list(range(PAD_ID + 1, tok.get_vocab_size()))
    for order in (ids, ids[::-1]):
        text = b"".join(token_bytes(tok, i) for i in order).decode("utf-8", errors="replace")
        assert decode(tok, [MASK_ID, *order, SEP_ID, *order[:3]]) == text + "\n" + decode(tok, order[:3])
    assert decode(tok, tok.encode("café").ids[:-1]) == "caf\ufffd"  # "é" is two bytes, its last one missing


def test_byte_level_alphabet_is_the_tokenizers_one():
    from tokenizers import pre_tokenizers

    table = byte_level_alphabet()
    assert set(table) == set(pre_tokenizers.ByteLevel.alphabet()) and sorted(table.values()) == list(range(256))
    assert (table["a"], table["Ġ"], table["Ċ"]) == (ord("a"), ord(" "), ord("\n"))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for text in (ASCII, UNICODE):
        (written, _), = byte_level.pre_tokenize_str(text)
        assert bytes(table[c] for c in written) == text.encode("utf-8")


def test_token_bytes_spell_the_text_byte_for_byte(tok):
    ids = tok.encode(UNICODE).ids
    assert b"".join(token_bytes(tok, i) for i in ids) == UNICODE.encode("utf-8")
    assert [token_bytes(tok, i) for i in tok.encode("—").ids] == [b"\xe2", b"\x80", b"\x94"]  # one token a byte
    assert [token_bytes(tok, i) for i in tok.encode(" the").ids] == [b" t", b"he"]  # "Ġt" is the bytes " t"
    assert [token_bytes(tok, i) for i in (SEP_ID, MASK_ID, PAD_ID)] == [None, None, None]


def test_training_is_deterministic():
    a = train_tokenizer(TEXTS, 320).to_str()
    b = train_tokenizer(list(TEXTS), 320).to_str()
    assert a == b
    assert len(json.loads(a)["model"]["vocab"]) <= 320


@pytest.mark.parametrize("vocab_size", [0, 258, 65536])
def test_vocab_size_bounds(vocab_size):
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(TEXTS, vocab_size)


def test_save_and_load(tok, tmp_path):
    tok.save(str(tmp_path / "tokenizer.json"))
    for path in (tmp_path, tmp_path / "tokenizer.json"):
        loaded = load_tokenizer(path)
        assert loaded.to_str() == tok.to_str()
        assert loaded.encode(f"x{SEPARATOR}").ids == tok.encode(f"x{SEPARATOR}").ids


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_tokenizer(tmp_path / "nope.json")


def test_load_corrupt(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": "1.0", "model": ')
    with pytest.raises(ValueError, match="broken.json") as info:
        load_tokenizer(path)
    assert "\n" not in str(info.value)


def test_load_rejects_wrong_special_ids(tmp_path):
    from tokenizers import Tokenizer, models

    path = tmp_path / "other.json"
    Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "c": 2}, merges=[])).save(str(path))
    with pytest.raises(ValueError, match="other.json"):
        load_tokenizer(path)


def test_one_hot():
    tokens = torch.tensor([[0, 2], [1, 1]])
    x = one_hot(tokens, 3)
    assert x.shape == (2, 2, 3) and x.dtype == torch.float32
    assert torch.equal(x.argmax(-1), tokens)
    assert torch.equal(x.sum(-1), torch.ones(2, 2))

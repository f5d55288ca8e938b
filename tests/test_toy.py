"""The toy languages: checker verdicts on hand-written stories, exact probabilities that sum to one on
an enumerable variant, laws against enumeration and sampling, the distance, and the data folder."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from flm_core.data import load_blocks, load_manifest, one_per_block, prepare
from flm_core.tokens import SEP_ID, decode, load_tokenizer, word_tokenizer
from flm_core.toy import Check, check_ids, check_text, distance, documents, failures, language
from flm_core.toy.align import AlignLanguage
from flm_core.toy.story import StoryLanguage

STORY = language("toy:story")
GOOD = "anna has 3 red apples . she gives 1 to ben . she finds 4 more apples . now anna has 6 red apples ."
SMALL = StoryLanguage(female=("ann",), male=("bob", "cy"), colours=("red", "tan"), fruits=(("fig", "figs"),),
                      max_count=2, min_events=1, max_events=2)


def test_a_valid_story_has_its_exact_probability():
    check = check_text(STORY, GOOD)
    assert check.valid and check.constraint is None
    # owner, colour, fruit, N0, #events (2 or 3); give from 3 (branch 1/2, k of 3, recipient of 15); find from 2
    # (1/2, k of 7)
    expected = -math.log(16 * 6 * 6 * 9 * 2) + math.log(0.5 / 3 / 15) + math.log(0.5 / 7)
    assert check.log_prob == pytest.approx(expected, abs=1e-12)
    assert check.attributes == {"owner": "anna", "colour": "red", "fruit": "apples", "start": 3, "events": 2,
                                "end": 6}


@pytest.mark.parametrize("text, constraint, position", [
    (GOOD.replace("she gives", "he gives"), "pronoun", 6),
    (GOOD.replace("has 3 red apples", "has 1 red apples"), "plural", 4),
    (GOOD.replace("gives 1", "gives 4"), "count", 8),
    (GOOD.replace("finds 4 more apples", "finds 8 more apples"), "count", 14),
    (GOOD.replace("to ben", "to anna"), "recipient", 10),
    (GOOD.replace("more apples", "more pears"), "fruit", 16),
    (GOOD.replace("more apples", "more apple"), "plural", 16),
    (GOOD.replace("now anna", "now mia"), "owner", 19),
    (GOOD.replace("has 6", "has 5"), "total", 21),
    (GOOD.replace("6 red", "6 blue"), "colour", 22),
    (GOOD.replace("6 red apples", "6 red pears"), "fruit", 23),
    (GOOD.replace("6 red apples", "6 red apple"), "plural", 23),
    (GOOD.replace("red apples .", "red apples", 1), "grammar", 5),
    (GOOD.replace("ben", "bob"), "vocabulary", 10),
    (GOOD + " anna", "grammar", 25),
    (GOOD.replace(" . now", " .\nnow"), "grammar", 18),
    ("anna has 3 red apples . she gives 1 to ben . now anna has 2 red apples .", "grammar", 12),
    ("anna has 0 red apples . she finds 1 more apple . she finds 1 more apple . now anna has 2 red apples .",
     "count", 2),
    ("anna has 3 red apples . she finds 1 more apple . she finds 1 more apple . she finds 1 more apple . "
     "she finds 1 more apple . now anna has 7 red apples .", "grammar", 24),
    ("anna has 3", "grammar", 3),
    ("", "grammar", 0),
])
def test_the_checker_names_the_first_broken_constraint_and_where(text, constraint, position):
    check = check_text(STORY, text)
    assert (check.valid, check.constraint, check.position) == (False, constraint, position), check.message
    assert check.log_prob == -math.inf and check.attributes == {}
    # a broken agreement keeps the grammar; a grammar or vocabulary failure does not (except an early count 0,
    # which is grammatical: 0 is a number)
    assert check.grammatical == (constraint not in ("grammar", "vocabulary"))


def test_layout_line_breaks_at_the_ends_are_not_part_of_the_story():
    assert check_text(STORY, "\n" + GOOD + "\n\n\n").valid


def test_every_generated_story_is_grammatical_and_the_grammar_ignores_agreement():
    assert all(STORY.grammatical(d.split()) for d in documents(STORY, 500, seed=4))
    assert STORY.grammatical("mia has 0 blue pear . he gives 9 to mia . now ben has 7 red plums . x".split()[:-1]) is False
    assert STORY.grammatical("mia has 0 blue pear . he gives 9 to mia . he finds 1 more plums . "
                             "now ben has 7 red plums .".split())
    assert check_text(STORY, GOOD).grammatical


def test_align_checker():
    lang = AlignLanguage(vocab=8, length=5)
    assert check_text(lang, "w3 w3 w3 w3 w3") == Check(True, log_prob=-math.log(8), attributes={"token": "w3"},
                                                       grammatical=True)
    assert check_text(lang, "w3 w3 w4 w3 w3").grammatical and not check_text(lang, "w3 w3 w4").grammatical
    assert check_text(lang, "w3 w3 w4 w3 w3").constraint == "align" and check_text(lang, "w3 w3 w4").position == 2
    assert check_text(lang, "w3 w3 w3").constraint == "grammar"
    assert check_text(lang, "w3 w9 w3 w3 w3").constraint == "vocabulary"


@pytest.mark.parametrize("lang", [SMALL, AlignLanguage(vocab=12, length=4)], ids=["story", "align"])
def test_enumerated_documents_are_distinct_valid_and_their_probabilities_sum_to_one(lang):
    items = list(lang.enumerate())
    texts = [" ".join(words) for words, _ in items]
    assert len(set(texts)) == len(texts) > 10
    assert sum(p for _, p in items) == pytest.approx(1.0, abs=1e-12)
    for words, p in items:
        check = lang.check(words)
        assert check.valid, (words, check.message)
        assert math.exp(check.log_prob) == pytest.approx(p, rel=1e-12)
        assert len(words) <= lang.seq_len - 1


def test_the_generator_draws_documents_with_the_checkers_probabilities():
    items = {" ".join(words): p for words, p in SMALL.enumerate()}
    n = 40_000
    counts = Counter(documents(SMALL, n, seed=3))
    assert set(counts) <= set(items)
    # Pearson chi-square over the enumerated support: mean = degrees of freedom, sd = sqrt(2 dof)
    chi2 = sum((counts[t] - n * p) ** 2 / (n * p) for t, p in items.items())
    dof = len(items) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof)


@pytest.mark.parametrize("group", SMALL.attribute_groups + (("owner", "end", "colour"),))
def test_attribute_laws_match_enumeration(group):
    expected: dict = {}
    for words, p in SMALL.enumerate():
        attributes = SMALL.check(words).attributes
        key = tuple(attributes[a] for a in group)
        expected[key] = expected.get(key, 0.0) + p
    law = SMALL.law(group)
    assert set(law) == set(expected)
    for key, p in expected.items():
        assert law[key] == pytest.approx(p, abs=1e-12)


def test_distance_is_zero_for_the_law_one_for_garbage_and_shrinks_with_samples():
    lang = AlignLanguage(vocab=4, length=3)
    exact = [lang.check(words) for words, _ in lang.enumerate()]  # each token once: the law exactly
    assert distance(lang, exact) == pytest.approx(0.0, abs=1e-12)
    garbage = [check_text(lang, "w0 w1 w2")] * 5
    assert distance(lang, garbage) == pytest.approx(1.0)
    assert failures(garbage) == {"align": 5}
    half = exact + [check_text(lang, "w0 w1 w2")] * 4  # half invalid: TV = 1/2
    assert distance(lang, half) == pytest.approx(0.5)
    small = distance(STORY, [check_text(STORY, d) for d in documents(STORY, 200, seed=1)])
    large = distance(STORY, [check_text(STORY, d) for d in documents(STORY, 5000, seed=1)])
    assert 0.0 < large < small < 0.2
    with pytest.raises(ValueError, match="at least one"):
        distance(STORY, [])


def test_check_ids_reads_every_token_and_gives_the_token_offset():
    tokenizer = word_tokenizer(STORY.words)
    ids = tokenizer.encode(GOOD).ids
    block = one_per_block([ids], STORY.seq_len)[0].tolist()
    check, offset = check_ids(STORY, tokenizer, block)
    assert check.valid and offset == 1
    masked = list(block)
    masked[1 + 3] = 1  # MASK where the colour goes: decoding would drop it, the checker must not
    check, offset = check_ids(STORY, tokenizer, masked)
    assert (check.constraint, check.position + offset) == ("vocabulary", 4)
    broken = list(block)
    broken[1 + 12] = SEP_ID
    check, offset = check_ids(STORY, tokenizer, broken)
    assert (check.constraint, check.position + offset) == ("grammar", 13)
    assert check_text(STORY, decode(tokenizer, block)).valid


def test_unknown_toy_language_is_one_line():
    with pytest.raises(ValueError, match="unknown toy language 'toy:nope': use one of toy:story, toy:align"):
        language("toy:nope")


def test_prepare_toy_writes_one_valid_story_per_block(tmp_path, monkeypatch):
    monkeypatch.setattr("flm_core.data.TOY_DOCUMENTS", {"train": 300, "val": 20})
    manifest = prepare("toy:story", tmp_path / "toy")
    assert manifest["source"] == "toy:story" and manifest["settings"]["seq_len"] == STORY.seq_len == 32
    assert load_manifest(tmp_path / "toy") == manifest
    tokenizer = load_tokenizer(tmp_path / "toy")
    assert tokenizer.get_vocab_size() == 3 + len(STORY.words)
    train = load_blocks(tmp_path / "toy", "train")
    assert train.shape == (300, 32) and (train[:, 0] == SEP_ID).all()
    texts = [decode(tokenizer, row.tolist()) for row in train]
    assert texts == ["\n" + d + "\n" * (31 - len(d.split())) for d in documents(STORY, 300, seed=0)]
    assert all(check_ids(STORY, tokenizer, row.tolist())[0].valid for row in train)
    again = prepare("toy:story", tmp_path / "again")
    assert again["sha256"] == manifest["sha256"]  # deterministic
    longer = prepare("toy:align", tmp_path / "align", seq_len=20)
    assert longer["settings"]["seq_len"] == 20 and load_blocks(tmp_path / "align", "val").shape == (20, 20)


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocab_size=512), "fixed word-level vocabulary: drop --vocab-size"),
    (dict(seq_len=16), "needs blocks of at least 32 tokens"),
])
def test_prepare_toy_refuses_settings_the_language_fixes(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare("toy:story", tmp_path / "toy", **kwargs)


def test_one_per_block_refuses_a_document_that_does_not_fit():
    assert one_per_block([[5, 6]], 4).tolist() == [[SEP_ID, 5, 6, SEP_ID]]
    with pytest.raises(ValueError, match="does not fit"):
        one_per_block([[5, 6, 7, 8]], 4)
    assert np.array_equal(one_per_block([], 4), np.zeros((0, 4), dtype=np.uint16))


def test_factorised_samples_keep_each_positions_marginal_and_lose_the_correlations():
    from flm_core.toy.evaluation import factorised_samples, position_marginals

    lang = AlignLanguage(vocab=4, length=3)
    tokenizer = word_tokenizer(lang.words)
    blocks = one_per_block([tokenizer.encode(d).ids for d in documents(lang, 4000, seed=0)], lang.seq_len)
    marginals = position_marginals(blocks, tokenizer.get_vocab_size())
    assert marginals.shape == (4, 7) and np.allclose(marginals.sum(1), 1)
    assert marginals[0, SEP_ID] == 1.0  # the document start
    samples = factorised_samples(marginals, 20_000, seed=1)
    assert np.abs(position_marginals(samples, 7) - marginals).max() < 0.02
    valid = np.mean([check_ids(lang, tokenizer, row)[0].valid for row in samples[:2000]])
    assert abs(valid - 4 * 0.25 ** 3) < 0.03  # P(three independent uniform words agree) = 4 / 4^3
    assert np.array_equal(factorised_samples(marginals, 5, seed=2), factorised_samples(marginals, 5, seed=2))

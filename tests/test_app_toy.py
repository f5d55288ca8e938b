"""The app on toy-language checkpoints (the toy world issue): labels, Generate's verdicts, the "Why one step works"
page and Trajectory, under AppTest with tiny toy:story checkpoints trained here for 3 steps (never the shipped ones);
and the pure helpers (app.toy_marks, app.why_one_step) on hand-made samples."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from app import catalogue
from app.tokens_view import cell_strings, token_strings
from app.toy_marks import Mark, focus_token, marks, samples_html, tally
from app.why_one_step import explanation, headline
from conftest import train_args
from flm_core import bench
from flm_core.cli import main
from flm_core.data import one_per_block, prepare
from flm_core.pipeline import load
from flm_core.tokens import SEP_ID, word_tokenizer
from flm_core.toy import check_ids, documents, language
from test_app import APP, make_tiny_checkpoints

STORY = language("toy:story")


def make_toy_checkpoints(root: Path) -> Path:
    """Tiny toy:story checkpoints of every kind under root/<kind>-toy (3 training steps each; the FMLM distilled from
    the FLM), and a copy of the MDLM named another-mdlm, which the pickers list before mdlm-toy."""
    data = root / "data"
    with mock.patch.dict("flm_core.data.TOY_DOCUMENTS", {"train": 64, "val": 16}):
        prepare("toy:story", data)
    for kind in ("flm", "mdlm", "ar"):
        assert main(train_args(kind, data, root / f"{kind}-toy", "--max-steps", "3")) == 0
    assert main(train_args("fmlm", data, root / "fmlm-toy", "--max-steps", "3", "--teacher", str(root / "flm-toy"))) == 0
    shutil.copytree(root / "mdlm-toy", root / "another-mdlm")
    return root


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return make_toy_checkpoints(tmp_path_factory.mktemp("toy_app"))


@pytest.fixture(scope="module")
def toy_bench(toy_root) -> Path:
    """benchmarks-toy.json (and .md, ...) of the tiny toy models at 1 and 2 steps, in toy_root."""
    result = bench.run_bench([str(toy_root / f"{k}-toy") for k in ("fmlm", "flm", "mdlm")], steps=[1, 2], num_samples=4,
                             repeats=1)
    return Path(bench.write_outputs(result, toy_root, name="benchmarks-toy")["json"])


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus_app")
    make_tiny_checkpoints(root)
    return root


def _app(monkeypatch, *roots: Path, benchmarks: Path | None = None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(catalogue.ENV_CHECKPOINTS, os.pathsep.join(str(r) for r in roots))
    if benchmarks is None:
        monkeypatch.delenv(catalogue.ENV_BENCHMARKS, raising=False)
    else:
        monkeypatch.setenv(catalogue.ENV_BENCHMARKS, str(benchmarks))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _ok(at)
    return at


def _ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _toy_boxes(at, lane: str) -> list[str]:
    """The marked sample boxes of one lane kind, in sample order (each box up to the next one)."""
    start = '<div class="flm-text flm-toy" '
    return [box for h in at.get("html") for box in str(h.proto.body).split(start)[1:]
            if box.startswith(f'data-lane="{lane}"')]


def _expected(path: Path, tokens) -> list[tuple]:
    """(valid, token index of the first broken constraint, message) of each sample, by the checker itself."""
    tokenizer = load(str(path)).tokenizer
    out = []
    for row in np.asarray(tokens).tolist():
        check, offset = check_ids(STORY, tokenizer, row)
        out.append((check.valid, None if check.valid else offset + check.position, check.message))
    return out


def _assert_marked(boxes: list[str], expected: list[tuple]) -> None:
    assert len(boxes) == len(expected)
    for box, (valid, token, message) in zip(boxes, expected):
        assert f'data-valid="{int(valid)}"' in box and box.count('class="flm-badge"') == 1
        if not valid:
            broken = re.findall(r'<span title="([^"]*)" style="background:#fde2e2[^"]*font-weight:700">', box)
            assert broken and broken[0].startswith(f"token {token}")  # the highlighted token is the broken one
            assert html.escape(message) in box


# --------------------------------------------------------------------------------------------
# Catalogue: toy checkpoints are listed, labelled, and after the corpus ones
# --------------------------------------------------------------------------------------------
def test_toy_checkpoints_are_labelled_and_listed_after_corpus_ones(toy_root, corpus_root):
    infos = catalogue.scan_checkpoints([toy_root, corpus_root])
    assert [(c.name, c.toy) for c in infos] == [
        ("tiny_fmlm", False), ("tiny_flm", False), ("tiny_mdlm", False), ("tiny_ar", False),
        ("fmlm-toy", True), ("flm-toy", True), ("another-mdlm", True), ("mdlm-toy", True), ("ar-toy", True)]
    toy = next(c for c in infos if c.name == "fmlm-toy")
    assert (toy.source, toy.label, toy.vocab_size, toy.seq_len) == (
        "toy:story", "FMLM · fmlm-toy · toy language (story)", len(STORY.words) + 3, STORY.seq_len)
    assert next(c for c in infos if c.name == "tiny_flm").label == "FLM · tiny_flm"


# --------------------------------------------------------------------------------------------
# Generate: one badge per toy sample, the broken token highlighted; corpus lanes unchanged
# --------------------------------------------------------------------------------------------
def test_generate_marks_toy_samples_and_leaves_corpus_lanes_plain(monkeypatch, toy_root, corpus_root, toy_bench):
    at = _app(monkeypatch, corpus_root, toy_root, benchmarks=toy_bench.with_name("benchmarks.json"))
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "**FMLM · fmlm-toy · toy language (story)** · K=56 · L=32" in sidebar
    assert [Path(lane["path"]).name for lane in at.session_state["lanes"]] == ["tiny_fmlm", "tiny_flm"]  # corpus first
    at.session_state["lanes"] = [{"id": 0, "path": str(toy_root / "fmlm-toy"), "steps": 1},
                                 {"id": 1, "path": str(toy_root / "mdlm-toy"), "steps": 2},
                                 {"id": 2, "path": str(corpus_root / "tiny_flm"), "steps": 2}]
    at.number_input(key="num_samples").set_value(3)
    at.run()
    assert "FMLM · fmlm-toy · toy language (story)" in at.selectbox(key="lane_ckpt::0").options
    at.button(key="generate").click().run()
    _ok(at)
    runs = {Path(r["path"]).name: r for r in at.session_state["runs"].values()}
    rows = {(r["model"], r["steps"]): r for r in json.loads(toy_bench.read_text())["rows"]}
    floor = rows[("data (generator)", None)]["toy_distance"]
    for name, steps in (("fmlm-toy", 1), ("mdlm-toy", 2)):  # each toy lane's quality: the toy benchmark's
        row = rows[(name, steps)]
        assert any(f"{100 * row['toy_validity']:.0f} % valid, distance {row['toy_distance']:.2f} (the generator's own "
                   f"{floor:.2f})" in c.value for c in at.caption)
    for name, kind in (("fmlm-toy", "fmlm"), ("mdlm-toy", "mdlm")):
        expected = _expected(toy_root / name, runs[name]["gen"].tokens)
        _assert_marked(_toy_boxes(at, kind), expected)
        valid = sum(v for v, _, _ in expected)
        assert any(m.value.startswith(f"**{valid} of 3 valid**, ") and "grammatical (toy:story's checker)" in m.value
                   for m in at.markdown)
    page = " ".join(str(h.proto.body) for h in at.get("html"))
    assert 'data-lane="flm"' in page and not _toy_boxes(at, "flm")  # the corpus FLM: plain text boxes
    assert not any(m.value.startswith("**Toy-language models**") for m in at.markdown)  # a mixed set: the corpus note

    at.session_state["lanes"] = at.session_state["lanes"][:2]  # toy lanes only, with the real-text column
    at.toggle(key="show_real").set_value(True).run()
    at.button(key="generate").click().run()
    _ok(at)
    assert any(m.value.startswith("**Toy-language models** (toy:story)") for m in at.markdown)
    assert any(m.value == "#### The language itself · toy:story" for m in at.markdown)
    page = " ".join(str(h.proto.body) for h in at.get("html"))
    assert all(f'data-lane="data" data-run="" data-sample="{i}"' in page and doc in page
               for i, doc in enumerate(documents(STORY, 3, at.session_state["seed"])))


# --------------------------------------------------------------------------------------------
# Why one step works
# --------------------------------------------------------------------------------------------
def test_why_one_step_runs_mdlm_fmlm_and_flm_at_one_step_from_one_seed(monkeypatch, toy_root, corpus_root, toy_bench):
    at = _app(monkeypatch, corpus_root, toy_root, benchmarks=toy_bench.with_name("benchmarks.json"))
    at.switch_page("views/one_step.py").run()
    _ok(at)
    assert at.title[0].value == "Why one step works"
    pickers = {sb.key: sb for sb in at.selectbox if sb.key and sb.key.startswith("one_step_ckpt::")}
    assert {k: Path(sb.value).name for k, sb in pickers.items()} == {
        "one_step_ckpt::factorised": "mdlm-toy", "one_step_ckpt::flow map": "fmlm-toy",
        "one_step_ckpt::flow": "flm-toy"}  # the shipped names first, though another-mdlm is listed before
    assert all("toy language" in option for sb in pickers.values() for option in sb.options)  # toy models only
    at.number_input(key="one_step_n").set_value(5)
    at.number_input(key="one_step_seed").set_value(3)
    at.button(key="one_step_run").click().run()
    _ok(at)
    runs = [at.session_state["runs"][i] for i in at.session_state["one_step_runs"]]
    assert [(r["kind"], r["steps"], r["seed"], r["n"], r["gen"].nfe) for r in runs] == [
        ("mdlm", 1, 3, 5, 1), ("fmlm", 1, 3, 5, 1), ("flm", 1, 3, 5, 1)]
    counts, grammatical = {}, {}
    for run in runs:
        expected = _expected(Path(run["path"]), run["gen"].tokens)
        _assert_marked(_toy_boxes(at, run["kind"]), expected)
        counts[run["kind"]] = sum(v for v, _, _ in expected)
        tokenizer = load(run["path"]).tokenizer
        grammatical[run["kind"]] = sum(check_ids(STORY, tokenizer, row)[0].grammatical
                                       for row in run["gen"].tokens.tolist())
    assert [m.value for m in at.metric if m.label == "Valid samples"] == [
        f"{100 * counts[k] / 5:.0f} %" for k in ("mdlm", "fmlm", "flm")]
    assert [m.value for m in at.metric if m.label == "Grammatical"] == [
        f"{100 * grammatical[k] / 5:.0f} %" for k in ("mdlm", "fmlm", "flm")]
    assert any(m.value == ("One network call each, seed 3: " + " · ".join(
        f"{k.upper()}@1 · {k}-toy **{counts[k]} of 5 valid, {grammatical[k]} grammatical**"
        for k in ("mdlm", "fmlm", "flm"))) for m in at.markdown)
    rows = {(r["model"], r["steps"]): r for r in json.loads(toy_bench.read_text())["rows"]}
    assert ("In the benchmark (`benchmarks-toy.json`, 4 samples each, one step): " + " · ".join(
        f"{m}-toy {100 * rows[(f'{m}-toy', 1)]['toy_validity']:.0f} % valid" for m in ("mdlm", "fmlm", "flm"))
            in [c.value for c in at.caption])
    why = next(m.value for m in at.markdown if "product of the marginals" in m.value)
    assert f"**MDLM@1 · mdlm-toy: {counts['mdlm']} of 5 valid" in why and "superposition" in why

    at.switch_page("views/generate.py").run()  # the page's settings outlive a visit elsewhere
    at.switch_page("views/one_step.py").run()
    assert (at.number_input(key="one_step_n").value, at.number_input(key="one_step_seed").value) == (5, 3)
    at.toggle(key="one_step_flow").set_value(False).run()  # two lanes
    at.button(key="one_step_run").click().run()
    _ok(at)
    assert [at.session_state["runs"][i]["kind"] for i in at.session_state["one_step_runs"]] == ["mdlm", "fmlm"]


def test_why_one_step_in_presentation_mode_folds_its_settings_after_the_click(monkeypatch, toy_root):
    at = _app(monkeypatch, toy_root)
    at.toggle(key="presentation").set_value(True).run()
    at.switch_page("views/one_step.py").run()
    _ok(at)
    assert not at.title and at.session_state["one_step_settings"] is True  # nothing run yet: the settings open
    at.button(key="one_step_run").click().run()
    _ok(at)
    assert at.session_state["one_step_settings"] is False and len(at.session_state["one_step_runs"]) == 3
    assert not [m for m in at.metric if m.label == "Valid samples"]  # the screen is for the samples
    assert len(_toy_boxes(at, "fmlm")) == 8


def test_benchmarks_page_draws_the_toy_benchmark(monkeypatch, toy_root, toy_bench):
    at = _app(monkeypatch, toy_root, benchmarks=toy_bench.with_name("benchmarks.json"))
    at.switch_page("views/benchmarks.py").run()
    _ok(at)
    assert [s.value for s in at.subheader] == ["Toy language: validity and distance"]
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "validity vs time" in c.proto.spec)
    assert {t["xaxis"] for t in spec["data"]} == {"x", "x2", "x3", "x4"} and spec["data"][0]["text"] == ["1", "2"]
    table = at.dataframe[0].value
    assert list(table["model"]) == ["fmlm-toy"] * 2 + ["flm-toy"] * 2 + ["mdlm-toy"] * 2 + ["data (generator)"]
    rows = json.loads(toy_bench.read_text())["rows"]
    assert list(table["toy_validity"]) == [r["toy_validity"] for r in rows] and table["toy_validity"].iloc[-1] == 1.0
    assert list(table["broken"]) == [", ".join(f"{k} {v}" for k, v in r["toy_failures"].items()) for r in rows]


def test_an_unknown_toy_language_is_one_line_not_a_traceback(monkeypatch, toy_root, tmp_path):
    odd = tmp_path / "odd" / "flm-odd"
    shutil.copytree(toy_root / "flm-toy", odd)
    config = json.loads((odd / "config.json").read_text())
    config["data"]["source"] = "toy:nope"
    (odd / "config.json").write_text(json.dumps(config))
    at = _app(monkeypatch, odd.parent)
    at.session_state["lanes"] = [{"id": 0, "path": str(odd), "steps": 2}]
    at.run()
    at.button(key="generate").click().run()
    _ok(at)  # its samples drawn plain: nothing can check them
    assert not _toy_boxes(at, "flm") and 'data-lane="flm"' in " ".join(str(h.proto.body) for h in at.get("html"))
    at.switch_page("views/one_step.py").run()
    at.button(key="one_step_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["FLM · flm-odd · toy language (nope): toy:nope is not a toy language "
                                           "flm_core knows, so nothing checks it"]


def test_time_and_training_pages_take_toy_checkpoints(monkeypatch, toy_root):
    at = _app(monkeypatch, toy_root)
    at.switch_page("views/time_schedule.py").run()
    at.selectbox(key="time_ckpt").set_value(str(toy_root / "fmlm-toy")).run()
    _ok(at)
    assert "FMLM · fmlm-toy · toy language (story)" in at.selectbox(key="time_ckpt").options
    at.switch_page("views/training.py").run()
    at.multiselect(key="train_ckpts").set_value([str(toy_root / "flm-toy"), str(toy_root / "mdlm-toy")]).run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 1


def test_why_one_step_without_toy_checkpoints_says_how_to_get_them(monkeypatch, corpus_root):
    at = _app(monkeypatch, corpus_root)
    at.switch_page("views/one_step.py").run()
    _ok(at)
    assert [i.value for i in at.info] == ["No toy-language checkpoints here: `SHIP=checkpoints scripts/train_toy.sh` "
                                          "trains the four toy models into checkpoints/."]
    assert "one_step_run" not in [b.key for b in at.button]


# --------------------------------------------------------------------------------------------
# Trajectory: a toy run opens on the sample's broken token
# --------------------------------------------------------------------------------------------
def test_trajectory_opens_a_toy_sample_on_its_broken_token(monkeypatch, toy_root):
    at = _app(monkeypatch, toy_root)
    at.switch_page("views/trajectory.py").run()
    at.selectbox(key="traj_new_ckpt").set_value(str(toy_root / "flm-toy"))
    at.select_slider(key="traj_new_steps").set_value(8)
    at.number_input(key="traj_new_n").set_value(2)
    at.button(key="traj_new_run").click().run()
    _ok(at)
    run = at.session_state["runs"][at.selectbox(key="traj_run").value]
    for sample in (0, 1):
        at.selectbox(key=f"traj_sample::{run['id']}").set_value(sample).run()
        _ok(at)
        mark = marks("toy:story", load(str(toy_root / "flm-toy")).tokenizer, run["gen"].tokens.numpy())[sample]
        position = next(n for n in at.number_input if n.key and n.key.startswith("traj_pos::"))
        assert position.key.endswith(f"::{sample}") and position.value == focus_token(mark, STORY.seq_len)
        verdict = "✓ valid" if mark.valid else f"✗ {mark.constraint} at token {mark.token}: {mark.message}"
        assert f"toy:story · sample {sample}: {verdict}" in [c.value for c in at.caption]
        assert any(c.value.startswith(f"Position {position.value}:") for c in at.caption)  # the simplex view's
    page = " ".join(str(h.proto.body) for h in at.get("html"))
    assert "flm-superposition" in page and page.count('class="flm-cell"') == STORY.seq_len
    superposition = page[page.index("flm-superposition"):]
    assert "·" not in superposition  # words: no word-start dots in the cells


def test_token_strings_of_a_word_level_vocabulary_read_as_running_text():
    tokenizer, tokens = _blocks(documents(STORY, 2, seed=1))
    table = token_strings(tokenizer, tokenizer.get_vocab_size())
    assert table[:4] == ["⏎", "░", "∅", f" {STORY.words[0]}"]
    for row in tokens:
        story = [t for t in row.tolist() if t != SEP_ID]
        assert "".join(table[t] for t in story).strip() == tokenizer.decode(story)
    assert cell_strings(table)[:4] == ["⏎", "░", "∅", STORY.words[0]]  # one word per cell: no space to show
    bpe = ["⏎", "░", "∅", " the", "ing", " a"]
    assert cell_strings(bpe) == bpe  # BPE's leading space marks a word start: kept


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------
def _blocks(texts: list[str]):
    tokenizer = word_tokenizer(STORY.words)
    ids = [enc.ids for enc in tokenizer.encode_batch(texts)]
    return tokenizer, one_per_block(ids, STORY.seq_len)


def test_marks_point_at_the_broken_token_and_draw_one_badge_each():
    valid = documents(STORY, 1, seed=0)[0]
    words = valid.split()
    wrong = list(words)
    wrong[6] = "he" if words[6] == "she" else "she"  # the first event's pronoun
    tokenizer, tokens = _blocks([valid, " ".join(wrong), " ".join(words[:4])])
    found = marks("toy:story", tokenizer, tokens)
    assert found[0] == Mark(True, None, None, "valid", 1, 1 + len(words), True)
    assert found[1].grammatical and not found[2].grammatical
    assert (found[1].valid, found[1].constraint, found[1].token) == (False, "pronoun", 1 + 6)
    assert tokens[1][found[1].token] == tokenizer.token_to_id(wrong[6])
    assert (found[2].constraint, found[2].token) == ("grammar", 1 + 4)  # stops before its fruit: nothing there
    assert tally(found) == {"valid": 1, "grammatical": 2, "n": 3, "failures": {"pronoun": 1, "grammar": 1}}
    assert [focus_token(m, STORY.seq_len) for m in found] == [1, 7, 5]
    tokens_shown = ["⏎", "░", "∅", *STORY.words]
    drawn = samples_html(found, tokens, tokens_shown, "fmlm", run="r1")
    assert drawn.count('class="flm-badge"') == 3 and "✓ valid" in drawn and "✗ pronoun" in drawn
    assert 'title="token 7" style="background:#fde2e2' in drawn and f"&#x27;{wrong[6]}&#x27; for {words[0]}" in drawn
    assert 'title="token 5: nothing there"' in drawn and ">∅<" in drawn  # the missing word, highlighted
    inside = np.array(tokens[1])
    inside[10] = SEP_ID  # a separator inside the story: it ended early
    early = marks("toy:story", tokenizer, inside[None])[0]
    assert (early.constraint, early.token) == ("grammar", 10)
    assert "⏎" in samples_html([early], inside[None], tokens_shown, "mdlm")


def test_why_one_step_words_follow_the_measured_counts():
    def lane(kind, valid, distinct=8, failures=None, grammatical=None):
        return {"title": f"{kind.upper()}@1 · {kind}-toy", "kind": kind, "valid": valid, "n": 8, "distinct": distinct,
                "grammatical": valid if grammatical is None else grammatical,
                "failures": failures or ({"pronoun": 8 - valid} if valid < 8 else {})}

    mdlm, fmlm, flm = lane("mdlm", 1), lane("fmlm", 7), lane("flm", 0, distinct=1)
    assert headline([mdlm, fmlm], 0) == ("One network call each, seed 0: MDLM@1 · mdlm-toy **1 of 8 valid, 1 grammatical** · "
                                         "FMLM@1 · fmlm-toy **7 of 8 valid, 7 grammatical**")
    text = explanation([mdlm, fmlm, flm])
    assert ("**MDLM@1 · mdlm-toy: 1 of 8 valid, 1 grammatical; its most frequent first break: pronoun (7 of 8).**"
            in text)
    assert "**FLM@1 · flm-toy: 0 of 8 valid, 0 grammatical, all 8 the same sample.**" in text
    assert text.endswith("Here the flow map kept 7 of 8 valid, 7 grammatical where the factorised sampler kept 1 of 8.")
    assert explanation([lane("mdlm", 3), lane("fmlm", 3)]).endswith("these checkpoints show no difference.")
    layout = explanation([lane("mdlm", 0, grammatical=0), lane("fmlm", 0, grammatical=6)])
    assert layout.endswith("the flow map kept the grammar in 6 where the factorised sampler kept it in 0: one call "
                           "kept the story's layout, these checkpoints not yet the agreements between its words.")
    worse = explanation([lane("mdlm", 5), lane("fmlm", 2)])
    assert worse.endswith("these checkpoints do not show the argument at this seed.") and "kept 2 of 8 valid where" not in worse
    assert "the flow map" not in explanation([mdlm])  # a missing lane: no comparison

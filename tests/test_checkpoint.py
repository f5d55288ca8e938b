"""Checkpoint directories: round trips, fp16 export, one-line errors naming the file, atomic writes."""
import json
import os
import pickle

import pytest
import torch
from safetensors import safe_open

import flm_core
from flm_core import checkpoint
from flm_core.checkpoint import (CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, CheckpointError, read_checkpoint,
                                 save_checkpoint)
from flm_core.config import ConfigError
from flm_core.models import build_network

KINDS = ["flm", "fmlm", "mdlm", "ar"]


@pytest.fixture
def write_ckpt(tmp_path, tokenizer, make_config, randomize):
    """write_ckpt(kind="flm", half=False) -> (directory, config, network)."""

    def write(kind="flm", half=False, name=None):
        config = make_config(kind, tokenizer.get_vocab_size())
        network = randomize(build_network(config.model), seed=3)
        directory = tmp_path / (name or f"{kind}{'_half' if half else ''}")
        save_checkpoint(directory, config, network, tokenizer.to_str(), card="# tiny\n", half=half)
        return directory, config, network

    return write


def _inputs(config):
    g = torch.Generator().manual_seed(0)
    if config.kind in ("mdlm", "ar"):
        return torch.randint(0, config.model.vocab_size, (2, config.model.seq_len), generator=g)
    return torch.randn(2, config.model.seq_len, config.model.vocab_size, generator=g)


def _logits(pipe_or_net, config, x, kind):
    s, t = torch.full((2,), 0.3), torch.full((2,), 0.8)
    if kind == "ar":
        return pipe_or_net(x)
    if kind == "fmlm":
        return pipe_or_net(x, s, t)
    return pipe_or_net(x, s)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_identical_logits(write_ckpt, kind):
    directory, config, network = write_ckpt(kind)
    assert sorted(os.listdir(directory)) == ["README.md", CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]
    saved = json.loads((directory / CONFIG_FILE).read_text())
    assert saved["kind"] == kind and saved["model"]["vocab_size"] == config.model.vocab_size
    loaded_config, weights = read_checkpoint(directory)
    assert loaded_config.to_dict() == config.to_dict()
    state = network.state_dict()
    assert set(weights) == set(state) and all(torch.equal(weights[k], state[k]) for k in state)
    pipe = flm_core.load(directory)
    assert pipe.kind == kind and pipe.vocab_size == config.model.vocab_size
    x = _inputs(config)
    with torch.no_grad():
        expected = _logits(network.eval(), config, x, kind)
    s, t = 0.3, (0.8 if kind == "fmlm" else None)
    assert torch.equal(pipe.logits(x, s, t), expected)


def test_self_condition_round_trips_and_a_config_written_before_it_loads_without_it(write_ckpt, tmp_path, tokenizer,
                                                                                    make_config, randomize):
    config = make_config("flm", tokenizer.get_vocab_size(), self_condition=True)
    network = randomize(build_network(config.model), seed=3)
    save_checkpoint(tmp_path / "sc", config, network, tokenizer.to_str(), card="# tiny\n")
    assert json.loads((tmp_path / "sc" / CONFIG_FILE).read_text())["model"]["self_condition"] is True
    pipe = flm_core.load(tmp_path / "sc")
    assert pipe.config.to_dict() == config.to_dict() and pipe.sampler.self_condition
    x = _inputs(config)
    with torch.no_grad():
        assert torch.equal(pipe.logits(x, 0.3), network.eval()(x, torch.full((2,), 0.3)))  # no estimate: zeros
    old, _, _ = write_ckpt()  # a plain FLM, its config.json as written before the field existed
    _edit_config(old, lambda raw: raw["model"].pop("self_condition"))
    assert flm_core.load(old).config.model.self_condition is False
    _edit_config(tmp_path / "sc", lambda raw: raw["model"].pop("self_condition"))  # read as a plain FLM:
    _one_line_error(tmp_path / "sc", "estimate_proj")  # its weights do not fit


@pytest.mark.parametrize("kind", ["fmlm", "mdlm", "ar"])
def test_self_condition_is_refused_for_kinds_other_than_flm(tokenizer, make_config, kind):
    with pytest.raises(ConfigError, match="self_condition"):
        make_config(kind, tokenizer.get_vocab_size(), self_condition=True)


def test_half_round_trip(write_ckpt):
    directory, config, network = write_ckpt("flm", half=True)
    with safe_open(str(directory / WEIGHTS_FILE), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        assert f.metadata()["kind"] == "flm"
    assert dtypes == {torch.float16}
    full, _, _ = write_ckpt("flm", half=False)
    assert (directory / WEIGHTS_FILE).stat().st_size < 0.6 * (full / WEIGHTS_FILE).stat().st_size
    _, weights = read_checkpoint(directory)
    assert all(v.dtype == torch.float32 for v in weights.values())
    for k, v in network.state_dict().items():
        torch.testing.assert_close(weights[k], v, rtol=1e-3, atol=1e-4)
    x = _inputs(config)
    with torch.no_grad():
        expected = network(x, torch.full((2,), 0.3))
    got = flm_core.load(directory).logits(x, 0.3)
    err = (got - expected).abs().max().item()
    assert 0 < err < 2e-2 * expected.abs().max().item()


# ------------------------------------------------------------------ errors


def _edit_config(directory, edit) -> None:
    """Rewrite config.json through edit(raw dict)."""
    raw = json.loads((directory / CONFIG_FILE).read_text())
    edit(raw)
    (directory / CONFIG_FILE).write_text(json.dumps(raw))


def _one_line_error(directory, must_name):
    with pytest.raises(CheckpointError) as info:
        flm_core.load(directory)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    assert must_name in message, message
    return message


def test_missing_directory(tmp_path):
    _one_line_error(tmp_path / "nope", "nope")


def test_missing_config(write_ckpt):
    directory, _, _ = write_ckpt()
    (directory / CONFIG_FILE).unlink()
    _one_line_error(directory, CONFIG_FILE)


def test_bad_json(write_ckpt):
    directory, _, _ = write_ckpt()
    (directory / CONFIG_FILE).write_text('{"kind": "flm",\n "model": {')
    _one_line_error(directory, CONFIG_FILE)


def test_unknown_kind(write_ckpt):
    directory, _, _ = write_ckpt()
    _edit_config(directory, lambda raw: raw.update(kind="gpt"))
    assert "gpt" in _one_line_error(directory, CONFIG_FILE)


@pytest.mark.parametrize("section,key,value", [
    ("model", "hidden_size", "32"), ("model", "n_blocks", 2.0), ("model", "causal", 1), ("model", "dropout", "x"),
    ("model", "colour", "red"), ("training", "lr", "fast"), ("training", "max_minutes", [1]),
    ("objective", "name", 3), ("objective", "teacher", 5), ("objective", "boundary_prob", True)])
def test_wrong_types_or_keys_in_config(write_ckpt, section, key, value):
    directory, _, _ = write_ckpt()
    _edit_config(directory, lambda raw: raw[section].update({key: value}))
    _one_line_error(directory, CONFIG_FILE)


def test_config_not_an_object(write_ckpt):
    directory, _, _ = write_ckpt()
    (directory / CONFIG_FILE).write_text("[1, 2]")
    _one_line_error(directory, CONFIG_FILE)


def test_tokenizer_vocab_differs_from_config(write_ckpt):
    directory, _, _ = write_ckpt()
    _edit_config(directory, lambda raw: raw["model"].update(vocab_size=raw["model"]["vocab_size"] + 1))
    _one_line_error(directory, TOKENIZER_FILE)


def test_missing_or_corrupt_tokenizer(write_ckpt):
    directory, _, _ = write_ckpt()
    (directory / TOKENIZER_FILE).write_text("{not json")
    _one_line_error(directory, TOKENIZER_FILE)
    (directory / TOKENIZER_FILE).unlink()
    _one_line_error(directory, TOKENIZER_FILE)


def test_weights_of_the_wrong_shape(write_ckpt, make_config, tokenizer):
    directory, config, _ = write_ckpt()
    other = make_config("flm", tokenizer.get_vocab_size(), hidden_size=48, n_heads=2)
    checkpoint.atomic_save_tensors(directory / WEIGHTS_FILE, build_network(other.model).state_dict())
    _one_line_error(directory, WEIGHTS_FILE)


def test_weights_of_another_kind(write_ckpt, make_config, tokenizer):
    directory, config, _ = write_ckpt()
    other = make_config("fmlm", tokenizer.get_vocab_size())
    checkpoint.atomic_save_tensors(directory / WEIGHTS_FILE, build_network(other.model).state_dict())
    assert "sigma_map_prime" in _one_line_error(directory, WEIGHTS_FILE)


def test_missing_weights(write_ckpt):
    directory, _, _ = write_ckpt()
    (directory / WEIGHTS_FILE).unlink()
    _one_line_error(directory, WEIGHTS_FILE)


def test_truncated_safetensors(write_ckpt):
    directory, _, _ = write_ckpt()
    path = directory / WEIGHTS_FILE
    data = path.read_bytes()
    for size in (len(data) // 2, 5, 0):
        path.write_bytes(data[:size])
        _one_line_error(directory, WEIGHTS_FILE)


def test_pickle_renamed_to_safetensors_is_never_unpickled(write_ckpt, monkeypatch):
    directory, _, network = write_ckpt()
    torch.save(network.state_dict(), directory / WEIGHTS_FILE)

    def forbidden(*args, **kwargs):
        raise AssertionError("loading a checkpoint must never unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    _one_line_error(directory, WEIGHTS_FILE)


# ------------------------------------------------------------------ atomic writes


def test_atomic_write_leaves_no_temp_files_and_keeps_the_old_file_on_failure(write_ckpt, monkeypatch):
    directory, config, network = write_ckpt()
    before = {name: (directory / name).read_bytes() for name in os.listdir(directory)}
    save_checkpoint(directory, config, network, (directory / TOKENIZER_FILE).read_text())  # overwrite in place
    assert sorted(os.listdir(directory)) == sorted(before)
    assert (directory / WEIGHTS_FILE).read_bytes() == before[WEIGHTS_FILE]

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", broken_save)
    with torch.no_grad():
        next(network.parameters()).add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(directory, config, network, "{}")
    assert sorted(os.listdir(directory)) == sorted(before)  # no .tmp left behind
    assert {name: (directory / name).read_bytes() for name in os.listdir(directory)} == before
    flm_core.load(directory)  # still a valid checkpoint


def test_atomic_write_text_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.json"
    checkpoint.atomic_write_text(path, "one")
    checkpoint.atomic_write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(path.parent) == ["f.json"]


def test_json_safe_turns_nan_inf_and_numpy_scalars_into_strict_json():
    import numpy as np

    raw = {"a": float("nan"), "b": [1.5, float("-inf"), (np.float32(2.0), np.int64(3), np.float64("nan"))], "c": "x"}
    assert json.dumps(checkpoint.json_safe(raw), allow_nan=False) == \
        '{"a": null, "b": [1.5, null, [2.0, 3, null]], "c": "x"}'


@pytest.mark.parametrize("value", ["x", None, 99, True])
def test_bad_format_version(write_ckpt, value):
    directory, _, _ = write_ckpt()
    _edit_config(directory, lambda raw: raw.update(format_version=value))
    _one_line_error(directory, CONFIG_FILE)

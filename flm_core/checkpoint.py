"""Checkpoint directories: our format (config.json + model.safetensors + tokenizer.json + README.md),
and the file helpers every writer in flm_core uses: atomic writes, JSON lines, strict JSON.

Nothing here unpickles. Writes are atomic (temporary file, fsync, os.replace), so a crash leaves
either the old file or the new one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flm_core.config import ConfigError, RunConfig
from flm_core.errors import one_line

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "README.md"
CARD_DATA_FILE = "card.json"  # the card's record (flm_core.cards); README.md is rendered from it
METRICS_FILE = "metrics.jsonl"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupted or inconsistent."""


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` (named .<name>.*.tmp) to fill inside the block; on a clean exit it is
    fsync'd and renamed over `path`, on an error removed: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """write(tmp) fills the temporary file of `atomic_file(path)`."""
    with atomic_file(path) as tmp:
        write(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """safetensors file -> dict, with a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(err)})") from None


def export_weights(network: torch.nn.Module, half: bool) -> dict[str, torch.Tensor]:
    """Inference weights (buffers included), optionally in float16."""
    state = network.state_dict()
    return {k: (v.half() if half and v.is_floating_point() else v) for k, v in state.items()}


def save_checkpoint(directory: Path, config: RunConfig, network: torch.nn.Module, tokenizer_json: str,
                    card: str | None = None, half: bool = False) -> None:
    """Write a checkpoint directory: config.json, model.safetensors, tokenizer.json (+ README.md)."""
    directory = Path(directory)
    atomic_save_tensors(directory / WEIGHTS_FILE, export_weights(network, half), metadata={"kind": config.kind})
    atomic_write_text(directory / TOKENIZER_FILE, tokenizer_json)
    config.save(directory / CONFIG_FILE)
    if card is not None:
        atomic_write_text(directory / CARD_FILE, card)


def read_checkpoint_config(directory: Path) -> RunConfig:
    """Validated config of one of our checkpoint directories (its weights unread)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    try:
        return RunConfig.load(directory / CONFIG_FILE)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def read_checkpoint_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Float32 weights of one of our checkpoint directories."""
    weights = load_tensors(Path(directory) / WEIGHTS_FILE)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}


def read_checkpoint(directory: Path) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """Validated config and float32 weights of one of our checkpoint directories."""
    return read_checkpoint_config(directory), read_checkpoint_weights(directory)


def export_checkpoint(source: Path, destination: Path, half: bool = True) -> None:
    """Copy a trained run's checkpoint files (not its training state) to `destination`, weights in fp16."""
    source, destination = Path(source), Path(destination)
    config, weights = read_checkpoint(source)
    stored = {k: (v.half() if half and v.is_floating_point() else v) for k, v in weights.items()}
    atomic_save_tensors(destination / WEIGHTS_FILE, stored, metadata={"kind": config.kind})
    config.save(destination / CONFIG_FILE)
    for name in (TOKENIZER_FILE, CARD_DATA_FILE, CARD_FILE, METRICS_FILE):
        if (source / name).is_file():
            atomic_write_text(destination / name, (source / name).read_text(encoding="utf-8"))


def load_state_into(network: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights, naming the first missing/unexpected/mis-shaped key if they do not fit."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, value in weights.items():
        if value.shape != expected[name].shape:
            raise CheckpointError(f"{source}: {name} has shape {tuple(value.shape)}, "
                                  f"the config needs {tuple(expected[name].shape)}")
    network.load_state_dict(weights)


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line (metrics log); a torn last line is skipped by read_jsonl."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (none if it is missing); lines that do not parse are skipped."""
    records = []
    if Path(path).is_file():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def json_safe(obj: Any) -> Any:
    """Nested dicts / lists / tuples with NaN and infinities turned into None and numpy scalars into
    Python numbers, so that json.dumps(..., allow_nan=False) accepts them (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

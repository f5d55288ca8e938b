"""Checkpoint directories: our format (config.json + model.safetensors + tokenizer.json + README.md).

Nothing here unpickles. Writes are atomic (temporary file, fsync, os.replace), so a crash leaves
either the old file or the new one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flm_core.config import ConfigError, RunConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "README.md"
METRICS_FILE = "metrics.jsonl"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupted or inconsistent."""


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """safetensors file -> dict, with a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(err).splitlines()[0]})") from None


def export_weights(network: torch.nn.Module, half: bool) -> dict[str, torch.Tensor]:
    """Inference weights (buffers included), optionally in float16."""
    state = network.state_dict()
    return {k: (v.half() if half and v.is_floating_point() else v) for k, v in state.items()}


def save_checkpoint(directory: Path, config: RunConfig, network: torch.nn.Module, tokenizer_json: str,
                    card: str | None = None, half: bool = False) -> None:
    """Write the Contract-3 directory: config.json, model.safetensors, tokenizer.json (+ README.md)."""
    directory = Path(directory)
    atomic_save_tensors(directory / WEIGHTS_FILE, export_weights(network, half), metadata={"kind": config.kind})
    atomic_write_text(directory / TOKENIZER_FILE, tokenizer_json)
    config.save(directory / CONFIG_FILE)
    if card is not None:
        atomic_write_text(directory / CARD_FILE, card)


def read_checkpoint(directory: Path) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """Validated config and float32 weights of one of our checkpoint directories."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    try:
        config = RunConfig.load(directory / CONFIG_FILE)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    weights = load_tensors(directory / WEIGHTS_FILE)
    return config, {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}


def export_checkpoint(source: Path, destination: Path, half: bool = True) -> None:
    """Copy a trained run's checkpoint files (not its training state) to `destination`, weights in fp16."""
    source, destination = Path(source), Path(destination)
    config, weights = read_checkpoint(source)
    stored = {k: (v.half() if half and v.is_floating_point() else v) for k, v in weights.items()}
    atomic_save_tensors(destination / WEIGHTS_FILE, stored, metadata={"kind": config.kind})
    config.save(destination / CONFIG_FILE)
    for name in (TOKENIZER_FILE, CARD_FILE, METRICS_FILE):
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
    records = []
    if Path(path).is_file():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records

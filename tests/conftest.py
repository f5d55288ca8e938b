"""Shared fixtures: a tiny prepared data folder, its tokenizer, tiny configs and a tiny FLM checkpoint.

Everything is session-scoped and small (vocab ~300, seq_len 16, hidden 32, 2 blocks) so that the
whole suite stays fast on two CPU cores.
"""
from __future__ import annotations

import math
import mmap
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from flm_core.config import ModelConfig, RunConfig, TrainConfig, ObjectiveConfig

TINY_VOCAB = 300
TINY_SEQ_LEN = 16
TINY_MODEL = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16, dropout=0.0)

# The suite's tensors are tiny: one intra-op thread is as fast as two, and it does not collapse
# (30x slower per op with spinning OpenMP workers) when another process keeps the cores busy.
torch.set_num_threads(1)

_WORDS = ("the a model flow token river stone light city music green old new runs makes sees "
          "noise data step time one language denoise map path small large quiet").split()


def synthetic_documents(n: int = 240, seed: int = 0) -> list[str]:
    """Short, repetitive English-like documents (a learnable distribution)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        sentences = []
        for _ in range(rng.randint(1, 3)):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 10))]
            sentences.append(" ".join(words).capitalize() + ".")
        docs.append(" ".join(sentences) + f" Doc {i}.")
    return docs


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A folder written by flm_core.data.prepare: vocab ~300, seq_len 16."""
    from flm_core.data import prepare

    root = tmp_path_factory.mktemp("tiny_data")
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(synthetic_documents()) + "\n", encoding="utf-8")
    out = root / "data"
    prepare(str(corpus), out, vocab_size=TINY_VOCAB, seq_len=TINY_SEQ_LEN, val_fraction=0.1, seed=0)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny_data):
    from flm_core.tokens import load_tokenizer

    return load_tokenizer(tiny_data)


@pytest.fixture(scope="session")
def vocab_size(tokenizer) -> int:
    return tokenizer.get_vocab_size()


def tiny_run_config(kind: str, vocab_size: int, seq_len: int = TINY_SEQ_LEN, **model) -> RunConfig:
    """A valid RunConfig of the given kind with the tiny model shape."""
    shape = dict(TINY_MODEL)
    shape.update(model)
    objective = {"flm": "flm", "fmlm": "fmlm-semigroup", "mdlm": "mdlm", "ar": "ar"}[kind]
    config = RunConfig(kind=kind,
                       model=ModelConfig(vocab_size=vocab_size, seq_len=seq_len, causal=kind == "ar",
                                         double_time=kind == "fmlm", **shape),
                       objective=ObjectiveConfig(name=objective),
                       training=TrainConfig(batch_size=8, precision="fp32"))
    config.validate()
    return config


@torch.no_grad()
def randomize_(network: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    """Overwrite every parameter (zero-initialised ones included) with seeded random values.

    Matrices get N(0, scale^2 / fan_in), norm weights 1 + N(0, 0.1^2), other vectors N(0, 0.1^2):
    a generic network whose outputs depend on every input, time and weight.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in network.named_parameters():
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        if param.dim() >= 2:
            fan_in = param.shape[0] if name.endswith("embedding") else param.shape[1]
            param.copy_(noise * scale / math.sqrt(fan_in))
        elif "norm" in name:
            param.copy_(1.0 + 0.1 * noise)
        else:
            param.copy_(0.1 * noise)
    return network


@pytest.fixture(scope="session")
def make_config():
    """Factory: make_config(kind, vocab_size, seq_len=16, **model overrides) -> RunConfig."""
    return tiny_run_config


@pytest.fixture(scope="session")
def randomize():
    """randomize(network, seed=0, scale=1.0): seeded random weights everywhere, in place."""
    return randomize_


class EstimateSpy(torch.nn.Module):
    """Wraps a network and records every call as (input, times s, estimate, logits), on both input paths
    (forward: a dense x; forward_embedded: h = x @ E), to check what a self-conditioned network was fed."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network, self.config, self.vocab_embed, self.calls = network, network.config, network.vocab_embed, []

    def forward(self, x, s, t=None, estimate=None):
        return self._record(self.network(x, s, t, estimate), x, s, estimate)

    def forward_embedded(self, h, s, t=None, estimate=None):
        return self._record(self.network.forward_embedded(h, s, t, estimate), h, s, estimate)

    def _record(self, logits, x, s, estimate):
        copy = lambda v: None if v is None else v.detach().clone()  # noqa: E731
        self.calls.append((copy(x), copy(s), copy(estimate), copy(logits)))
        return logits


def train_args(kind: str, data: Path, out: Path, *extra: str) -> list[str]:
    """CLI argument list for a tiny, fp32, quick training run."""
    return ["train", kind, "--data", str(data), "--out", str(out), "--preset", "tiny",
            "--batch-size", "8", "--precision", "fp32", "--eval-batches", "1", "--log-every", "1",
            *extra]


@pytest.fixture(scope="session")
def tiny_train_args():
    return train_args


@pytest.fixture(scope="session")
def flm_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """A tiny FLM checkpoint trained for a few steps through the CLI entry point."""
    from flm_core.cli import main

    out = tmp_path_factory.mktemp("flm_ckpt") / "flm"
    code = main(train_args("flm", tiny_data, out, "--max-steps", "6", "--lr", "3e-3", "--warmup-steps", "2"))
    assert code == 0
    return out


def is_mapped(array) -> bool:
    """The array's memory is a memory map of a file (follows .base through views)."""
    while isinstance(array, np.ndarray):
        array = array.base
    return isinstance(array.obj if isinstance(array, memoryview) else array, mmap.mmap)

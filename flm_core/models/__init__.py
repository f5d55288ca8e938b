"""Networks: torch-only modules that know nothing about objectives."""
from typing import Protocol

import torch

from flm_core.config import ConfigError, ModelConfig
from flm_core.memory import BYTES_FP32, available_bytes, gib
from flm_core.models.ar import ARTransformer
from flm_core.models.dit import DiT, EmbeddingLayer


class EmbeddedDenoiser(Protocol):
    """A denoiser that reads a dense state x (B, L, K) only through h = x @ E (E = vocab_embed.embedding,
    (K, D)): network(x, s, t) == network.forward_embedded(vocab_embed(x), s, t). Flow samplers and the FLM
    loss use this to keep states and noise in D dimensions. The DiT is one; t is the flow map's second
    time (None: one time input, or a flow map's diagonal delta(x, s, s)). A self-conditioned one
    (config.self_condition) reads its estimate D_prev (B, L, K) the same way: network(x, s, t, D_prev) ==
    network.forward_embedded(vocab_embed(x), s, t, vocab_embed(D_prev))."""

    config: ModelConfig
    vocab_embed: EmbeddingLayer

    def forward_embedded(self, h: torch.Tensor, s: torch.Tensor, t: torch.Tensor | None = None,
                         estimate: torch.Tensor | None = None) -> torch.Tensor: ...


def network_class(config: ModelConfig) -> type:
    """causal -> ARTransformer, else DiT."""
    return ARTransformer if config.causal else DiT


def parameter_count(config: ModelConfig) -> int:
    """Exact parameter count of the network a config builds, counted on the meta device (shapes only,
    nothing allocated)."""
    config.validate()
    with torch.device("meta"):
        network = network_class(config)(config)
    return sum(p.numel() for p in network.parameters())


def build_network(config: ModelConfig):
    """The network for a model config (`network_class`). A config is validated and its weights checked
    against the free memory before anything is allocated."""
    params = parameter_count(config)
    needed, free = BYTES_FP32 * params, available_bytes()
    if needed > free:
        raise ConfigError(f"a model of {params:,} parameters needs {gib(needed)} for its "
                          f"weights alone, more than the {gib(free)} free here: choose a smaller "
                          f"vocab_size, hidden_size or n_blocks")
    return network_class(config)(config)

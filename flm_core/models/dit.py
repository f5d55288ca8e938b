"""DiT denoiser over dense token states (FLM, FMLM) or token ids (MDLM).

network(x, s, t=None, estimate=None) -> logits (B, L, K). The input x is either a dense state (B, L, K),
e.g. the noisy one-hot path x_g, embedded as x @ E, or token ids (B, L), embedded as E[x]. s is the model
time (B,); a flow map (double_time) also takes the target time t (B,), whose embedding is added
to that of s. A self-conditioned network (self_condition) also reads an estimate D_prev (B, L, K) of the
clean tokens, added to the input as W (D_prev @ E) + b with W, b zero-initialised. Parameter names match
the authors' released checkpoints.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flm_core.config import ModelConfig
from flm_core.models.layers import (LayerNorm, LearnableLossWeighting, Rotary, TimestepEmbedder,
                                    apply_rotary, feed_forward, modulate, softcap_attention)


class EmbeddingLayer(nn.Module):
    """Token embedding E (K, D) applied to ids or to dense states (B, L, K)."""

    def __init__(self, dim: int, vocab_size: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return self.embedding[x]
        return torch.matmul(x.to(self.embedding.dtype), self.embedding)  # (B, L, K) @ (K, D)


class DDiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-zero modulation from the time condition c (B, C)."""

    def __init__(self, dim: int, n_heads: int, cond_dim: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = feed_forward(dim)
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], c: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.adaLN_modulation(c)[:, None].chunk(6, dim=2))
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        q, k, v = self.attn_qkv(h).view(b, l, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        h = softcap_attention(q, k, v).transpose(1, 2).reshape(b, l, d)
        x = x + gate_msa * F.dropout(self.attn_out(h), self.dropout, self.training)
        h = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x + gate_mlp * F.dropout(h, self.dropout, self.training)


class DDiTFinalLayer(nn.Module):
    """Final norm, adaLN shift/scale and the zero-initialised projection to K logits."""

    def __init__(self, hidden_size: int, vocab_size: int, cond_dim: int):
        super().__init__()
        self.norm_final = LayerNorm(hidden_size)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_size)
        for layer in (self.linear, self.adaLN_modulation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """Bidirectional denoiser with one (FLM, MDLM) or two (FMLM) time inputs."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        if config.causal:
            raise ValueError("DiT is bidirectional; build a causal model with flm_core.models.ar.ARTransformer")
        self.config = config
        dim, cond = config.hidden_size, config.cond_dim
        self.vocab_embed = EmbeddingLayer(dim, config.vocab_size)
        self.estimate_proj = nn.Linear(dim, dim) if config.self_condition else None
        if self.estimate_proj is not None:  # zero: a fresh projection leaves the network's function unchanged
            nn.init.zeros_(self.estimate_proj.weight)
            nn.init.zeros_(self.estimate_proj.bias)
        self.sigma_map = TimestepEmbedder(cond)
        self.sigma_map_prime = TimestepEmbedder(cond) if config.double_time else None
        self.rotary_emb = Rotary(dim // config.n_heads)
        self.learnable_loss_weighting = LearnableLossWeighting(cond) if config.learnable_loss_weighting else None
        self.blocks = nn.ModuleList(
            DDiTBlock(dim, config.n_heads, cond, config.dropout) for _ in range(config.n_blocks))
        self.output_layer = DDiTFinalLayer(dim, config.vocab_size, cond)

    def forward(self, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor | None = None,
                estimate: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, K) dense or (B, L) ids; s, t: (B,) model times; estimate: D_prev (B, L, K) for a
        self-conditioned network (None: zeros) -> logits (B, L, K)."""
        return self.forward_embedded(self.vocab_embed(x), s, t,
                                     None if estimate is None else self.vocab_embed(estimate))

    def forward_embedded(self, h: torch.Tensor, s: torch.Tensor, t: torch.Tensor | None = None,
                         estimate: torch.Tensor | None = None) -> torch.Tensor:
        """The network after its input projection: h = x @ E (B, L, D) -> logits (B, L, K). The network
        sees a dense x only through h, and an estimate only through D_prev @ E (B, L, D) (None: zeros),
        which lets the flow sampler keep its state in D dimensions."""
        if self.estimate_proj is not None:  # h + W (D_prev @ E) + b, with D_prev = 0 for None
            h = h + self.estimate_proj(torch.zeros_like(h) if estimate is None else estimate)
        elif estimate is not None:
            raise ValueError("this network is not self-conditioned (self_condition=False); pass estimate=None")
        emb = self.sigma_map(s)
        if t is not None and self.sigma_map_prime is None:
            raise ValueError("this network has one time input (FLM/MDLM); pass t=None")
        if self.sigma_map_prime is not None:  # a flow map called with one time is its diagonal delta(x, s, s)
            emb = emb + self.sigma_map_prime(s if t is None else t)
        c = F.silu(emb)
        rotary = self.rotary_emb(h.shape[1], h.device)
        for block in self.blocks:
            h = block(h, rotary, c)
        return self.output_layer(h, c).float()

    def zero_init_output(self) -> None:
        """Zero the output layer's linear maps, so the network first outputs 0 everywhere (the authors' first-stage
        residual starts as its teacher's Euler step); the final norm keeps its weights, so gradients flow."""
        for layer in self.output_layer.modules():
            if isinstance(layer, nn.Linear):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def zero_init_second_time(self) -> None:
        """Make sigma_map_prime output 0 so that delta(x, s, t) starts equal to the FLM's D(x, s)."""
        nn.init.zeros_(self.sigma_map_prime.mlp[2].weight)
        nn.init.zeros_(self.sigma_map_prime.mlp[2].bias)

"""Causal transformer language model with a key/value cache for sampling.

Unlike the released causal block it keeps the DiT's attention softcap (50), which the shipped AR was trained with.

network(ids) -> next-token logits (B, L, K); blocks mirror the DiT's (same names, no adaLN).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flm_core.config import ModelConfig
from flm_core.models.dit import EmbeddingLayer
from flm_core.models.layers import LayerNorm, Rotary, apply_rotary, feed_forward, softcap_attention

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class CausalBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm2 = LayerNorm(dim)
        self.mlp = feed_forward(dim)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor],
                cache: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, L_new, D); cache holds keys/values (B, H, L_past, Dh) of earlier positions."""
        b, l, d = x.shape
        q, k, v = self.attn_qkv(self.norm1(x)).view(b, l, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        h = softcap_attention(q, k, v, causal=True).transpose(1, 2).reshape(b, l, d)
        x = x + F.dropout(self.attn_out(h), self.dropout, self.training)
        x = x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)
        return x, (k, v)


class OutputLayer(nn.Module):
    def __init__(self, hidden_size: int, vocab_size: int):
        super().__init__()
        self.norm_final = LayerNorm(hidden_size)
        self.linear = nn.Linear(hidden_size, vocab_size)
        nn.init.zeros_(self.linear.weight)  # as the released DIT's final layer: uniform predictions at init
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm_final(x))


class ARTransformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        if not config.causal:
            raise ValueError("ARTransformer needs a causal config (causal=true)")
        self.config = config
        dim = config.hidden_size
        self.vocab_embed = EmbeddingLayer(dim, config.vocab_size)
        self.rotary_emb = Rotary(dim // config.n_heads)
        self.blocks = nn.ModuleList(CausalBlock(dim, config.n_heads, config.dropout) for _ in range(config.n_blocks))
        self.output_layer = OutputLayer(dim, config.vocab_size)

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """ids (B, L) -> logits (B, L, K); logits[:, i] predicts token i + 1."""
        logits, _ = self.forward_cached(ids, cache)
        return logits

    def forward_cached(self, ids: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Run new positions ids (B, L_new) after the cached ones; returns logits and the longer cache."""
        past = 0 if cache is None else cache[0][0].shape[2]
        h = self.vocab_embed(ids)
        rotary = self.rotary_emb(ids.shape[1], ids.device, offset=past)
        new_cache = []
        for i, block in enumerate(self.blocks):
            h, kv = block(h, rotary, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.output_layer(h).float(), new_cache

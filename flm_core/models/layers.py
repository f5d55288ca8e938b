"""Building blocks shared by the DiT denoiser and the AR transformer (torch only).

Parameter names follow the authors' released DiT (`norm1`, `attn_qkv`, `attn_out`, `mlp.0`,
`adaLN_modulation`, `sigma_map.mlp.0`, ...) so that their state dicts load without renaming.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_SOFTCAP = 50.0


class LayerNorm(nn.Module):
    """LayerNorm without bias, computed in float32: y = weight * (x - mean) / std."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            y = F.layer_norm(x.float(), [self.dim])
        return y * self.weight


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with (B, 1, D) shift and scale."""
    return x * (1 + scale) + shift


class Rotary(nn.Module):
    """Rotary position embedding tables; `inv_freq` is a buffer as in the released checkpoints."""

    def __init__(self, head_dim: int, base: float = 10_000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, seq_len: int, device: torch.device, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape (L, head_dim/2) for positions offset .. offset+L-1."""
        pos = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq.float())
        return freqs.cos(), freqs.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Non-interleaved rotary on (B, H, L, Dh): x * cos + rotate_half(x) * sin, halves paired."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[None, None], sin[None, None]
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return rotated.to(x.dtype)


def softcap_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                      softcap: float = ATTENTION_SOFTCAP) -> torch.Tensor:
    """softmax(c * tanh(q k^T / (sqrt(Dh) c))) v on (B, H, L, Dh) tensors."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = softcap * torch.tanh(scores / softcap)
    if causal:
        lq, lk = q.shape[-2], k.shape[-2]
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(lk - lq + 1)
        scores = scores.masked_fill(future, float("-inf"))
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(v.dtype), v)


class TimestepEmbedder(nn.Module):
    """Scalar time -> vector: MLP(sinusoidal features of size 256)."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def sinusoidal(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
        """(B,) -> (B, dim): [cos(t f_j), sin(t f_j)], f_j = max_period^(-j / (dim/2))."""
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoidal(t, self.frequency_embedding_size))


class LearnableLossWeighting(nn.Module):
    """Per-time log-weight w(s) for losses of the form exp(-w) * loss + w (zero at init)."""

    def __init__(self, cond_dim: int, hidden_dim: int = 128):
        super().__init__()
        self.s_embed = TimestepEmbedder(cond_dim)
        self.mlp = nn.Sequential(nn.Linear(cond_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B,)"""
        return self.mlp(self.s_embed(s)).squeeze(-1)


def feed_forward(dim: int, ratio: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(ratio * dim, dim))

"""Autoguidance: a weaker denoiser of the same kind and vocabulary guides a stronger one.

guided(x, s, t) = l_weak + w * (l_strong - l_weak), with l = logits (B, L, K) of each network at the same
state and times; w = 1 is the strong network, w > 1 moves away from the weak one's errors.

Both networks read a dense x only through their own x @ E (E_strong (K, D_s), E_weak (K, D_w)), so the
guided pair is itself an embedded denoiser: its "embedding" stacks the two, h = x @ [E_strong | E_weak]
(B, L, D_s + D_w), and `forward_embedded` hands each network its own columns. Every flow update is linear
in x, so a flow run may keep h instead of the K-wide x, exactly as for one network. A self-conditioning
estimate D_prev is stacked and split the same way; a guide that is not self-conditioned gets none.
"""
from __future__ import annotations

import torch
from torch import nn


class StackedEmbedding(nn.Module):
    """x -> x @ [E_strong | E_weak]: (B, L, K) dense (or (B, L) ids) -> (B, L, D_s + D_w)."""

    def __init__(self, strong: nn.Module, weak: nn.Module):
        super().__init__()
        self.strong, self.weak = strong, weak

    @property
    def embedding(self) -> torch.Tensor:
        """[E_strong | E_weak] (K, D_s + D_w)."""
        return torch.cat([self.strong.embedding, self.weak.embedding], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.strong(x), self.weak(x)], dim=-1)


class GuidedDenoiser(nn.Module):
    """l_weak + w (l_strong - l_weak) from two networks with the same time inputs (one for FLM, two for a
    flow map) and vocabulary; calls both networks once per call."""

    def __init__(self, strong: nn.Module, weak: nn.Module, weight: float):
        super().__init__()
        self.strong, self.weak, self.weight = strong, weak, float(weight)
        self.config = strong.config
        self.vocab_embed = StackedEmbedding(strong.vocab_embed, weak.vocab_embed)

    def combine(self, strong: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
        return weak + self.weight * (strong - weak)  # l_weak + w (l_strong - l_weak)

    def weak_estimate(self, estimate: torch.Tensor | None) -> torch.Tensor | None:
        """The estimate for the weak network: none where it is not self-conditioned."""
        return estimate if self.weak.config.self_condition else None

    def forward(self, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor | None = None,
                estimate: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, K) dense; s, t: (B,); estimate: D_prev (B, L, K) of a self-conditioned pair (the weak
        network reads it only if it is self-conditioned too) -> guided logits (B, L, K)."""
        return self.combine(self.strong(x, s, t, estimate), self.weak(x, s, t, self.weak_estimate(estimate)))

    def forward_embedded(self, h: torch.Tensor, s: torch.Tensor, t: torch.Tensor | None = None,
                         estimate: torch.Tensor | None = None) -> torch.Tensor:
        """h = x @ [E_strong | E_weak] (B, L, D_s + D_w), estimate = D_prev @ [E_strong | E_weak] (or None)
        -> guided logits (B, L, K)."""
        d = self.strong.config.hidden_size
        strong, weak = (None, None) if estimate is None else (estimate[..., :d], estimate[..., d:])
        return self.combine(self.strong.forward_embedded(h[..., :d], s, t, strong),
                            self.weak.forward_embedded(h[..., d:], s, t, self.weak_estimate(weak)))

"""Corruptions: the one-hot Gaussian path (FLM/FMLM), masking (MDLM), and time draws."""
from __future__ import annotations

import torch


def stratified_uniform(batch: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """(B,) draws covering [0, 1) once per stratum: t_i = (i + U_i) / B."""
    u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
    return ((torch.arange(batch, device=device, dtype=torch.float64) + u) / batch).float()


def one_hot_path(tokens: torch.Tensor, gamma: torch.Tensor, vocab_size: int,
                 generator: torch.Generator) -> torch.Tensor:
    """x_g = (1 - g) * eps + g * e(x), eps ~ N(0, I): tokens (B, L), gamma (B,) -> (B, L, K)."""
    g = gamma.to(torch.float32).view(-1, 1, 1)
    eps = torch.randn(*tokens.shape, vocab_size, generator=generator, device=tokens.device)
    x = (1 - g) * eps
    return x.scatter_add_(-1, tokens.unsqueeze(-1), g.expand(-1, tokens.shape[1], 1).contiguous())


def noise_factor(embedding: torch.Tensor) -> torch.Tensor:
    """chol(E^T E) (D, D), so that z @ chol^T ~ N(0, E^T E) = the law of eps @ E for eps ~ N(0, I_K). A jitter
    of 1e-6 of the mean eigenvalue keeps it exact to that relative size even if E loses rank (K >= D)."""
    with torch.autocast(embedding.device.type, enabled=False):
        gram = embedding.float().T @ embedding.float()
        jitter = 1e-6 * gram.diagonal().mean().clamp_min(1e-12)
        chol, _ = torch.linalg.cholesky_ex(gram + jitter * torch.eye(len(gram), device=gram.device))  # no sync
    return chol


def embedded_noise(shape: tuple[int, ...], factor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """eps @ E for eps ~ N(0, I_K) of shape (*shape, K), without the K-wide draw: z @ factor^T with
    z ~ N(0, I_D) and factor = `noise_factor(E)`: (*shape, D); gradients reach E through the factor."""
    z = torch.randn(*shape, factor.shape[0], generator=generator, device=factor.device)
    return z @ factor.T


def embedded_one_hot_path(tokens: torch.Tensor, gamma: torch.Tensor, embedding: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    """x_g @ E without materialising the K-wide noise: tokens (B, L), gamma (B,), E (K, D) -> (B, L, D).
    x_g @ E = (1 - g) eps @ E + g E[x], with eps @ E from `embedded_noise`; gradients reach E through E[x]
    and the noise's Cholesky factor."""
    g = gamma.to(torch.float32).view(-1, 1, 1)
    noise = embedded_noise(tuple(tokens.shape), noise_factor(embedding), generator)
    return (1 - g) * noise + g * embedding[tokens]


def renoised_step(x: torch.Tensor, denoised: torch.Tensor, gamma_from: torch.Tensor, gamma_to: torch.Tensor,
                  eta: float, fresh_noise: torch.Tensor) -> torch.Tensor:
    """A stochastic flow step: with the implied noise eps_hat = (x - g D) / (1 - g),
    x' = g' D + (1 - g') (sqrt(1 - eta^2) eps_hat + eta eps_new); eta = 0 is `flow_map_step` (the Euler /
    flow-map step), eta = 1 draws the noise afresh. Linear in x, D and eps_new, so it holds on x @ E too."""
    g_s = torch.as_tensor(gamma_from, device=x.device, dtype=torch.float32).reshape(-1, 1, 1)
    g_t = torch.as_tensor(gamma_to, device=x.device, dtype=torch.float32).reshape(-1, 1, 1)
    eps_hat = (x.float() - g_s * denoised.float()) / (1 - g_s).clamp_min(1e-6)
    noise = (1 - eta ** 2) ** 0.5 * eps_hat + eta * fresh_noise.float()
    return g_t * denoised.float() + (1 - g_t) * noise


def flow_map_step(x: torch.Tensor, denoised: torch.Tensor, gamma_from: torch.Tensor,
                  gamma_to: torch.Tensor) -> torch.Tensor:
    """X_{s,t}(x) = x + (g_t - g_s) / (1 - g_s) * (delta - x) on (B, L, K) (or its projection (B, L, D): the
    step is linear), gammas (B,) or scalars, in the wider dtype of x and delta; one fused lerp pass
    (about half the time of the three K-wide passes of the written formula)."""
    dtype = torch.promote_types(x.dtype, denoised.dtype)
    g_s = torch.as_tensor(gamma_from, device=x.device, dtype=dtype).reshape(-1, 1, 1)
    g_t = torch.as_tensor(gamma_to, device=x.device, dtype=dtype).reshape(-1, 1, 1)
    return torch.lerp(x.to(dtype), denoised.to(dtype), (g_t - g_s) / (1 - g_s).clamp_min(1e-6))


def mask_tokens(tokens: torch.Tensor, t: torch.Tensor, mask_id: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Absorbing-state corruption with P(masked) = t (log-linear schedule, alpha_t = 1 - t).

    tokens (B, L), t (B,) -> (x_t (B, L), masked (B, L) bool)."""
    masked = torch.rand(tokens.shape, generator=generator, device=tokens.device) < t.view(-1, 1)
    return torch.where(masked, torch.full_like(tokens, mask_id), tokens), masked


def subs_logits(logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    """MDLM's SUBS parameterisation: the mask is never predicted (its logit set to -inf, in place)."""
    logits[..., mask_id] = float("-inf")
    return logits

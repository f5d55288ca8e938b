"""Time schedule of the continuous flow: gamma (noise level) <-> alpha (model clock).

A token x over a vocabulary of K symbols is embedded one-hot, e(x) in R^K, and noised as

    x_g = (1 - g) * eps + g * e(x),        eps ~ N(0, I_K),  g in [0, 1].

The argmax of x_g is the right token when eps_x + m > eps_j for every j != x, with
m = g / (1 - g). Conditioning on z = eps_x,

    q(g) = P(argmax x_g = x) = E_{z ~ N(0,1)}[ Phi(z + m)^(K-1) ],

which rises from q(0) = 1/K (chance) to q(1) = 1. The model clock rescales it to [0, 1]:

    t = alpha(g) = K/(K-1) * (q(g) - 1/K),      alpha(0) = 0, alpha(1) = 1, increasing.

Samplers step uniformly in t and need g = alpha^{-1}(t).

Both maps are piecewise-linear interpolants of one table per K, built once in float64 on
the CPU (see `_cpu_table`) and cached; each call is pure torch (searchsorted + lerp).
The table error is below 1e-5 absolute for every K (quadrature error ~1e-13, linear
interpolation error <= h_m^2/8 * max|alpha''| with node spacing h_m in m).
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import time

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

# Table nodes are uniform in m = g/(1-g) with this spacing. alpha(m) is the CDF of
# m' = eps_max - z (a variable with sd >= 1), so |d^2 alpha/dm^2| <= ~0.25, and linear
# interpolation in g between these nodes errs by at most ~h_m^2/8 * 1.4 ~ 4e-6.
_M_STEP = 0.005
# Trapezoid rule in z over [-_Z_LIMIT, _Z_LIMIT]: the integrand is <= phi(z), so the
# truncated tails weigh 2 * Phi(-9) ~ 2e-19; for this smooth, decaying integrand the
# trapezoid rule converges spectrally and h_z = 0.05 is exact to ~1e-13 for K up to 1e6.
_Z_STEP = 0.05
_Z_LIMIT = 9.0
# Beyond m_max the table jumps straight to (g=1, alpha=1); see `_m_max`.
_TAIL_LOG_TOLERANCE = 40.0


def _check_vocab_size(vocab_size: int) -> int:
    k = operator.index(vocab_size)
    if k < 2:
        raise ValueError(f"vocab_size must be >= 2, got {k}")
    return k


def _m_max(vocab_size: int) -> float:
    """Signal-to-noise m past which alpha = 1 to within 1e-16.

    Union bound: 1 - q <= (K-1) * P(eps_j - z > m) = (K-1) * Phi(-m/sqrt 2)
    <= K * exp(-m^2/4), which is <= exp(-_TAIL_LOG_TOLERANCE) ~ 4e-18 once
    m >= 2 * sqrt(ln K + _TAIL_LOG_TOLERANCE).
    """
    return 2.0 * math.sqrt(math.log(vocab_size) + _TAIL_LOG_TOLERANCE)


def _q_of_m(m: Tensor, vocab_size: int) -> Tensor:
    """q(m) = int phi(z) * exp((K-1) * log Phi(z + m)) dz by the trapezoid rule (float64).

    Working with log Phi (torch.special.log_ndtr) keeps Phi^(K-1) finite and exact
    for K up to millions; it underflows cleanly to 0 where the token is surely lost.
    """
    n_half = round(_Z_LIMIT / _Z_STEP)
    z = torch.arange(-n_half, n_half + 1, dtype=torch.float64) * _Z_STEP
    weights = _Z_STEP * torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    log_cdf = torch.special.log_ndtr(z[None, :] + m[:, None])
    return torch.exp((vocab_size - 1) * log_cdf) @ weights


@functools.lru_cache(maxsize=64)
def _cpu_table(vocab_size: int) -> tuple[Tensor, Tensor]:
    """(gamma nodes, alpha nodes) on the CPU in float64, both non-decreasing.

    gamma_i = m_i / (1 + m_i) for m_i = i * _M_STEP up to `_m_max`, then gamma = 1.
    alpha_i = K/(K-1) * (q(m_i) - 1/K), made non-decreasing (running max) and clipped to
    [0, 1] so that rounding noise of order 1e-16 cannot break monotonicity; the
    endpoints are set to their exact values alpha(0) = 0 and alpha(1) = 1.
    """
    start = time.perf_counter()
    k = vocab_size
    n_nodes = math.ceil(_m_max(k) / _M_STEP) + 1
    m = torch.arange(n_nodes, dtype=torch.float64) * _M_STEP
    alpha = k / (k - 1) * (_q_of_m(m, k) - 1.0 / k)
    alpha = torch.cummax(alpha, dim=0).values.clamp(0.0, 1.0)
    alpha[0] = 0.0
    gamma = torch.cat([m / (1.0 + m), torch.ones(1, dtype=torch.float64)])
    alpha = torch.cat([alpha, torch.ones(1, dtype=torch.float64)])
    logger.debug(
        "built alpha/gamma table for K=%d: %d nodes in %.1f ms",
        k,
        gamma.numel(),
        1e3 * (time.perf_counter() - start),
    )
    return gamma, alpha


@torch.compiler.disable  # a cache to read, not code to trace: dynamo would trace the table's build each time
@functools.lru_cache(maxsize=None)
def _device_table(vocab_size: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The CPU float64 table of `_cpu_table`, cast and moved once per (K, device, dtype)."""
    gamma, alpha = _cpu_table(vocab_size)
    return gamma.to(device=device, dtype=dtype), alpha.to(device=device, dtype=dtype)


def _work_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of the points (xp, fp) at x, clamped to [xp[0], xp[-1]].

    xp and fp are 1-D and non-decreasing, so the result is non-decreasing in x. Where x
    hits a run of equal xp the value at the right end of the run is returned: searchsorted
    with right=True picks xp[lo] <= x < xp[hi], and a zero-width segment (possible only at
    x = xp[-1]) takes weight 1.
    """
    x = x.clamp(xp[0], xp[-1]).contiguous()
    hi = torch.searchsorted(xp, x, right=True).clamp(max=xp.numel() - 1)
    lo = hi - 1
    x0, x1 = xp[lo], xp[hi]
    span = x1 - x0
    weight = torch.where(span > 0, (x - x0) / torch.where(span > 0, span, 1.0), 1.0)
    return torch.lerp(fp[lo], fp[hi], weight)


def alpha_from_gamma(gamma: Tensor, vocab_size: int) -> Tensor:
    """t = alpha(g) = K/(K-1) * (E_z[Phi(z + g/(1-g))^(K-1)] - 1/K), elementwise.

    Any shape; the result has the shape, device and dtype of `gamma` (non-float inputs
    give float32). g is clamped to [0, 1]; alpha(0) = 0 and alpha(1) = 1 exactly, and
    the map is non-decreasing and differentiable almost everywhere.
    """
    k = _check_vocab_size(vocab_size)
    dtype = _work_dtype(gamma)
    gamma_nodes, alpha_nodes = _device_table(k, gamma.device, dtype)
    alpha = _interp(gamma.to(dtype), gamma_nodes, alpha_nodes)
    return alpha.to(gamma.dtype) if gamma.is_floating_point() else alpha


def gamma_from_alpha(alpha: Tensor, vocab_size: int) -> Tensor:
    """g = alpha^{-1}(t): the noise level at which the model clock reads t, elementwise.

    The exact inverse of the piecewise-linear `alpha_from_gamma` wherever that one is
    strictly increasing. Any shape; same shape, device and dtype as `alpha` (non-float
    inputs give float32). t is clamped to [0, 1]; gamma(0) = 0 and gamma(1) = 1 exactly,
    and the map is non-decreasing. Where alpha is flat to working precision (large K at
    small g) the inverse is ill-conditioned by nature.
    """
    k = _check_vocab_size(vocab_size)
    dtype = _work_dtype(alpha)
    gamma_nodes, alpha_nodes = _device_table(k, alpha.device, dtype)
    a = alpha.to(dtype)
    gamma = _interp(a, alpha_nodes, gamma_nodes)
    gamma = torch.where(a <= 0, torch.zeros_like(gamma), gamma)
    return gamma.to(alpha.dtype) if alpha.is_floating_point() else gamma


def q_correct(gamma: Tensor, vocab_size: int) -> Tensor:
    """q(g) = P(argmax x_g is the right token) = 1/K + (K-1)/K * alpha(g)."""
    k = _check_vocab_size(vocab_size)
    return 1.0 / k + (k - 1) / k * alpha_from_gamma(gamma, k)


def decoding_error(gamma: Tensor, vocab_size: int) -> Tensor:
    """1 - q(g) = (K-1)/K * (1 - alpha(g)): share of positions whose argmax is wrong."""
    k = _check_vocab_size(vocab_size)
    return (k - 1) / k * (1.0 - alpha_from_gamma(gamma, k))


STEP_GRID = tuple(2 ** i for i in range(11))  # step counts the app offers and bench measures: 1, 2, 4, ..., 1024


def uniform_time_grid(
    steps: int, vocab_size: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Sampling grid uniform in the model clock: t_i = i/steps, g_i = alpha^{-1}(t_i).

    Returns (t, g), each float32 of length steps + 1 on `device`, with t[0] = g[0] = 0 and
    t[-1] = g[-1] = 1; g is computed in float64 and then rounded.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    g = gamma_from_alpha(t, vocab_size)
    return t.to(device=device, dtype=torch.float32), g.to(device=device, dtype=torch.float32)

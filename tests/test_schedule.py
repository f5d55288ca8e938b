"""Tests of flm_core.schedule against an independent scipy reference.

Reference: q(g) = int phi(z) Phi(z + m)^(K-1) dz with m = g/(1-g), by adaptive
quadrature (scipy.integrate.quad) with a breakpoint where Phi(z + m)^(K-1) switches on,
and alpha = K/(K-1) * (q - 1/K).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from flm_core import schedule
from flm_core.schedule import (
    alpha_from_gamma,
    decoding_error,
    gamma_from_alpha,
    q_correct,
    uniform_time_grid,
)

VOCAB_SIZES = [2, 3, 10, 64, 1000, 4096, 30522, 100000]
TOLERANCE = 1e-4
Z_LIMIT = 12.0  # phi(12) ~ 1e-32: the truncated tails are far below the tolerance

# g values hand-picked near both ends plus seeded random ones in between.
EDGE_GAMMAS = [0.0, 1e-8, 1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
               0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999,
               1.0 - 1e-6, 1.0]
TEST_GAMMAS = np.concatenate([EDGE_GAMMAS, np.random.default_rng(0).uniform(0.0, 1.0, 40)])


def reference_q(g: float, k: int) -> float:
    """q(g) = int phi(z) exp((K-1) log Phi(z + m)) dz by scipy quad, m = g/(1-g)."""
    if g >= 1.0:
        return 1.0
    m = g / (1.0 - g)

    def integrand(z: float) -> float:
        return math.exp(-0.5 * z * z + (k - 1) * special.log_ndtr(z + m)) / math.sqrt(2 * math.pi)

    # Phi(y)^(K-1) = 1/2 at y = Phi^{-1}(2^{-1/(K-1)}); it rises over ~1 unit of y around it.
    center = special.ndtri(0.5 ** (1.0 / (k - 1))) - m
    points = [p for p in (center - 1.0, center, center + 1.0) if -Z_LIMIT < p < Z_LIMIT]
    q, _ = integrate.quad(
        integrand, -Z_LIMIT, Z_LIMIT, points=points or None, limit=200, epsabs=1e-12, epsrel=1e-10
    )
    return q


def reference_alpha(g: float, k: int) -> float:
    return k / (k - 1) * (reference_q(g, k) - 1.0 / k)


def test_reference_is_sane() -> None:
    """By symmetry q(0) = 1/K; the reference must reproduce it before it can judge anything."""
    for k in VOCAB_SIZES:
        assert reference_q(0.0, k) == pytest.approx(1.0 / k, rel=1e-8, abs=1e-12)
        assert reference_alpha(0.999, k) == pytest.approx(1.0, abs=1e-9)


def test_two_tokens_closed_form() -> None:
    """K = 2: q = P(z1 + m > z2) = P(z2 - z1 < m) = Phi(m / sqrt 2), so alpha = 2 Phi(m/sqrt 2) - 1."""
    g = torch.linspace(0.0, 0.999, 4001, dtype=torch.float64)
    m = g / (1.0 - g)
    expected = 2.0 * torch.special.ndtr(m / math.sqrt(2.0)) - 1.0
    assert (alpha_from_gamma(g, 2) - expected).abs().max().item() < TOLERANCE
    assert reference_alpha(0.3, 2) == pytest.approx(2 * special.ndtr(0.3 / 0.7 / math.sqrt(2)) - 1, abs=1e-10)


@pytest.mark.parametrize("k", VOCAB_SIZES)
def test_alpha_matches_quadrature(k: int) -> None:
    expected = torch.tensor([reference_alpha(g, k) for g in TEST_GAMMAS], dtype=torch.float64)
    got = alpha_from_gamma(torch.tensor(TEST_GAMMAS, dtype=torch.float64), k)
    error = (got - expected).abs().max().item()
    assert error < TOLERANCE, f"K={k}: max |alpha - reference| = {error:.2e}"


@pytest.mark.parametrize("k", VOCAB_SIZES)
def test_q_correct_and_decoding_error(k: int) -> None:
    g = torch.tensor(EDGE_GAMMAS, dtype=torch.float64)
    q = q_correct(g, k)
    expected = torch.tensor([reference_q(x, k) for x in EDGE_GAMMAS], dtype=torch.float64)
    assert (q - expected).abs().max().item() < TOLERANCE
    assert torch.allclose(q + decoding_error(g, k), torch.ones_like(q), atol=1e-12)
    assert q[0].item() == pytest.approx(1.0 / k, abs=1e-15)
    assert decoding_error(g, k)[-1].item() == 0.0


@pytest.mark.parametrize("k", VOCAB_SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_monotone(k: int, dtype: torch.dtype) -> None:
    x = torch.linspace(0.0, 1.0, 200001, dtype=dtype)
    assert (alpha_from_gamma(x, k).diff() >= 0).all()
    assert (gamma_from_alpha(x, k).diff() >= 0).all()


@pytest.mark.parametrize("k", VOCAB_SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_endpoints_exact(k: int, dtype: torch.dtype) -> None:
    ends = torch.tensor([0.0, 1.0], dtype=dtype)
    assert alpha_from_gamma(ends, k).tolist() == [0.0, 1.0]
    assert gamma_from_alpha(ends, k).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("k", VOCAB_SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips(k: int, dtype: torch.dtype) -> None:
    a = torch.linspace(0.0, 1.0, 20001, dtype=dtype)
    assert (alpha_from_gamma(gamma_from_alpha(a, k), k) - a).abs().max().item() < TOLERANCE

    g = torch.linspace(0.0, 1.0, 20001, dtype=dtype)
    step = 1e-4
    slope = (alpha_from_gamma(g + step, k) - alpha_from_gamma(g - step, k)).double() / (2 * step)
    steep = slope > 1e-2  # "alpha not flat": 1e-2 keeps float32 rounding of t below 1e-5 in g
    assert steep.sum() > 1000
    error = (gamma_from_alpha(alpha_from_gamma(g, k), k) - g)[steep].abs().max().item()
    assert error < TOLERANCE


@pytest.mark.parametrize("fn", [alpha_from_gamma, gamma_from_alpha, q_correct, decoding_error])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_preserved(fn, dtype: torch.dtype) -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for shape in [(), (0,), (7,), (2, 3, 4)]:
            x = torch.rand(shape, dtype=dtype, device=device)
            y = fn(x, 30522)
            assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        x = torch.rand(3, 5, dtype=dtype, device=device).t()  # non-contiguous
        assert torch.equal(fn(x, 30522), fn(x.contiguous(), 30522))


@pytest.mark.parametrize("k", [2, 1000, 100000])
def test_float32_matches_float64(k: int) -> None:
    g64 = torch.linspace(0.0, 1.0, 10001, dtype=torch.float64)
    g32 = g64.float()
    assert (alpha_from_gamma(g32, k).double() - alpha_from_gamma(g32.double(), k)).abs().max() < 1e-6
    assert (gamma_from_alpha(g32, k).double() - gamma_from_alpha(g32.double(), k)).abs().max() < 1e-5


def test_out_of_range_inputs_are_clamped() -> None:
    x = torch.tensor([-0.5, 1.5], dtype=torch.float64)
    assert alpha_from_gamma(x, 64).tolist() == [0.0, 1.0]
    assert gamma_from_alpha(x, 64).tolist() == [0.0, 1.0]


def test_table_is_built_once_per_vocab_size(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    quadrature = schedule._q_of_m

    def counting(m: torch.Tensor, vocab_size: int) -> torch.Tensor:
        calls.append(vocab_size)
        return quadrature(m, vocab_size)

    monkeypatch.setattr(schedule, "_q_of_m", counting)
    schedule._cpu_table.cache_clear()
    schedule._device_table.__wrapped__.cache_clear()  # under torch.compiler.disable
    g = torch.rand(16)
    alpha_from_gamma(g, 777)
    gamma_from_alpha(g, 777)
    alpha_from_gamma(g.double(), 777)  # new dtype: cast again, but no new quadrature
    uniform_time_grid(10, 777)
    assert calls == [777]
    alpha_from_gamma(g, 778)
    assert calls == [777, 778]
    schedule._cpu_table.cache_clear()
    schedule._device_table.__wrapped__.cache_clear()  # under torch.compiler.disable


@pytest.mark.parametrize("k", [2, 30522])
def test_uniform_time_grid(k: int) -> None:
    t, g = uniform_time_grid(16, k)
    assert t.shape == g.shape == (17,)
    assert t.dtype == g.dtype == torch.float32
    assert torch.equal(t, torch.linspace(0.0, 1.0, 17))
    assert g[0].item() == 0.0 and g[-1].item() == 1.0
    assert (g.diff() > 0).all()
    assert (alpha_from_gamma(g.double(), k) - t.double()).abs().max().item() < TOLERANCE


def test_invalid_arguments() -> None:
    x = torch.zeros(3)
    for bad in (1, 0, -5):
        with pytest.raises(ValueError):
            alpha_from_gamma(x, bad)
    with pytest.raises(TypeError):
        gamma_from_alpha(x, 2.5)
    with pytest.raises(ValueError):
        uniform_time_grid(0, 10)

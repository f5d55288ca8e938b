"""Corruptions: the one-hot Gaussian path, the flow map step, time draws and masking."""
import math

import pytest
import torch
import torch.nn.functional as F

from flm_core.paths import flow_map_step, mask_tokens, one_hot_path, stratified_uniform

K = 50


def _tokens(b: int, l: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, K, (b, l), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ one_hot_path


def test_one_hot_path_is_the_interpolation_of_the_same_noise():
    """x_g = (1 - g) eps + g e(x), with eps the generator's next (B, L, K) normal draw."""
    tokens = _tokens(4, 7)
    gamma = torch.tensor([0.0, 0.3, 0.75, 1.0])
    x = one_hot_path(tokens, gamma, K, torch.Generator().manual_seed(5))
    eps = torch.randn(4, 7, K, generator=torch.Generator().manual_seed(5))
    expected = (1 - gamma.view(-1, 1, 1)) * eps + gamma.view(-1, 1, 1) * F.one_hot(tokens, K).float()
    assert x.shape == (4, 7, K) and x.dtype == torch.float32
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)


def test_one_hot_path_gamma_zero_is_standard_normal():
    tokens = _tokens(64, 32)
    x = one_hot_path(tokens, torch.zeros(64), K, torch.Generator().manual_seed(1))
    n = x.numel()  # ~100k draws: sd of the mean ~ 0.003
    assert abs(x.mean().item()) < 5 / math.sqrt(n)
    assert abs(x.std().item() - 1.0) < 0.01
    # the right token's coordinate is not special at g = 0
    right = x.gather(-1, tokens.unsqueeze(-1))
    assert abs(right.mean().item()) < 5 / math.sqrt(right.numel())


def test_one_hot_path_gamma_one_is_exactly_one_hot():
    tokens = _tokens(3, 9)
    x = one_hot_path(tokens, torch.ones(3), K, torch.Generator().manual_seed(2))
    assert torch.equal(x, F.one_hot(tokens, K).float())


def test_one_hot_path_gamma_half_statistics():
    """At g = 0.5 the right coordinate is 0.5 + 0.5 eps (mean 0.5, sd 0.5); others are 0.5 eps."""
    tokens = _tokens(256, 32)
    x = one_hot_path(tokens, torch.full((256,), 0.5), K, torch.Generator().manual_seed(3))
    hot = F.one_hot(tokens, K).bool()
    right, others = x[hot], x[~hot]
    tol_r = 5 * 0.5 / math.sqrt(right.numel())
    assert abs(right.mean().item() - 0.5) < tol_r
    assert abs(right.std().item() - 0.5) < 0.02
    assert abs(others.mean().item()) < 5 * 0.5 / math.sqrt(others.numel())
    assert abs(others.std().item() - 0.5) < 0.005


def test_one_hot_path_per_row_gamma_and_determinism():
    tokens = _tokens(2, 5)
    gamma = torch.tensor([0.0, 1.0])
    a = one_hot_path(tokens, gamma, K, torch.Generator().manual_seed(9))
    b = one_hot_path(tokens, gamma, K, torch.Generator().manual_seed(9))
    c = one_hot_path(tokens, gamma, K, torch.Generator().manual_seed(10))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], c[0])  # noise row changes with the seed
    assert torch.equal(a[1], c[1]) and torch.equal(a[1], F.one_hot(tokens[1], K).float())  # data row does not


# ------------------------------------------------------------------ flow_map_step


def test_flow_map_step_formula_with_per_row_gammas():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, K, generator=g, dtype=torch.float64)
    delta = torch.softmax(torch.randn(3, 4, K, generator=g, dtype=torch.float64), -1)
    g_s = torch.tensor([0.0, 0.2, 0.6], dtype=torch.float64)
    g_t = torch.tensor([0.5, 0.9, 0.7], dtype=torch.float64)
    out = flow_map_step(x, delta, g_s, g_t)
    for i in range(3):
        c = (g_t[i] - g_s[i]) / (1 - g_s[i])
        torch.testing.assert_close(out[i], x[i] + c * (delta[i] - x[i]), rtol=0, atol=1e-12)


def test_flow_map_step_identity_when_t_equals_s():
    x = torch.randn(2, 3, K)
    delta = torch.softmax(torch.randn(2, 3, K), -1)
    for g in (0.0, 0.37, 0.99):
        assert torch.equal(flow_map_step(x, delta, g, g), x)
        gt = torch.full((2,), g)
        assert torch.equal(flow_map_step(x, delta, gt, gt), x)


def test_flow_map_step_to_data_returns_delta():
    x = torch.randn(2, 3, K)
    delta = torch.softmax(torch.randn(2, 3, K), -1)
    for g_s in (0.0, 0.25, 0.9):
        torch.testing.assert_close(flow_map_step(x, delta, g_s, 1.0), delta, rtol=0, atol=1e-6)
    torch.testing.assert_close(flow_map_step(x, delta, torch.tensor([0.0, 0.5]), torch.ones(2)), delta,
                               rtol=0, atol=1e-6)


def test_flow_map_step_is_the_straight_path_velocity():
    """From a point on the path x_g = (1-g) eps + g e, the step with delta = e stays on that path."""
    eps = torch.randn(1, 6, K, dtype=torch.float64)
    e = F.one_hot(torch.arange(6).view(1, 6), K).double()
    path = lambda g: (1 - g) * eps + g * e  # noqa: E731
    torch.testing.assert_close(flow_map_step(path(0.2), e, 0.2, 0.65), path(0.65), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ stratified_uniform


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_stratified_uniform_one_draw_per_stratum(batch):
    for seed in range(20):
        t = stratified_uniform(batch, torch.Generator().manual_seed(seed), "cpu")
        assert t.shape == (batch,) and t.dtype == torch.float32
        lower = torch.arange(batch) / batch
        upper = (torch.arange(batch) + 1) / batch
        assert bool(((t >= lower) & (t <= upper)).all()), t
        assert bool(((t >= 0) & (t < 1)).all())


def test_stratified_uniform_is_uniform_and_seeded():
    draws = torch.cat([stratified_uniform(4, torch.Generator().manual_seed(s), "cpu") for s in range(2000)])
    assert abs(draws.mean().item() - 0.5) < 0.01  # stratification: much tighter than 1/sqrt(12 n)
    hist = torch.histc(draws, bins=10, min=0, max=1) / draws.numel()
    assert torch.allclose(hist, torch.full((10,), 0.1), atol=0.01)
    a = stratified_uniform(8, torch.Generator().manual_seed(3), "cpu")
    b = stratified_uniform(8, torch.Generator().manual_seed(3), "cpu")
    c = stratified_uniform(8, torch.Generator().manual_seed(4), "cpu")
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------ mask_tokens


def test_mask_tokens_fraction_and_values():
    tokens = torch.randint(3, K, (4, 4096), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 0.25, 0.7, 1.0])
    x, masked = mask_tokens(tokens, t, 1, torch.Generator().manual_seed(1))
    assert x.shape == tokens.shape and masked.dtype == torch.bool and x.dtype == tokens.dtype
    assert torch.equal(x[masked], torch.ones_like(x[masked]))  # masked positions hold the mask id
    assert torch.equal(x[~masked], tokens[~masked])  # the others are untouched
    assert torch.equal(masked, x == 1)
    frac = masked.float().mean(1)
    assert frac[0] == 0 and frac[3] == 1
    sd = math.sqrt(0.25 * 0.75 / 4096)
    assert abs(frac[1].item() - 0.25) < 5 * sd and abs(frac[2].item() - 0.7) < 5 * sd


def test_mask_tokens_is_seeded():
    tokens = torch.randint(3, K, (2, 64))
    t = torch.full((2,), 0.5)
    a = mask_tokens(tokens, t, 1, torch.Generator().manual_seed(0))
    b = mask_tokens(tokens, t, 1, torch.Generator().manual_seed(0))
    c = mask_tokens(tokens, t, 1, torch.Generator().manual_seed(1))
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])


def test_embedded_one_hot_path_is_the_projection_of_the_dense_path():
    """x_g @ E for x_g = (1 - g) eps + g e_x: mean g E[x], covariance (1 - g)^2 E^T E (100k draws)."""
    from flm_core.paths import embedded_one_hot_path

    g = torch.Generator().manual_seed(0)
    e = torch.randn(40, 6, generator=g) * torch.linspace(0.2, 2.0, 6) + 0.3 * torch.randn(40, 1, generator=g)
    tokens = torch.full((20_000, 5), 7)
    for gamma in (0.0, 0.4):
        h = embedded_one_hot_path(tokens, torch.full((20_000,), gamma), e, g).flatten(0, 1).double()
        centred = h - gamma * e[7].double()
        cov = centred.T @ centred / centred.shape[0]
        expected = (1 - gamma) ** 2 * (e.T @ e).double()
        torch.testing.assert_close(cov, expected, rtol=0, atol=0.03 * expected.diagonal().max().item())
        assert centred.mean(0).abs().max() < 0.05 * expected.diagonal().max().sqrt()
    ones = embedded_one_hot_path(tokens[:3], torch.ones(3), e, g)
    torch.testing.assert_close(ones, e[tokens[:3]])

"""Networks: shapes, parameter counts, initialisation, input forms, time inputs, KV cache,
causality, and the DiT against an independent re-implementation of the released architecture."""
import math

import pytest
import torch
import torch.nn.functional as F

from flm_core.config import ConfigError, ModelConfig
from flm_core.models import ARTransformer, DiT, build_network, parameter_count

K, L, B = 61, 12, 3
TINY = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16, dropout=0.0)


def cfg(**kw) -> ModelConfig:
    return ModelConfig(vocab_size=K, seq_len=L, **{**TINY, **kw})


def ids(seed: int = 0, b: int = B) -> torch.Tensor:
    return torch.randint(0, K, (b, L), generator=torch.Generator().manual_seed(seed))


def noise(seed: int = 0, b: int = B) -> torch.Tensor:
    return torch.randn(b, L, K, generator=torch.Generator().manual_seed(seed))


def times(seed: int = 0, b: int = B) -> torch.Tensor:
    return torch.rand(b, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ shapes and sizes


@pytest.mark.parametrize("kw", [{}, {"double_time": True}, {"causal": True}, {"learnable_loss_weighting": True},
                                {"causal": True, "learnable_loss_weighting": True},
                                {"double_time": True, "learnable_loss_weighting": True}, {"self_condition": True},
                                {"hidden_size": 48, "n_heads": 3, "n_blocks": 3, "cond_dim": 24}])
def test_parameter_count_of_a_config_is_exact(kw):
    config = cfg(**kw)
    network = build_network(config)
    assert isinstance(network, ARTransformer if config.causal else DiT)
    assert sum(p.numel() for p in network.parameters()) == parameter_count(config)


def test_output_shapes():
    dit = DiT(cfg())
    assert dit(ids(), times()).shape == (B, L, K)
    assert dit(noise(), times()).shape == (B, L, K)
    fm = DiT(cfg(double_time=True))
    assert fm(noise(), times(0), times(1)).shape == (B, L, K)
    ar = ARTransformer(cfg(causal=True))
    out = ar(ids())
    assert out.shape == (B, L, K) and out.dtype == torch.float32
    assert ar(ids()[:, :5]).shape == (B, 5, K)


def test_wrong_constructor_or_time_inputs_raise():
    with pytest.raises(ValueError, match="causal"):
        DiT(cfg(causal=True))
    with pytest.raises(ValueError, match="causal"):
        ARTransformer(cfg())
    with pytest.raises(ValueError, match="one time input"):
        DiT(cfg())(noise(), times(), times())


# ------------------------------------------------------------------ initialisation


def test_fresh_dit_is_adaln_zero():
    """Zero-initialised adaLN gates make every block the identity and the output layer gives 0 logits."""
    for kw in ({}, {"double_time": True}):
        net = DiT(cfg(**kw))
        seen = []
        hooks = [blk.register_forward_hook(lambda m, inp, out: seen.append(torch.equal(out, inp[0])))
                 for blk in net.blocks]
        extra = (times(1),) if kw else ()
        assert torch.equal(net(noise(), times(), *extra), torch.zeros(B, L, K))
        assert torch.equal(net(ids(), times(2), *extra), torch.zeros(B, L, K))
        assert len(seen) == 2 * len(net.blocks) and all(seen)
        for h in hooks:
            h.remove()


def test_fresh_ar_output_layer_is_zero():
    """As in the released DIT (DDiTFinalLayer zero-inits its linear also for the causal model)."""
    ar = ARTransformer(cfg(causal=True))
    assert torch.equal(ar(ids()), torch.zeros(B, L, K))


# ------------------------------------------------------------------ input forms and times


def test_dense_one_hot_equals_ids(randomize):
    for kw in ({}, {"double_time": True}):
        net = randomize(DiT(cfg(**kw)), seed=1)
        x, s, t = ids(2), times(3), times(4)
        extra = (t,) if kw else ()
        torch.testing.assert_close(net(F.one_hot(x, K).float(), s, *extra), net(x, s, *extra), rtol=0, atol=1e-5)


def test_time_conditioning_is_used(randomize):
    net = randomize(DiT(cfg()), seed=2)
    x = noise(1)
    a, b = net(x, torch.full((B,), 0.1)), net(x, torch.full((B,), 0.9))
    assert (a - b).abs().max() > 1e-3


def test_zero_init_second_time_matches_one_time_network(randomize):
    one = randomize(DiT(cfg()), seed=3)
    two = DiT(cfg(double_time=True))
    randomize(two, seed=4)  # random sigma_map_prime, then copy the shared weights
    missing, unexpected = two.load_state_dict(one.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("sigma_map_prime.") for k in missing) and missing
    x, s = noise(5), times(6)
    assert (two(x, s, times(7)) - one(x, s)).abs().max() > 1e-3  # a random second time changes the output
    two.zero_init_second_time()
    for seed in (7, 8):
        assert torch.equal(two(x, s, times(seed)), one(x, s))
    # the second embedder still trains: its first layer is random, so gradients reach its last layer
    two(x, s, times(7)).square().sum().backward()
    assert two.sigma_map_prime.mlp[2].weight.grad.abs().sum() > 0


def test_a_zero_projection_self_conditioned_dit_is_the_plain_one_for_any_estimate(randomize):
    """Self-conditioning adds W (D_prev @ E) + b to the input with W, b zero at init: given the plain network's
    weights, the logits are the plain ones bit for bit whatever the estimate, on both input paths."""
    plain = randomize(DiT(cfg()), seed=3)
    conditioned = DiT(cfg(self_condition=True))
    missing, unexpected = conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["estimate_proj.bias", "estimate_proj.weight"]
    x, s, e = noise(5), times(6), plain.vocab_embed.embedding.detach()
    for estimate in (None, torch.zeros(B, L, K), torch.softmax(noise(7), -1), 10 * noise(8)):
        assert torch.equal(conditioned(x, s, estimate=estimate), plain(x, s))
        embedded = None if estimate is None else estimate @ e
        assert torch.equal(conditioned.forward_embedded(x @ e, s, estimate=embedded), plain.forward_embedded(x @ e, s))


def test_a_trained_projection_reads_the_estimate_through_the_embedding(randomize):
    net = randomize(DiT(cfg(self_condition=True)), seed=4)
    x, s, e = noise(5), times(6), net.vocab_embed.embedding.detach()
    d_prev = torch.softmax(noise(7), -1)
    assert (net(x, s, estimate=d_prev) - net(x, s)).abs().max() > 1e-3
    torch.testing.assert_close(net(x, s, estimate=d_prev), net.forward_embedded(x @ e, s, estimate=d_prev @ e))
    assert torch.equal(net(x, s), net(x, s, estimate=torch.zeros(B, L, K)))  # no estimate reads as zeros
    with pytest.raises(ValueError, match="not self-conditioned"):
        DiT(cfg())(x, s, estimate=d_prev)
    with pytest.raises(ConfigError, match="self_condition"):
        cfg(causal=True, self_condition=True).validate()


# ------------------------------------------------------------------ AR: KV cache and causality


def test_ar_kv_cache_matches_full_sequence(randomize):
    ar = randomize(ARTransformer(cfg(causal=True)), seed=5).eval()
    x = ids(9)
    full = ar(x)
    logits, cache = ar.forward_cached(x[:, :1], None)
    steps = [logits]
    for i in range(1, L):
        logits, cache = ar.forward_cached(x[:, i:i + 1], cache)
        steps.append(logits)
    assert len(cache) == 2 and cache[0][0].shape == (B, 2, L, 16)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-5)
    # a chunk of several new positions after a cached prefix (offset causal mask)
    head, cache = ar.forward_cached(x[:, :5], None)
    tail, _ = ar.forward_cached(x[:, 5:], cache)
    torch.testing.assert_close(torch.cat([head, tail], 1), full, rtol=0, atol=1e-5)


def test_ar_is_causal(randomize):
    ar = randomize(ARTransformer(cfg(causal=True)), seed=6).eval()
    x = ids(10)
    base = ar(x)
    for j in (0, 4, L - 1):
        y = x.clone()
        y[:, j] = (y[:, j] + 1) % K
        out = ar(y)
        torch.testing.assert_close(out[:, :j], base[:, :j], rtol=0, atol=1e-6)
        assert (out[:, j:] - base[:, j:]).abs().amax(-1).min() > 1e-5  # every later position sees it


def test_dit_is_bidirectional(randomize):
    net = randomize(DiT(cfg()), seed=7)
    x, s = ids(11), times(11)
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % K
    assert (net(y, s)[:, 0] - net(x, s)[:, 0]).abs().max() > 1e-5


# ------------------------------------------------------------------ reference re-implementation

RELEASED_NAMES = {
    "vocab_embed.embedding", "rotary_emb.inv_freq",
    "sigma_map.mlp.0.weight", "sigma_map.mlp.0.bias", "sigma_map.mlp.2.weight", "sigma_map.mlp.2.bias",
    "output_layer.norm_final.weight", "output_layer.linear.weight", "output_layer.linear.bias",
    "output_layer.adaLN_modulation.weight", "output_layer.adaLN_modulation.bias",
} | {f"blocks.{i}.{name}" for i in range(2) for name in (
    "norm1.weight", "attn_qkv.weight", "attn_out.weight", "norm2.weight", "mlp.0.weight", "mlp.0.bias",
    "mlp.2.weight", "mlp.2.bias", "adaLN_modulation.weight", "adaLN_modulation.bias")}


class _Recording(dict):
    """A dict that remembers which keys were read (to prove the reference uses every weight)."""

    def __init__(self, *a):
        super().__init__(*a)
        self.used = set()

    def __getitem__(self, key):
        self.used.add(key)
        return super().__getitem__(key)


def _ref_layer_norm(x, w, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w


def _ref_gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _ref_linear(x, P, name, bias=True):
    y = x @ P[name + ".weight"].T
    return y + P[name + ".bias"] if bias else y


def _ref_time(t, P, prefix):
    """GLIDE/DiT sinusoidal features [cos, sin] of size 256, then Linear-SiLU-Linear."""
    half = 128
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    h = _ref_linear(torch.cat([torch.cos(args), torch.sin(args)], -1), P, prefix + ".mlp.0")
    return _ref_linear(h * torch.sigmoid(h), P, prefix + ".mlp.2")


def _ref_rope(x, inv_freq):
    """x (B, L, H, Dh): x * cos + rotate_half(x) * sin with emb = cat(freqs, freqs) (non-interleaved)."""
    pos = torch.arange(x.shape[1], dtype=torch.float64)
    freqs = torch.einsum("i,j->ij", pos, inv_freq)
    emb = torch.cat([freqs, freqs], -1)[None, :, None, :]
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * emb.cos() + rotated * emb.sin()


def reference_dit(P, config, x, s, t=None, softcap=50.0, stats=None):
    """Straightforward float64 DiT of the released models/dit.py, reading weights by their names."""
    d, n_heads = config.hidden_size, config.n_heads
    dh = d // n_heads
    emb_table = P["vocab_embed.embedding"]
    h = emb_table[x] if x.dim() == 2 else torch.einsum("blk,kd->bld", x.double(), emb_table)
    b, l, _ = h.shape
    emb = _ref_time(s, P, "sigma_map")
    if t is not None:
        emb = emb + _ref_time(t, P, "sigma_map_prime")
    c = emb * torch.sigmoid(emb)  # silu
    inv_freq = 1.0 / (10_000 ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    torch.testing.assert_close(P["rotary_emb.inv_freq"], inv_freq, rtol=1e-6, atol=0)
    for i in range(config.n_blocks):
        p = f"blocks.{i}."
        mods = _ref_linear(c, P, p + "adaLN_modulation").split(d, dim=-1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (m[:, None, :] for m in mods)
        a = _ref_layer_norm(h, P[p + "norm1.weight"]) * (1 + scale_msa) + shift_msa
        qkv = _ref_linear(a, P, p + "attn_qkv", bias=False).reshape(b, l, 3, n_heads, dh)  # (three h d)
        q, k, v = _ref_rope(qkv[:, :, 0], inv_freq), _ref_rope(qkv[:, :, 1], inv_freq), qkv[:, :, 2]
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(dh)
        if stats is not None:
            stats.append(scores.abs().max().item())
        if softcap:
            scores = softcap * torch.tanh(scores / softcap)
        o = torch.einsum("bhij,bjhd->bihd", torch.softmax(scores, -1), v).reshape(b, l, d)
        h = h + gate_msa * _ref_linear(o, P, p + "attn_out", bias=False)
        m = _ref_layer_norm(h, P[p + "norm2.weight"]) * (1 + scale_mlp) + shift_mlp
        h = h + gate_mlp * _ref_linear(_ref_gelu_tanh(_ref_linear(m, P, p + "mlp.0")), P, p + "mlp.2")
    shift, scale = _ref_linear(c, P, "output_layer.adaLN_modulation").chunk(2, dim=-1)
    h = _ref_layer_norm(h, P["output_layer.norm_final.weight"]) * (1 + scale[:, None]) + shift[:, None]
    return _ref_linear(h, P, "output_layer.linear")


def _params64(net):
    return _Recording({k: v.detach().double() for k, v in net.state_dict().items()})


def _close(actual, expected, rel=2e-5):
    err = (actual.double() - expected).abs().max().item()
    assert err <= rel * max(1.0, expected.abs().max().item()), err


@pytest.mark.parametrize("dense", [False, True])
def test_dit_matches_reference_implementation(randomize, dense):
    config = cfg()
    net = randomize(DiT(config), seed=8)
    P = _params64(net)
    x = noise(12) if dense else ids(12)
    s = times(13)
    expected = reference_dit(P, config, x, s)
    assert P.used == set(P) == RELEASED_NAMES  # every weight used, names are the released ones
    assert expected.abs().max() > 0.1
    _close(net(x, s), expected)


def test_double_time_dit_matches_reference(randomize):
    config = cfg(double_time=True)
    net = randomize(DiT(config), seed=9)
    P = _params64(net)
    x, s, t = noise(14), times(15), times(16)
    expected = reference_dit(P, config, x, s, t)
    assert P.used == set(P) == RELEASED_NAMES | {n.replace("sigma_map", "sigma_map_prime") for n in
                                                  RELEASED_NAMES if n.startswith("sigma_map")}
    _close(net(x, s, t), expected)


def test_dit_softcap_is_active_on_large_scores(randomize):
    """With large attention scores the 50 * tanh(scores / 50) softcap matters, and we match it."""
    config = cfg()
    net = randomize(DiT(config), seed=10)
    with torch.no_grad():
        for blk in net.blocks:
            blk.attn_qkv.weight.mul_(6.0)
    P = _params64(net)
    x, s = noise(17), times(18)
    stats = []
    expected = reference_dit(P, config, x, s, stats=stats)
    assert max(stats) > 60  # well inside the cap's non-linear range
    uncapped = reference_dit(P, config, x, s, softcap=0.0)
    assert (uncapped - expected).abs().max() > 1e-2  # the check below can tell the two apart
    _close(net(x, s), expected, rel=1e-4)

"""Training losses against exact values at initialisation and against independent recomputations."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import EstimateSpy
from flm_core import objectives
from flm_core.config import ModelConfig
from flm_core.models import ARTransformer, DiT
from flm_core.paths import flow_map_step
from flm_core.schedule import gamma_from_alpha
from flm_core.tokens import MASK_ID

# torch.func.jvp (Lagrangian loss) registers its decompositions with the deprecated torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

K, L, B = 57, 10, 8
TINY = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16, dropout=0.0)


def cfg(**kw) -> ModelConfig:
    return ModelConfig(vocab_size=K, seq_len=L, **{**TINY, **kw})


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def data(seed: int = 0, b: int = B) -> torch.Tensor:
    """Tokens that never use the special ids 0..2 (MASK_ID = 1 must not be a target)."""
    return torch.randint(3, K, (b, L), generator=gen(1000 + seed))


class Recorder(torch.nn.Module):
    """Wraps a network and records every call's inputs and output (for recomputing a loss)."""

    def __init__(self, network):
        super().__init__()
        self.network = network
        self.config = network.config
        self.learnable_loss_weighting = getattr(network, "learnable_loss_weighting", None)
        self.calls = []

    @property
    def vocab_embed(self):
        return self.network.vocab_embed

    def forward(self, *args):
        return self._record(self.network(*args), args)

    def forward_embedded(self, *args):
        return self._record(self.network.forward_embedded(*args), args)

    def _record(self, out, args):
        self.calls.append(([a.detach().clone() for a in args], out.detach().clone()))
        return out


# ------------------------------------------------------------------ values at initialisation


def test_flm_loss_at_fresh_model_is_log_k():
    loss, logs = objectives.flm_loss(DiT(cfg()), data(), gen(0))
    assert loss.shape == ()
    assert abs(loss.item() - math.log(K)) < 1e-6
    assert abs(logs["nll"].item() - math.log(K)) < 1e-6 and not logs["nll"].requires_grad


def test_ar_loss_at_fresh_model_is_log_k():
    loss, logs = objectives.ar_loss(ARTransformer(cfg(causal=True)), data(), gen(0))
    assert abs(loss.item() - math.log(K)) < 1e-6 and abs(logs["nll"].item() - math.log(K)) < 1e-6


def test_mdlm_loss_at_fresh_model_exact_given_the_draws():
    """Zero logits minus the mask logit: each masked token costs log(K - 1), weighted by 1/t."""
    tokens = data(1)
    loss, logs = objectives.mdlm_loss(DiT(cfg()), tokens, gen(3), MASK_ID)
    # the same draws, made independently: t = t_min + (1 - t_min) * stratified, then the mask
    g = gen(3)
    u = torch.rand(B, generator=g, dtype=torch.float64)
    t = (1e-3 + (1 - 1e-3) * ((torch.arange(B, dtype=torch.float64) + u) / B).float())
    masked = torch.rand(tokens.shape, generator=g) < t.view(-1, 1)
    expected = math.log(K - 1) * (masked / t.view(-1, 1)).mean().item()
    assert abs(loss.item() - expected) < 1e-5 * max(1, expected)
    assert torch.equal(logs["nll"], loss.detach())


def test_mdlm_loss_at_fresh_model_expectation_is_log_k_minus_1():
    """E_t[(1/t) * P(masked | t) * log(K-1)] = log(K-1): E[masked / t] = 1 for every t."""
    net = DiT(cfg())
    values = [objectives.mdlm_loss(net, data(s, b=64), gen(s), MASK_ID)[0].item() for s in range(30)]
    mean = sum(values) / len(values)
    assert abs(mean / math.log(K - 1) - 1) < 0.05, mean


def test_mdlm_loss_matches_recomputation_with_a_random_network(randomize):
    net = Recorder(randomize(DiT(cfg()), seed=1))
    tokens = data(2)
    loss, _ = objectives.mdlm_loss(net, tokens, gen(4), MASK_ID)
    (x_t, t), logits = net.calls[0]
    masked = x_t == MASK_ID
    assert torch.equal(x_t[~masked], tokens[~masked]) and masked.any()
    assert bool(((t > 0) & (t <= 1)).all())
    logp = torch.log_softmax(logits.double().index_fill(-1, torch.tensor([MASK_ID]), -math.inf), -1)
    nll = -logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    expected = (nll * masked / t.double().view(-1, 1)).mean()
    assert abs(loss.item() - expected.item()) < 1e-5 * max(1.0, expected.item())


def test_ar_loss_matches_recomputation(randomize):
    net = randomize(ARTransformer(cfg(causal=True)), seed=2)
    tokens = data(3)
    loss, _ = objectives.ar_loss(net, tokens, gen(0))
    logits = net(tokens[:, :-1]).double()
    expected = -torch.log_softmax(logits, -1).gather(-1, tokens[:, 1:, None]).mean()
    assert abs(loss.item() - expected.item()) < 1e-5


def test_flm_loss_matches_recomputation(randomize):
    net = Recorder(randomize(DiT(cfg()), seed=3))
    tokens = data(4)
    loss, _ = objectives.flm_loss(net, tokens, gen(5))
    (h_g, t), logits = net.calls[0]
    assert h_g.shape == (B, L, TINY["hidden_size"])  # the network's input x_g @ E, never K-wide
    assert torch.equal(((t * B).floor()).long(), torch.arange(B))  # t is stratified
    expected = -torch.log_softmax(logits.double(), -1).gather(-1, tokens.unsqueeze(-1)).mean()
    assert abs(loss.item() - expected.item()) < 1e-5


def test_flm_loss_with_low_rank_noise_has_the_distribution_of_the_dense_loss(randomize):
    """The loss on x_g @ E drawn as (1 - g) z chol(E^T E)^T + g E[x] vs on the dense x_g = (1 - g) eps + g e_x:
    same mean and spread over 400 draws per time (Welch t and variance ratio), at fixed t."""
    from flm_core.paths import embedded_one_hot_path, one_hot_path

    net = randomize(DiT(cfg()), seed=8).eval()
    tokens = data(6, b=1).expand(400, -1)
    e = net.vocab_embed.embedding
    with torch.no_grad():
        for t_value in (0.2, 0.6, 0.9):
            t = torch.full((400,), t_value)
            g = gamma_from_alpha(t, K)

            def losses(logits):
                return F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none").mean(1)

            dense = losses(net(one_hot_path(tokens, g, K, gen(1)), t))
            low_rank = losses(net.forward_embedded(embedded_one_hot_path(tokens, g, e, gen(2)), t))
            welch = (dense.mean() - low_rank.mean()) / (dense.var() / 400 + low_rank.var() / 400).sqrt()
            assert abs(welch) < 4, (t_value, dense.mean(), low_rank.mean())
            assert 0.7 < dense.var() / low_rank.var() < 1.4
    x = torch.randn(2, L, K, generator=gen(3))
    torch.testing.assert_close(net(x, t[:2]), net.forward_embedded(x @ e, t[:2]))  # forward = embed + rest


# ------------------------------------------------------------------ flow map: the w formula


def test_semigroup_weight_makes_the_flow_map_compose_exactly():
    """X_{u,t}(X_{s,u}(x)) == X_{s,t}(x) when delta_st = w delta_su + (1 - w) delta_ut,
    w = (1 - g_t)(g_u - g_s) / ((1 - g_u)(g_t - g_s)), for arbitrary simplex vectors."""
    g = gen(7)
    for _ in range(20):
        g_s, g_u, g_t = torch.sort(torch.rand(3, generator=g, dtype=torch.float64)).values.tolist()
        x = torch.randn(2, 4, K, generator=g, dtype=torch.float64)
        d_su = torch.softmax(3 * torch.randn(2, 4, K, generator=g, dtype=torch.float64), -1)
        d_ut = torch.softmax(3 * torch.randn(2, 4, K, generator=g, dtype=torch.float64), -1)
        w = (1 - g_t) * (g_u - g_s) / ((1 - g_u) * (g_t - g_s))
        assert 0 <= w <= 1
        two_jumps = flow_map_step(flow_map_step(x, d_su, g_s, g_u), d_ut, g_u, g_t)
        one_jump = flow_map_step(x, w * d_su + (1 - w) * d_ut, g_s, g_t)
        torch.testing.assert_close(two_jumps, one_jump, rtol=0, atol=1e-12)
        naive = flow_map_step(x, 0.5 * d_su + 0.5 * d_ut, g_s, g_t)  # a wrong weight does not compose
        assert (naive - two_jumps).abs().max() > 1e-6 or abs(w - 0.5) < 1e-3


# ------------------------------------------------------------------ flow map: semigroup loss


def _fmlm_pair(randomize, seed=0, teacher_init=True):
    teacher = randomize(DiT(cfg()), seed=seed).requires_grad_(False)
    student = DiT(cfg(double_time=True))
    randomize(student, seed=seed + 100)
    if teacher_init:
        student.load_state_dict(teacher.state_dict(), strict=False)
        student.zero_init_second_time()
    return teacher, student


def test_semigroup_loss_is_zero_for_a_constant_student():
    """A student whose output ignores input and times is trivially self-consistent: KL = 0,
    and its diagonal term against a uniform (fresh) teacher is KL(uniform || softmax(b))."""
    teacher = DiT(cfg())  # fresh: uniform predictions
    student = DiT(cfg(double_time=True))
    bias = torch.randn(K, generator=gen(1))
    with torch.no_grad():
        student.output_layer.linear.bias.copy_(bias)
    loss, logs = objectives.fmlm_semigroup_loss(student, teacher, data(), gen(2), boundary_prob=0.3,
                                                diagonal_weight=0.5)
    expected_diag = (math.log(1 / K) - torch.log_softmax(bias.double(), -1)).mean().item()
    assert abs(logs["consistency_kl"].item()) < 1e-6
    assert abs(logs["diagonal_kl"].item() - expected_diag) < 1e-5
    assert abs(loss.item() - 0.5 * expected_diag) < 1e-5


def test_semigroup_diagonal_is_zero_for_a_teacher_initialised_student(randomize):
    """delta(x, t, t) = D(x, t) when the student starts from the teacher with a zero second time."""
    teacher, student = _fmlm_pair(randomize, seed=1)
    _, logs = objectives.fmlm_semigroup_loss(student, teacher, data(), gen(3))
    assert abs(logs["diagonal_kl"].item()) < 1e-5
    assert logs["consistency_kl"].item() > 1e-4  # but D(., s) is not yet a consistent flow map


def test_semigroup_loss_matches_recomputation(randomize):
    teacher, student = _fmlm_pair(randomize, seed=2, teacher_init=False)
    student, teacher = Recorder(student), Recorder(teacher)
    tokens = data(5)
    loss, logs = objectives.fmlm_semigroup_loss(student, teacher, tokens, gen(6), boundary_prob=0.25,
                                                diagonal_weight=0.7)
    (x_s, s, u), out_su = student.calls[0]
    (x_u, u2, t), out_ut = student.calls[1]
    (x_both, s_both, t_both), out_both = student.calls[2]
    (x_t, t_teacher), out_teacher = teacher.calls[0]
    assert len(student.calls) == 3 and len(teacher.calls) == 1
    assert torch.equal(u, u2) and torch.equal(x_both, torch.cat([x_s, x_t]))
    assert torch.equal(s_both, torch.cat([s, t])) and torch.equal(t_both, torch.cat([t, t]))
    assert torch.equal(t_teacher, t)
    assert bool(((0 <= s) & (s < u) & (u < t) & (t <= 1)).all())
    g_s, g_u, g_t = (gamma_from_alpha(v.double(), K).view(-1, 1, 1) for v in (s, u, t))
    d_su, d_ut = torch.softmax(out_su.double(), -1), torch.softmax(out_ut.double(), -1)
    torch.testing.assert_close(x_u.double(), flow_map_step(x_s.double(), d_su, g_s, g_u), rtol=0, atol=1e-5)
    w = (1 - g_t) * (g_u - g_s) / ((1 - g_u) * (g_t - g_s))
    target = w * d_su + (1 - w) * d_ut
    logq_st, logq_tt = torch.log_softmax(out_both.double(), -1).chunk(2)
    consistency = (target * (target.log() - logq_st)).sum(-1).mean()
    p_teacher = torch.softmax(out_teacher.double(), -1)
    diagonal = (p_teacher * (p_teacher.log() - logq_tt)).sum(-1).mean()
    assert abs(logs["consistency_kl"].item() - consistency.item()) < 1e-5
    assert abs(logs["diagonal_kl"].item() - diagonal.item()) < 1e-5
    assert abs(loss.item() - (consistency + 0.7 * diagonal).item()) < 1e-5


def test_semigroup_boundary_probability_one_draws_zero_to_one(randomize):
    teacher, student = _fmlm_pair(randomize, seed=3)
    student = Recorder(student)
    objectives.fmlm_semigroup_loss(student, teacher, data(), gen(0), boundary_prob=1.0)
    (_, s, u), _ = student.calls[0]
    assert torch.equal(s, torch.zeros(B)) and torch.equal(u, torch.full((B,), 0.5))
    assert torch.equal(student.calls[1][0][2], torch.ones(B))


# ------------------------------------------------------------------ flow map: Lagrangian loss


def test_lagrangian_loss_runs_with_finite_gradients(randomize):
    teacher, student = _fmlm_pair(randomize, seed=4, teacher_init=False)
    loss, logs = objectives.fmlm_lagrangian_loss(student, teacher, data(), gen(1))
    assert torch.isfinite(loss) and set(logs) == {"consistency_kl", "diagonal_kl", "negative_target_share"}
    loss.backward()
    grads = [p.grad for p in student.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_lagrangian_target_when_delta_ignores_the_target_time(randomize):
    """With a zero second time d delta / dt = 0, so the target is D_teacher(X_{s,t}(x_s), t)."""
    teacher, student = _fmlm_pair(randomize, seed=5)
    student = Recorder(student)
    loss, logs = objectives.fmlm_lagrangian_loss(student, teacher, data(6), gen(2), diagonal_weight=0.3)
    (x_both, s_both, t_both), out_both = student.calls[-1]
    x_s, s, t = x_both[:B], s_both[:B], t_both[:B]
    logq = torch.log_softmax(out_both[:B].double(), -1)
    g_s, g_t = (gamma_from_alpha(v.double(), K).view(-1, 1, 1) for v in (s, t))
    x_st = flow_map_step(x_s.double(), logq.exp(), g_s, g_t).float()
    p_teacher = torch.softmax(teacher(x_st, t).double(), -1)
    residual = (torch.special.xlogy(p_teacher, p_teacher) - p_teacher * logq).sum(-1).mean()  # KL(p || q)
    loss_diag = loss.item() - residual.item()
    assert abs(loss_diag - 0.3 * logs["diagonal_kl"].item()) < 1e-4
    assert abs(logs["diagonal_kl"].item()) < 1e-5  # teacher-initialised: the diagonal already agrees


def test_lagrangian_target_with_a_time_dependent_student(randomize):
    """Generic student: the target subtracts c (1 - g_t) (d delta/dt) / (dg/dt); the JVP's share of the
    loss is checked against central finite differences."""
    teacher, student = _fmlm_pair(randomize, seed=6, teacher_init=False)
    with torch.no_grad():
        student.sigma_map_prime.mlp[2].weight.mul_(5.0)  # make delta depend strongly on t
    rec = Recorder(student)
    loss, logs = objectives.fmlm_lagrangian_loss(rec, teacher, data(7), gen(3), boundary_prob=0.0,
                                                 diagonal_weight=0.0)
    (x_both, s_both, t_both), out_both = rec.calls[-1]
    x_s, s, t = x_both[:B], s_both[:B], t_both[:B]
    logq = torch.log_softmax(out_both[:B].double(), -1)
    with torch.no_grad():
        delta = lambda tau: torch.softmax(student(x_s, s, tau).double(), -1)  # noqa: E731
        h = 1e-3
        d_delta = (delta(t + h) - delta(t - h)) / (2 * h)
        t64 = t.double()
        dg = (gamma_from_alpha(t64, K) - gamma_from_alpha(t64 - 1e-9, K)) / 1e-9  # slope of the g(t) table
        g_s, g_t = (gamma_from_alpha(v.double(), K).view(-1, 1, 1) for v in (s, t))
        x_st = flow_map_step(x_s.double(), delta(t), g_s, g_t).float()
        p_teacher = torch.softmax(teacher(x_st, t).double(), -1)
        c = (g_t - g_s) / (1 - g_s)
        correction = c * (1 - g_t) * d_delta / dg.view(-1, 1, 1)
    kl = lambda target: (torch.special.xlogy(target, target) - target * logq).sum(-1).mean().item()  # noqa: E731
    no_jvp = kl(p_teacher)
    expected = kl(objectives.simplex_projection(p_teacher - correction))
    assert abs(expected - no_jvp) > 1e-3  # the time derivative matters here
    assert abs(loss.item() - expected) < 0.05 * abs(expected - no_jvp)
    # the strong time dependence pushes the signed target off the simplex somewhere; the loss stays a KL
    raw = p_teacher - correction
    # (the finite-difference target agrees with the JVP's up to entries near 0: the shares within 5 points)
    assert logs["negative_target_share"].item() == pytest.approx((raw < 0).any(-1).double().mean().item(), abs=0.05)
    assert logs["negative_target_share"].item() > 0 and loss.item() >= 0


def test_simplex_projection_keeps_distributions_and_bounds_the_lagrangian_loss():
    """A signed target that sums to 1 (entries -0.5, 0.5, 1.0) projects to (0, 1/3, 2/3); the KL against it
    is >= 0 for any logits, where cross-entropy against the signed target goes to -inf."""
    signed = torch.tensor([[-0.5, 0.5, 1.0]])
    torch.testing.assert_close(objectives.simplex_projection(signed), torch.tensor([[0.0, 1 / 3, 2 / 3]]))
    on_simplex = torch.tensor([[0.2, 0.3, 0.5]])
    torch.testing.assert_close(objectives.simplex_projection(on_simplex), on_simplex)
    runaway = torch.tensor([[-100.0, 0.0, 0.0]])  # logits that starve the negative entry: -0.5 log q_0 -> -inf
    assert -(signed * torch.log_softmax(runaway, -1)).sum() < -40  # the signed cross-entropy: unbounded below
    assert objectives.kl_to_logits(objectives.simplex_projection(signed), runaway).item() >= 0


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("name", ["flm", "mdlm", "ar", "semigroup", "lagrangian"])
def test_losses_are_determined_by_the_generator(randomize, name):
    teacher, student = _fmlm_pair(randomize, seed=7, teacher_init=False)
    fn = {
        "flm": lambda g: objectives.flm_loss(teacher, data(), g),
        "mdlm": lambda g: objectives.mdlm_loss(teacher, data(), g, MASK_ID),
        "ar": lambda g: objectives.ar_loss(randomize(ARTransformer(cfg(causal=True)), seed=1), data(), g),
        "semigroup": lambda g: objectives.fmlm_semigroup_loss(student, teacher, data(), g),
        "lagrangian": lambda g: objectives.fmlm_lagrangian_loss(student, teacher, data(), g),
    }[name]
    a, b, c = fn(gen(11))[0], fn(gen(11))[0], fn(gen(12))[0]
    assert torch.equal(a, b)
    if name != "ar":  # the AR objective has no noise
        assert not torch.equal(a, c)


# ------------------------------------------------------------------ learnable loss weighting


def test_learnable_loss_weighting_is_neutral_at_init_and_follows_the_formula(randomize):
    plain = randomize(DiT(cfg()), seed=8)
    weighted = DiT(cfg(learnable_loss_weighting=True))
    missing, unexpected = weighted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("learnable_loss_weighting.") for k in missing)
    tokens = data(9)
    base, base_logs = objectives.flm_loss(plain, tokens, gen(4))
    at_init, _ = objectives.flm_loss(weighted, tokens, gen(4))
    assert torch.equal(at_init, base)  # exp(-0) * loss + 0
    with torch.no_grad():
        weighted.learnable_loss_weighting.mlp[-1].bias.fill_(0.7)
    shifted, logs = objectives.flm_loss(weighted, tokens, gen(4))
    assert torch.equal(logs["nll"], base_logs["nll"])  # the reported NLL is unweighted
    assert abs(shifted.item() - (math.exp(-0.7) * base.item() + 0.7)) < 1e-5
    shifted.backward()
    assert weighted.learnable_loss_weighting.mlp[-1].bias.grad.abs().item() > 0


def test_kl_to_logits_reference_and_zero_targets():
    target = torch.softmax(torch.randn(2, 3, K, generator=gen(0)), -1)
    target[..., :5] = 0
    target = target / target.sum(-1, keepdim=True)
    logits = torch.randn(2, 3, K, generator=gen(1))
    out = objectives.kl_to_logits(target, logits)
    ref = F.kl_div(torch.log_softmax(logits, -1), target, reduction="none").sum(-1)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert objectives.kl_to_logits(torch.softmax(logits, -1), logits).abs().max() < 1e-5


# ------------------------------------------------------------------ self-conditioning


def self_conditioned(plain: torch.nn.Module) -> DiT:
    """A self-conditioned copy of `plain` with the fresh (zero) projection."""
    net = DiT(cfg(self_condition=True))
    net.load_state_dict(plain.state_dict(), strict=False)
    return net


@pytest.mark.parametrize("low_rank", [True, False])
def test_self_conditioning_feeds_a_no_grad_first_pass_to_half_the_rows(randomize, low_rank):
    """Call 1: D-hat on a random half of the rows, with no estimate. Call 2: the whole batch, reading D-hat
    (lifted to the input's space: @ E on the low-rank path) on those rows and zeros on the others."""
    spy = EstimateSpy(randomize(DiT(cfg(self_condition=True)), seed=13))
    objectives.flm_loss(spy, data(4), gen(7), low_rank_noise=low_rank)
    (x1, s1, e1, out1), (x2, s2, e2, _) = spy.calls
    assert e1 is None and x1.shape[0] == B // 2 and x2.shape[0] == B
    rows = torch.stack([(s2 == v).nonzero().squeeze() for v in s1])  # stratified times are distinct
    torch.testing.assert_close(x1, x2[rows], rtol=0, atol=0)
    lift = spy.vocab_embed if low_rank else (lambda probs: probs)
    torch.testing.assert_close(e2[rows], lift(torch.softmax(out1, -1)).detach(), rtol=0, atol=1e-6)
    others = torch.ones(B, dtype=torch.bool)
    others[rows] = False
    assert not e2[others].any() and e2[rows].abs().sum((1, 2)).min() > 0


@pytest.mark.parametrize("low_rank", [True, False])
def test_self_conditioned_flm_loss_is_deterministic_starts_as_the_plain_loss_and_trains_the_projection(
        randomize, low_rank):
    plain = randomize(DiT(cfg()), seed=12)
    net = self_conditioned(plain)

    def loss(network, seed):
        return objectives.flm_loss(network, data(3), gen(seed), low_rank_noise=low_rank)[0]

    a, b, c = loss(net, 5), loss(net, 5), loss(net, 6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, loss(plain, 5))  # zero projection; the first pass draws after t and the noise
    a.backward()
    assert net.estimate_proj.weight.grad.abs().sum() > 0 and net.estimate_proj.bias.grad.abs().sum() > 0


def test_a_self_conditioned_teacher_targets_its_second_pass(randomize):
    """self_conditioned_teacher(T)(x, t) = T(x, t, estimate=softmax(T(x, t))): the flow-map loss then equals
    the loss against a teacher that returns that second pass, and differs from the first-pass loss."""
    spy = EstimateSpy(randomize(DiT(cfg(self_condition=True)), seed=21).requires_grad_(False))
    student = randomize(DiT(cfg(double_time=True)), seed=22)
    tokens = data(6)
    loss, _ = objectives.fmlm_semigroup_loss(student, objectives.self_conditioned_teacher(spy), tokens, gen(8))
    (x1, s1, e1, out1), (x2, s2, e2, out2) = spy.calls
    assert e1 is None and torch.equal(x1, x2) and torch.equal(s1, s2)
    torch.testing.assert_close(e2, torch.softmax(out1, -1), rtol=0, atol=0)
    assert (out2 - out1).abs().max() > 1e-3  # the (randomised) projection reads the estimate
    second, _ = objectives.fmlm_semigroup_loss(student, lambda x, t: out2, tokens, gen(8))
    first, _ = objectives.fmlm_semigroup_loss(student, lambda x, t: out1, tokens, gen(8))
    assert torch.equal(loss, second) and not torch.equal(loss, first)


# ------------------------------------------------------------------ flow map: the authors' two stages


def _their_stage_one_loss(x_s, g_s, g_u, g_t, teacher_s, residual_su, teacher_u, residual_ut, residual_st, x_u):
    """FLM_distill.loss transcribed in their velocity form (algo.py:1187-1230 at d89a02f, eps 1e-5 dropped):
    x_boot = x_s + (1 - g_s) v_bar, f_final = D_T(x_s, s) + 1/2 (g_t - g_s)(1 - g_s) r(x_s, s, t)."""
    d1, d2, d = g_u - g_s, g_t - g_u, g_t - g_s
    v_s = (teacher_s - x_s) / (1 - g_s)
    v_su = v_s + d1 / 2 * residual_su
    big_f_su = x_s + d1 * v_s + 0.5 * d1 ** 2 * residual_su
    torch.testing.assert_close(x_u, big_f_su, rtol=0, atol=1e-4)  # the second half starts where theirs does
    v_ut = (teacher_u - big_f_su) / (1 - g_u) + d2 / 2 * residual_ut
    v_bar = (d1 * v_su + d2 * v_ut) / d
    x_boot = x_s + (1 - g_s) * v_bar
    f_final = teacher_s + 0.5 * d * (1 - g_s) * residual_st
    return ((x_boot - f_final) ** 2).mean(-1) * x_s.shape[-1]


def test_the_first_stage_loss_is_the_authors_bootstrap(randomize):
    """fmlm_residual_loss against a transcription of their stage-1 loss, recomputed from the recorded calls
    (teacher at x_s and at X_{s,u}(x_s); student residual r at (s, u), (u, t) and (s, t))."""
    teacher, student = _fmlm_pair(randomize, seed=31, teacher_init=False)
    student, teacher = Recorder(student), Recorder(teacher)
    loss, logs = objectives.fmlm_residual_loss(student, teacher, data(7), gen(9), boundary_prob=0.25)
    (x_s, s), out_teacher_s = teacher.calls[0]
    (x_u, u), out_teacher_u = teacher.calls[1]
    (x_s2, s2, u2), r_su = student.calls[0]
    (x_u2, u3, t), r_ut = student.calls[1]
    (x_s3, s3, t2), r_st = student.calls[2]
    assert len(student.calls) == 3 and len(teacher.calls) == 2
    assert all(torch.equal(a, b) for a, b in ((x_s, x_s2), (x_s, x_s3), (x_u, x_u2), (s, s2), (s, s3), (u, u2),
                                               (u, u3), (t, t2)))
    assert bool(((0 <= s) & (s < u) & (u < t) & (t <= 1)).all())
    g_s, g_u, g_t = (gamma_from_alpha(v.double(), K).view(-1, 1, 1) for v in (s, u, t))
    theirs = _their_stage_one_loss(x_s.double(), g_s, g_u, g_t, torch.softmax(out_teacher_s.double(), -1),
                                   r_su.double(), torch.softmax(out_teacher_u.double(), -1), r_ut.double(),
                                   r_st.double(), x_u.double())
    assert abs(logs["consistency_mse"].item() - theirs.mean().item()) < 1e-4 * theirs.mean().item()
    assert abs(loss.item() - theirs.mean().item()) < 1e-4 * theirs.mean().item()


def test_a_zero_residual_is_the_teachers_euler_step_and_the_diagonal_is_exact(randomize):
    """delta_1 = D_T + 1/2 (g_t - g_s)(1 - g_s) r: with r = 0 (zero_init_output) the first-stage map is the
    teacher's Euler step, and at t = s it is D_T whatever r is; the loss trains r (its gradient is nonzero)."""
    teacher, student = _fmlm_pair(randomize, seed=32)
    student.zero_init_output()
    x = torch.randn(B, L, K, generator=gen(3))
    s, t = torch.full((B,), 0.3), torch.full((B,), 0.8)
    assert torch.equal(student(x, s, t), torch.zeros(B, L, K))
    delta_1 = objectives.residual_flow_map(teacher, student)
    torch.testing.assert_close(delta_1(x, s, t), torch.softmax(teacher(x, s), -1), rtol=0, atol=0)
    randomize(student, seed=33)
    torch.testing.assert_close(delta_1(x, s, s), torch.softmax(teacher(x, s), -1), rtol=0, atol=0)
    assert (delta_1(x, s, t) - torch.softmax(teacher(x, s), -1)).abs().max() > 1e-3
    student.zero_init_output()
    loss, _ = objectives.fmlm_residual_loss(student, teacher, data(), gen(4))
    loss.backward()
    assert student.output_layer.linear.weight.grad.abs().sum() > 0


def test_the_second_stage_loss_is_the_squared_error_of_the_maps(randomize):
    """fmlm_two_network_loss = mean_k (X^1_{s,t}(x_s) - X_{s,t}(x_s))^2 * K with X^1 = x + Delta v_T + 1/2 Delta^2 r
    (their FLM_distill_double.loss, algo.py:1348-1380) and X = x + Delta (delta - x)/(1 - g_s); zero when the
    student's delta is the first stage's (a student that outputs log delta_1 where delta_1 is a distribution)."""
    teacher, residual = _fmlm_pair(randomize, seed=34, teacher_init=False)
    teacher, residual = Recorder(teacher), Recorder(residual)
    student = Recorder(randomize(DiT(cfg(double_time=True)), seed=35))
    loss, logs = objectives.fmlm_two_network_loss(student, objectives.residual_flow_map(teacher, residual), data(8),
                                                  gen(10), boundary_prob=0.25)
    (x_s, s), out_teacher = teacher.calls[0]
    (x_s2, s2, t), r = residual.calls[0]
    (x_s3, s3, t2), out_student = student.calls[0]
    assert torch.equal(x_s, x_s2) and torch.equal(x_s, x_s3) and torch.equal(t, t2) and torch.equal(s, s3)
    g_s, g_t = (gamma_from_alpha(v.double(), K).view(-1, 1, 1) for v in (s, t))
    x, d = x_s.double(), g_t - g_s
    v_teacher = (torch.softmax(out_teacher.double(), -1) - x) / (1 - g_s)
    theirs_target = x + d * v_teacher + 0.5 * d ** 2 * r.double()
    theirs_student = x + d * (torch.softmax(out_student.double(), -1) - x) / (1 - g_s)
    theirs = ((theirs_target - theirs_student) ** 2).mean(-1).mean() * K
    assert abs(loss.item() - theirs.item()) < 1e-4 * theirs.item() and torch.equal(loss, logs["map_mse"])
    zero_residual = FunctionNetwork(lambda x, s, t: torch.zeros(x.shape))
    teacher_as_student = FunctionNetwork(lambda x, s, t: torch.log_softmax(teacher(x, s), -1))
    exact, _ = objectives.fmlm_two_network_loss(teacher_as_student, objectives.residual_flow_map(teacher, zero_residual),
                                                data(8), gen(10))
    assert exact.item() < 1e-10


class FunctionNetwork(torch.nn.Module):
    """A two-time network given as a function (x, s, t) -> (B, L, K), with the config the losses read."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.config = fn, cfg(double_time=True)

    def forward(self, x, s, t):
        return self.fn(x, s, t)

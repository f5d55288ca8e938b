"""One-step FMLM against many-step FLM on a toy language whose law is known exactly (issue 3).

The toy language: K = 8 tokens, L = 4 positions, four sequences of equal probability 1/4,

    1 0 0 0,   0 1 0 0,   0 0 1 0,   0 0 0 1        ("exactly one position is marked"),

so the tokens are as correlated as they can be: any three positions determine the fourth. Every
position has the same marginal, P(0) = 3/4 and P(1) = 1/4 (tokens 2..7 never occur), and the
product of the per-position modes, 0 0 0 0, is not a sentence of the language. That is exactly
what one-step FLM produces: with no signal in x_0 = eps, the best denoiser D(eps, 0) is that
marginal, and its argmax is the blank sequence. A sampler that works has to place exactly one mark,
at a uniformly random position, which needs the noise to decide it: many Euler steps of the FLM
ODE do, and a flow map distilled from that ODE must do it in one call.

Why not a language with uniform marginals, as the issue suggested? Measured: with tied marginals
(e.g. all arrangements of 0 0 1 1) the argmax of a trained D(eps, 0) is decided by the network's
small leftover dependence on eps, which acts as a crude sampler (68% valid sequences, TV 0.32),
so the "clear margin" would rest on an accident of training. A clear marginal mode that is not a
sentence makes the one-step FLM failure deterministic. Languages whose sequences need absolute
positions (cyclic shifts "a b c d", "b c d a", ...) or position-dependent weights were also tried:
the rotary-only DiT learns them, but not within this test's CPU budget (one-step FMLM TV 0.12-0.41).

Everything is trained here, in-process, with flm_core's own pieces and fixed seeds, in fp32:
a tiny DiT FLM with `flm_loss` (AdamW, warmup + cosine, clipping, EMA as in flm_core.train), then
an FMLM student initialised from it as `flm_core.train.build_student` does (copied weights, zero
second time embedding), distilled with `fmlm_semigroup_loss` and, for comparison, with
`fmlm_lagrangian_loss`. Samples come from `FlowSampler` + `run_sampler`.

The metric is the total variation distance between the empirical law of N whole generated
sequences and the true law, TV = 1/2 sum_x |p_hat(x) - p(x)|, sequences outside the language
counted with p(x) = 0 (so TV >= the share of invalid samples).

Thresholds (N = 2000 samples, m = 4 outcomes of probability 1/4):
- Sampling noise of a perfect sampler: E TV = 1/2 sum_i E|p_hat_i - p_i| ~ 1/2 sum_i
  sqrt(2 p_i (1 - p_i) / (pi N)) = 0.0155 (`expected_tv_noise`); over 2000 simulated draws its
  standard deviation is 0.0067 and its 99th percentile 0.033. The difference of two such TVs
  has a standard deviation of ~0.0095, so 3 sd ~ 0.03.
- Measured (this file's settings, seeds 0..9; seed 0 is the one the test runs):
      TV: FLM 1 step 0.993-1.000 (valid <= 0.7%), FLM 64 steps 0.005-0.019,
          semigroup FMLM 1 step 0.022-0.047 (valid >= 95.8%), Lagrangian 0.023-0.095 (valid >= 90.5%);
      largest TV(semigroup, 1 step) - TV(FLM, 64 steps): 0.031; Lagrangian: 0.078 (seed 8).
- Asserted: TV(FLM 64) <= 0.06; TV(FMLM 1 step) <= TV(FLM 64) + 0.07 (3 sd of noise plus 0.04 of
  model error); TV(FLM 1 step) >= TV(FMLM 1 step) + 0.5; FMLM valid share >= 0.9. The Lagrangian
  student gets the looser TV(FLM 64) + 0.15. For scale: a student that is not distilled gives ~0.99,
  and one distilled with the semigroup weights w and 1 - w swapped gives 0.09 (valid 91%) on seed 0.
- Flow-map consistency: mean |X_{s,t}(x) - X_{u,t}(X_{s,u}(x))| over x = x_s on the data path and
  sorted s < u < t ~ U[0, 1]. At initialisation the student equals the teacher and this is the Euler
  error of one step against two (0.0053-0.0056); after distillation it must be at most 0.4 of that
  (measured 0.16-0.25 for semigroup, 0.19-0.26 for Lagrangian).

Known blind spots (covered by tests/test_objectives.py, not here): the law is symmetric, so errors
that keep the symmetry (e.g. a wrong time grid in the sampler) barely move TV; and in this short run
the student's dependence on t stays small, so the sign of the Lagrangian's JVP term does not show.
"""
from __future__ import annotations

import math

import pytest
import torch

from flm_core import objectives
from flm_core.config import ModelConfig, TrainConfig
from flm_core.models import build_network
from flm_core.paths import flow_map_step, one_hot_path
from flm_core.samplers import FlowSampler, run_sampler
from flm_core.schedule import gamma_from_alpha
from flm_core.train import EMA, lr_at

# torch.func.jvp (Lagrangian loss) registers its decompositions with the deprecated torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

K, L = 8, 4
SEQUENCES = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])  # (M, L)
PROBS = torch.full((4,), 0.25, dtype=torch.float64)  # (M,)
SHAPE = dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=32, dropout=0.0)

SEED = 0
N_SAMPLES = 2000
MANY_STEPS = 64
TEACHER = dict(steps=600, batch=256, lr=3e-3)
SEMIGROUP = dict(steps=250, batch=128, lr=3e-3)
LAGRANGIAN = dict(steps=200, batch=64, lr=3e-3)
EMA_DECAY = 0.99

# thresholds, justified in the module docstring
FLM_MANY_STEPS_MAX_TV = 0.06
FMLM_MARGIN = 0.07
LAGRANGIAN_MARGIN = 0.15
ONE_STEP_FLM_GAP = 0.5
FMLM_MIN_VALID = 0.9
CONSISTENCY_RATIO = 0.4


# ------------------------------------------------------------------ the toy language


def draw(n: int, generator: torch.Generator) -> torch.Tensor:
    """n sequences from the toy law: (n, L) int64."""
    return SEQUENCES[torch.multinomial(PROBS.float(), n, replacement=True, generator=generator)]


def sequence_index(tokens: torch.Tensor) -> torch.Tensor:
    """Index into SEQUENCES of each row of tokens (B, L), -1 for rows outside the language."""
    match = (tokens[:, None, :] == SEQUENCES[None]).all(-1)  # (B, M)
    return torch.where(match.any(-1), match.long().argmax(-1), torch.full_like(match[:, 0], -1, dtype=torch.long))


def tv_and_valid(tokens: torch.Tensor) -> tuple[float, float]:
    """(TV between the empirical law of the rows and the true law, share of rows in the language)."""
    index = sequence_index(tokens)
    valid = index >= 0
    hist = torch.bincount(index[valid], minlength=len(SEQUENCES)).double() / len(index)
    invalid = 1.0 - valid.double().mean()
    return 0.5 * ((hist - PROBS).abs().sum() + invalid).item(), valid.double().mean().item()


def expected_tv_noise(probs: torch.Tensor, n: int) -> float:
    """E TV of an n-sample empirical law against the true one (normal approximation):
    1/2 sum_i E|p_hat_i - p_i|, E|N(0, v)| = sqrt(2 v / pi), v = p (1 - p) / n."""
    return 0.5 * float(torch.sqrt(2 * probs * (1 - probs) / (math.pi * n)).sum())


class ExactDenoiser(torch.nn.Module):
    """The Bayes denoiser of the toy law: D(x, t)[l, k] = P(x_l = k | x_g), g = alpha^-1(t).

    log P(seq | x_g) = log p(seq) + g / (1 - g)^2 <x_g, e(seq)> + const, marginalised per position.
    Returns log D as logits, so FlowSampler treats it like an FLM network."""

    def __init__(self):
        super().__init__()
        self.config = ModelConfig(vocab_size=K, seq_len=L, **SHAPE)
        self.onehot = torch.nn.functional.one_hot(SEQUENCES, K).double()  # (M, L, K)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        g = gamma_from_alpha(s.double(), K).view(-1, 1)
        score = torch.einsum("blk,mlk->bm", x.double(), self.onehot)
        posterior = torch.softmax(PROBS.log() + g / (1 - g).clamp_min(1e-12) ** 2 * score, dim=-1)  # (B, M)
        return torch.einsum("bm,mlk->blk", posterior, self.onehot).clamp_min(1e-30).log().float()


def sample(network: torch.nn.Module, steps: int, seed: int = 1, n: int = N_SAMPLES) -> torch.Tensor:
    """Tokens (n, L) from the flow sampler (Euler for one time input, flow map for two)."""
    generator = torch.Generator().manual_seed(seed)
    low_rank = not isinstance(network, ExactDenoiser)  # the Bayes denoiser reads the dense x
    tokens, nfe = run_sampler(FlowSampler(network, low_rank=low_rank), n, steps, generator, torch.device("cpu"))
    assert nfe == steps
    return tokens


# ------------------------------------------------------------------ training, as flm_core.train does


def fit(network: torch.nn.Module, loss_fn, steps: int, batch: int, lr: float, seed: int) -> torch.nn.Module:
    """AdamW with warmup + cosine, clipping at 1 and EMA weights, as flm_core.train.train; returns the
    network in eval mode holding its EMA weights."""
    schedule = TrainConfig(lr=lr, warmup_steps=20, max_steps=steps, min_lr_ratio=0.1)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    ema = EMA(network, EMA_DECAY)
    generator = torch.Generator().manual_seed(seed)
    network.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, schedule)
        loss, _ = loss_fn(network, draw(batch, generator), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        ema.update(network)
    ema.copy_to(network)
    return network.eval()


def student_from(teacher: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Two-time network initialised from the teacher as flm_core.train.build_student does."""
    torch.manual_seed(seed)
    student = build_network(ModelConfig(vocab_size=K, seq_len=L, double_time=True, **SHAPE))
    state = student.state_dict()
    state.update({k: v for k, v in teacher.state_dict().items() if k in state})
    student.load_state_dict(state)
    student.zero_init_second_time()
    return student


@torch.no_grad()
def consistency_gap(student: torch.nn.Module, n: int = 1000, seed: int = 5) -> float:
    """Mean |X_{s,t}(x) - X_{u,t}(X_{s,u}(x))| over x = x_s on the data path and sorted s < u < t ~ U[0,1]."""
    generator = torch.Generator().manual_seed(seed)
    tokens = draw(n, generator)
    s, u, t = torch.sort(torch.rand(3, n, generator=generator), dim=0).values
    g_s, g_u, g_t = (gamma_from_alpha(v, K) for v in (s, u, t))
    x = one_hot_path(tokens, g_s, K, generator)

    def jump(x, a, b, g_a, g_b):  # X_{a,b}(x) = x + (g_b - g_a) / (1 - g_a) * (delta(x, a, b) - x)
        return flow_map_step(x, torch.softmax(student(x, a, b), dim=-1), g_a, g_b)

    direct = jump(x, s, t, g_s, g_t)
    two_jumps = jump(jump(x, s, u, g_s, g_u), u, t, g_u, g_t)
    return (direct - two_jumps).abs().mean().item()


def train_toy(seed: int = SEED) -> dict:
    """Teacher, both students and every measured figure for one seed (also used to sweep seeds)."""
    torch.manual_seed(seed)
    teacher = fit(build_network(ModelConfig(vocab_size=K, seq_len=L, **SHAPE)), objectives.flm_loss,
                  TEACHER["steps"], TEACHER["batch"], TEACHER["lr"], seed).requires_grad_(False)
    out = {"teacher": teacher,
           "flm_1": tv_and_valid(sample(teacher, 1)),
           "flm_many": tv_and_valid(sample(teacher, MANY_STEPS))}
    for name, loss, cfg in (("semigroup", objectives.fmlm_semigroup_loss, SEMIGROUP),
                            ("lagrangian", objectives.fmlm_lagrangian_loss, LAGRANGIAN)):
        student = student_from(teacher, seed + 1)
        if name == "semigroup":
            out["gap_before"] = consistency_gap(student.eval())
        fit(student, lambda net, tokens, gen: loss(net, teacher, tokens, gen), cfg["steps"], cfg["batch"],
            cfg["lr"], seed + 2).requires_grad_(False)
        out[name] = student
        out[f"{name}_1"] = tv_and_valid(sample(student, 1))
        out[f"{name}_gap"] = consistency_gap(student)
    return out


@pytest.fixture(scope="module")
def toy() -> dict:
    return train_toy(SEED)


def describe(toy: dict) -> str:
    """The measured figures, (TV, valid share) per sampler and the consistency gaps, for failure messages."""
    keys = ("flm_1", "flm_many", "semigroup_1", "lagrangian_1", "gap_before", "semigroup_gap", "lagrangian_gap")
    rounded = {k: tuple(round(x, 4) for x in toy[k]) if isinstance(toy[k], tuple) else round(toy[k], 5) for k in keys}
    return ", ".join(f"{k}={v}" for k, v in rounded.items())


# ------------------------------------------------------------------ the toy itself (no training)


def test_toy_language_has_an_invalid_mean_field_mode():
    marginals = torch.nn.functional.one_hot(SEQUENCES, K).double().mul(PROBS.view(-1, 1, 1)).sum(0)  # (L, K)
    assert torch.allclose(marginals[:, 0], torch.full((L,), 0.75, dtype=torch.float64))
    assert sequence_index(marginals.argmax(-1)[None]).item() == -1  # the product of the modes is blank
    assert tv_and_valid(SEQUENCES) == (pytest.approx(0.0), 1.0)
    assert tv_and_valid(torch.zeros(10, L, dtype=torch.long)) == (pytest.approx(1.0), 0.0)
    assert expected_tv_noise(PROBS, N_SAMPLES) == pytest.approx(0.0155, abs=1e-4)


def test_noise_floor_matches_the_formula():
    """Empirical laws of exact draws sit at the predicted E TV (so the thresholds rest on it)."""
    generator = torch.Generator().manual_seed(0)
    values = torch.tensor([tv_and_valid(draw(N_SAMPLES, generator))[0] for _ in range(200)])
    expected = expected_tv_noise(PROBS, N_SAMPLES)
    assert abs(values.mean().item() - expected) < 0.1 * expected
    assert values.std().item() < 0.5 * expected


def test_euler_with_the_exact_denoiser_reproduces_the_language():
    """The toy's premise, without training: with the Bayes denoiser, many Euler steps of FlowSampler
    reproduce the law to within sampling noise, and one step returns the blank mean-field mode."""
    exact = ExactDenoiser()
    noise = expected_tv_noise(PROBS, N_SAMPLES)
    tv_many, valid_many = tv_and_valid(sample(exact, 32))
    assert tv_many < 3 * noise and valid_many > 0.995, (tv_many, valid_many)
    one = sample(exact, 1)
    assert torch.equal(one, torch.zeros_like(one))


# ------------------------------------------------------------------ trained FLM and FMLM


def test_many_step_flm_reproduces_the_language(toy):
    tv, valid = toy["flm_many"]
    assert tv <= FLM_MANY_STEPS_MAX_TV and valid >= FMLM_MIN_VALID, describe(toy)


def test_one_step_flm_returns_the_blank_mean_field_mode(toy):
    tv, valid = toy["flm_1"]
    assert tv >= 0.9 and valid <= 0.1, describe(toy)


def test_one_step_semigroup_fmlm_matches_many_step_flm(toy):
    tv, valid = toy["semigroup_1"]
    assert tv <= toy["flm_many"][0] + FMLM_MARGIN, describe(toy)
    assert toy["flm_1"][0] >= tv + ONE_STEP_FLM_GAP, describe(toy)
    assert valid >= FMLM_MIN_VALID, describe(toy)


def test_one_step_lagrangian_fmlm_is_comparable(toy):
    tv, _ = toy["lagrangian_1"]
    assert tv <= toy["flm_many"][0] + LAGRANGIAN_MARGIN, describe(toy)
    assert toy["flm_1"][0] >= tv + ONE_STEP_FLM_GAP, describe(toy)


def test_distilled_flow_map_is_self_consistent(toy):
    """X_{s,t} against X_{u,t} after X_{s,u}: before distillation the gap is the Euler error of one
    step against two; both distillation objectives drive it down."""
    assert toy["gap_before"] > 0
    assert toy["semigroup_gap"] <= CONSISTENCY_RATIO * toy["gap_before"], describe(toy)
    assert toy["lagrangian_gap"] <= CONSISTENCY_RATIO * toy["gap_before"], describe(toy)

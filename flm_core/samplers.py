"""Samplers: one small step contract (`Sampler`), one loop (`run_sampler`).

A sampler builds its per-run plan once (a typed dataclass: time grid on the device), makes an initial
state, and advances it with `step(state, i, plan, generator) -> (state, Step)`, one network call per
step. `run_sampler` is the only loop; it never syncs with the host inside the loop and knows no
sampler class by name.

- FlowSampler: x <- X_{t_i, t_{i+1}}(x) = x + (g_{i+1} - g_i)/(1 - g_i) * (delta - x) on the
  uniform-t grid (`schedule.uniform_time_grid`). With delta = D(x, t_i) (FLM) this is the Euler step;
  with the flow map delta(x, t_i, t_{i+1}) (FMLM) it is exact. The last step lands on g = 1, x = delta.
  A self-conditioned network also reads the previous step's delta (zeros at the first step).
- MaskedDiffusionSampler: MDLM ancestral sampling, masking time t from 1 to 0, each masked position
  unmasked with probability (t - s)/t to a draw from p(x_0 | x_t).
- AutoregressiveSampler: one token per step with a key/value cache (L - 1 steps after BOS).

Held tokens (a prompt): every sampler can keep given tokens at given positions (`Held`) through
`holder(state, plan, held)`, a function the loop applies to the first state and after every step.
MDLM holds them exactly (they start unmasked); AR writes each when it reaches its position (it cannot
look ahead); the flows re-impose each held position's own noising path (replacement), which the
first call, at g = 0, cannot see.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Generic, NamedTuple, Protocol, TypeVar

import torch
import torch.nn.functional as F

from flm_core.models import EmbeddedDenoiser
from flm_core.paths import embedded_noise, flow_map_step, noise_factor, renoised_step, subs_logits
from flm_core.schedule import uniform_time_grid
from flm_core.trajectory import Recorder

State = TypeVar("State")
Plan = TypeVar("Plan")


@dataclass
class Step:
    """What one step predicted, with one meaning for every sampler.

    logits, probs: (B, L', K) for positions [first, first + L') (all positions except for AR).
    progress: how far the state this step reads is from the start (0) to a finished sample (1):
        the flows' model time t_i (the share of tokens decodable), MDLM's 1 - t_i (the expected share
        unmasked), AR's i / (L - 1) (the share of positions written).
    gamma: the noise level g_i of the Gaussian path at the state this step reads; NaN for samplers
        without one (MDLM, AR)."""

    logits: torch.Tensor
    probs: torch.Tensor
    progress: float
    gamma: float = float("nan")
    first: int = 0


@dataclass(frozen=True)
class Held:
    """Tokens every sample keeps: ids (P,) at positions (P,), long tensors on the run's device."""

    positions: torch.Tensor
    ids: torch.Tensor


Hold = Callable[[Any, int], Any]  # (state, steps done) -> the state with the held tokens re-imposed


class Sampler(Protocol, Generic[State, Plan]):
    """The contract every sampler keeps; `run_sampler` uses nothing else.

    partial: each step predicts only some positions (AR: one), so a record is updated at every step.
    """

    network: torch.nn.Module
    partial: bool

    def num_steps(self, steps: int) -> int:
        """Network calls a run asked for `steps` makes."""

    def plan(self, steps: int, device: torch.device, dense: bool = False, renoise: float = 0.0) -> Plan:
        """Per-run constants (time grid on the device); dense: keep a state the recorder can read; renoise:
        the flows' share of fresh noise per step (others refuse a nonzero one)."""

    def init_state(self, batch: int, plan: Plan, generator: torch.Generator, device: torch.device) -> State:
        """The state before the first step."""

    def step(self, state: State, i: int, plan: Plan, generator: torch.Generator) -> tuple[State, Step]:
        """Step i (0-based): one network call."""

    def holder(self, state: State, plan: Plan, held: Held) -> Hold:
        """A function that re-imposes the held tokens on a state after `i` steps (i = 0: the first)."""

    def tokens(self, state: State) -> torch.Tensor:
        """The tokens (B, L) a state reads as (final tokens after the last step)."""

    def pending(self, state: State) -> torch.Tensor:
        """(B, L) bool: positions not written yet (masked, or beyond the AR's last token)."""

    def dense(self, state: State, plan: Plan) -> torch.Tensor | None:
        """The state as a point of R^{L x K} (B, L, K) for the record, or None where it is not one."""


def categorical_sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row by inverse CDF: (..., K) -> (...).

    id = the first k with F_k > u * F_K, u ~ U[0, 1) per row and F the cumulative sum, so one uniform per
    row replaces K Gumbel draws; ids of probability 0 (flat steps of F) are never drawn. In float32 each
    id's share F_k - F_{k-1} is off by at most one ulp of F (6e-8), a total variation below K * 3e-8
    (6e-5 at K = 2048, 1e-3 at K = 30522)."""
    cdf = probs.float().cumsum(-1)
    u = torch.rand(probs.shape[:-1], generator=generator, device=probs.device)
    ids = torch.searchsorted(cdf, (u * cdf[..., -1]).unsqueeze(-1), right=True).squeeze(-1)
    return ids.clamp_max_(probs.shape[-1] - 1)


@dataclass(frozen=True)
class StateSpace:
    """Where a flow run keeps x, and how the network reads it there.

    dense: x (B, L, K) itself, read by network(x, *times). Low-rank: h = x @ E (B, L, D), for an
    `EmbeddedDenoiser`, which reads a dense x only through h; every flow update is linear in x, so keeping h
    is exact, not an approximation. lift: a point of R^K (noise, delta, a one-hot) into the space."""

    dense: bool
    lift: Callable[[torch.Tensor], torch.Tensor]
    denoise: Callable[..., torch.Tensor]  # (state, *times[, estimate=]) -> logits (B, L, K)
    noise: Callable[[tuple[int, int], torch.Generator], torch.Tensor]  # fresh eps ~ N(0, I_K) (B, L) in the space


def dense_space(network: torch.nn.Module) -> StateSpace:
    k = network.config.vocab_size
    return StateSpace(dense=True, lift=lambda x: x, denoise=network,
                      noise=lambda shape, gen: torch.randn(*shape, k, generator=gen, device=gen.device))


def low_rank_space(network: EmbeddedDenoiser) -> StateSpace:
    factor = functools.cache(lambda: noise_factor(network.vocab_embed.embedding))  # once a run, when renoising
    return StateSpace(dense=False, lift=network.vocab_embed, denoise=network.forward_embedded,
                      noise=lambda shape, gen: embedded_noise(shape, factor(), gen))


@dataclass(frozen=True)
class FlowPlan:
    """t, g: (n + 1,) model times and noise levels on the run's device (`schedule.uniform_time_grid`);
    t_host, g_host: the same as Python floats (recorded, never used in the math)."""

    t: torch.Tensor
    g: torch.Tensor
    t_host: list[float]
    g_host: list[float]
    space: StateSpace
    renoise: float = 0.0  # eta of `paths.renoised_step`; 0 is the deterministic Euler / flow-map step

    @property
    def last(self) -> int:
        return len(self.t_host) - 2


class FlowState(NamedTuple):
    """A flow run's state, both in the plan's space ((B, L, K) dense, (B, L, D) low-rank): x, and the
    self-conditioning estimate, the previous step's delta (zeros before the first step; None for a network
    without self-conditioning, and after the last step, where x is delta)."""

    x: torch.Tensor
    estimate: torch.Tensor | None


class FlowSampler:
    """FLM Euler (one time input) or FMLM flow map (two time inputs) on the uniform-t grid.

    Every run starts from x_0 = eps ~ N(0, I_K) drawn from the seed alone, so two models given the same
    seed start from the same noise (the app's FLM-vs-FMLM agreement relies on it). The state lives in the
    plan's `StateSpace`: dense x for a recorded run, else h = x @ E (no K-wide state update) where the
    network allows it. A self-conditioned network (config.self_condition) is fed back the previous step's
    delta, which the update computes anyway: no extra network call."""

    partial = False

    def __init__(self, network: torch.nn.Module, low_rank: bool = False):
        """low_rank: the network is an `EmbeddedDenoiser`, so unrecorded runs may keep h = x @ E (any other
        denoiser is read on the dense x)."""
        self.network = network
        self.config = network.config
        self.two_times = network.config.double_time
        self.self_condition = network.config.self_condition
        self.low_rank = low_rank

    def num_steps(self, steps: int) -> int:
        return steps

    def plan(self, steps: int, device: torch.device, dense: bool = False, renoise: float = 0.0) -> FlowPlan:
        if not 0.0 <= renoise <= 1.0:
            raise ValueError(f"renoise must be in [0, 1] (the share of fresh noise), got {renoise}")
        t, g = uniform_time_grid(steps, self.config.vocab_size, device)
        space = low_rank_space(self.network) if self.low_rank and not dense else dense_space(self.network)
        return FlowPlan(t, g, t.tolist(), g.tolist(), space, renoise)

    def init_state(self, batch: int, plan: FlowPlan, generator: torch.Generator,
                   device: torch.device) -> FlowState:
        """x_0 = eps (B, L, K), in the plan's space; the estimate starts at zero."""
        eps = torch.randn(batch, self.config.seq_len, self.config.vocab_size, generator=generator, device=device)
        x = plan.space.lift(eps)
        return FlowState(x, torch.zeros_like(x) if self.self_condition else None)

    def step(self, state: FlowState, i: int, plan: FlowPlan, generator: torch.Generator):
        x, estimate = state
        b = x.shape[0]
        s, t = plan.t[i].expand(b), plan.t[i + 1].expand(b)
        times = (s, t) if self.two_times else (s,)
        if estimate is None:  # a plain denoiser keeps the network(x, s[, t]) contract (user networks need no estimate)
            logits = plan.space.denoise(x, *times)
        else:  # self-conditioning: the network also reads the previous step's delta
            logits = plan.space.denoise(x, *times, estimate=estimate)
        delta = torch.softmax(logits, dim=-1)
        out = Step(logits, delta, progress=plan.t_host[i], gamma=plan.g_host[i])
        if i == plan.last:  # lands on g = 1, where X_{s,1}(x) = delta exactly
            return FlowState(delta, None), out
        lifted = plan.space.lift(delta)  # delta in the state's space
        if plan.renoise:  # part of the implied noise drawn afresh
            fresh = plan.space.noise(tuple(x.shape[:2]), generator)
            x_next = renoised_step(x, lifted, plan.g[i], plan.g[i + 1], plan.renoise, fresh)
        else:
            x_next = flow_map_step(x, lifted, plan.g[i], plan.g[i + 1])  # X_{s,t}(x)
        return FlowState(x_next, None if estimate is None else lifted), out  # D_prev <- delta where fed back

    def holder(self, state: FlowState, plan: FlowPlan, held: Held) -> Hold:
        """Held positions ride their own path x_g = (1 - g) eps + g e(id), re-imposed after every step
        (replacement, as in diffusion inpainting). At g = 0 they are pure noise: the first network call
        cannot see them, so a one-step run writes them in and is otherwise unconditional. The last state
        (delta, on the simplex) gets e(id) there. The estimate is the network's own and is kept."""
        pos = held.positions
        start = state.x[:, pos]  # eps at the held positions, in the plan's space (B, P, K or D)
        one_hot = F.one_hot(held.ids, self.config.vocab_size).float()  # e(id), (P, K)
        target = plan.space.lift(one_hot[None])  # e(id) in the plan's space, (1, P, K or D)
        last = plan.last + 1

        def hold(state: FlowState, i: int) -> FlowState:
            x = state.x
            if i == last:  # x is delta, in the network's output dtype
                kept = one_hot.to(x.dtype).expand(x.shape[0], -1, -1)
            else:
                g = plan.g[i]
                kept = ((1 - g) * start + g * target).to(x.dtype)  # x_g = (1-g) eps + g e(id)
            return state._replace(x=x.index_copy(1, pos, kept))
        return hold

    def tokens(self, state: FlowState) -> torch.Tensor:
        return state.x.argmax(-1)

    def pending(self, state: FlowState) -> torch.Tensor:
        return torch.zeros(state.x.shape[:2], dtype=torch.bool, device=state.x.device)

    def dense(self, state: FlowState, plan: FlowPlan) -> torch.Tensor | None:
        return state.x if plan.space.dense else None


@dataclass(frozen=True)
class MaskPlan:
    """t: (n + 1,) masking times from 1 (all masked) to 0 on the run's device; t_host: as floats."""

    t: torch.Tensor
    t_host: list[float]


class MaskedDiffusionSampler:
    """MDLM ancestral sampler (log-linear schedule: P(masked at t) = t)."""

    partial = False

    def __init__(self, network: torch.nn.Module, mask_id: int):
        self.network = network
        self.config = network.config
        self.mask_id = mask_id

    def num_steps(self, steps: int) -> int:
        return steps

    def plan(self, steps: int, device: torch.device, dense: bool = False, renoise: float = 0.0) -> MaskPlan:
        _no_renoise(renoise, "MDLM")
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        return MaskPlan(t.float().to(device), t.tolist())

    def init_state(self, batch: int, plan: MaskPlan, generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
        return torch.full((batch, self.config.seq_len), self.mask_id, dtype=torch.long, device=device)

    def step(self, x: torch.Tensor, i: int, plan: MaskPlan, generator: torch.Generator):
        t, s = plan.t[i], plan.t[i + 1]
        logits = subs_logits(self.network(x, t.expand(x.shape[0])), self.mask_id)
        probs = torch.softmax(logits, dim=-1)
        masked = x == self.mask_id
        unmask = masked & (torch.rand(x.shape, generator=generator, device=x.device) < (t - s) / t)
        x_next = torch.where(unmask, categorical_sample(probs, generator), x)  # SUBS: unmasked tokens are kept
        return x_next, Step(logits, probs, progress=1.0 - plan.t_host[i])

    def holder(self, x: torch.Tensor, plan: MaskPlan, held: Held) -> Hold:
        """Held positions start unmasked, and SUBS keeps unmasked tokens: exact conditioning."""
        def hold(x: torch.Tensor, i: int) -> torch.Tensor:
            return x.index_copy(1, held.positions, held.ids.expand(x.shape[0], -1)) if i == 0 else x
        return hold

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pending(self, x: torch.Tensor) -> torch.Tensor:
        return x == self.mask_id

    def dense(self, x: torch.Tensor, plan: MaskPlan) -> None:
        return None


class AutoregressiveSampler:
    """Left-to-right sampling with a KV cache; the state is (tokens so far (B, i+1), cache). It has no
    per-run constants, so its plan is None."""

    partial = True

    def __init__(self, network: torch.nn.Module, bos_id: int):
        self.network = network
        self.config = network.config
        self.bos_id = bos_id

    def num_steps(self, steps: int) -> int:
        return self.config.seq_len - 1  # fixed: one call per generated token

    def plan(self, steps: int, device: torch.device, dense: bool = False, renoise: float = 0.0) -> None:
        _no_renoise(renoise, "an AR model")
        return None

    def init_state(self, batch: int, plan: None, generator: torch.Generator, device: torch.device):
        return torch.full((batch, 1), self.bos_id, dtype=torch.long, device=device), None

    def step(self, state, i: int, plan: None, generator: torch.Generator):
        ids, cache = state
        logits, cache = self.network.forward_cached(ids[:, -1:] if cache is not None else ids, cache)
        probs = torch.softmax(logits[:, -1:], dim=-1)
        ids = torch.cat([ids, categorical_sample(probs, generator)], dim=1)
        return (ids, cache), Step(logits[:, -1:], probs, progress=i / (self.config.seq_len - 1), first=i + 1)

    def holder(self, state, plan: None, held: Held) -> Hold:
        """A held position's token replaces the draw when the sampler reaches it (later tokens see it;
        earlier ones could not look ahead)."""
        at = dict(zip(held.positions.tolist(), held.ids.tolist()))  # host copy, once per run

        def hold(state, i: int):
            ids, cache = state
            newest = ids.shape[1] - 1  # BOS is position 0; step i writes position i + 1
            if newest in at:
                ids = ids.clone()
                ids[:, newest] = at[newest]
            return ids, cache
        return hold

    def tokens(self, state) -> torch.Tensor:
        return state[0]

    def pending(self, state) -> torch.Tensor:
        ids = state[0]
        done = torch.arange(self.config.seq_len, device=ids.device) < ids.shape[1]
        return ~done.expand(ids.shape[0], -1)

    def dense(self, state, plan: None) -> None:
        return None


def _no_renoise(renoise: float, who: str) -> None:
    if renoise:
        raise ValueError(f"renoise applies to flows (FLM, FMLM); {who} has no Gaussian noise to draw afresh")


@torch.inference_mode()
def run_sampler(sampler: Sampler, batch: int, steps: int, generator: torch.Generator, device: torch.device,
                recorder: Recorder | None = None,
                progress: Callable[[int, int], None] | None = None,
                held: Held | None = None, renoise: float = 0.0) -> tuple[torch.Tensor, int]:
    """The one sampling loop: returns final tokens (B, L) and the number of network calls.

    A recorded step stores the state it read (after the previous step and the prompt hold), what it
    predicted, and which positions are still pending after it and the hold."""
    n = sampler.num_steps(steps)
    plan = sampler.plan(n, device, dense=recorder is not None, renoise=renoise)
    state = sampler.init_state(batch, plan, generator, device)
    hold = sampler.holder(state, plan, held) if held is not None else None
    if hold is not None:
        state = hold(state, 0)
    for i in range(n):
        record = recorder is not None and recorder.needs(i, sampler.partial)
        read = sampler.dense(state, plan) if record else None
        state, out = sampler.step(state, i, plan, generator)
        if hold is not None:
            state = hold(state, i + 1)
        if record:
            recorder.update(i, out, read, sampler.pending(state), held)
        if progress is not None:
            progress(i + 1, n)
    return sampler.tokens(state), n

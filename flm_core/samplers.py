"""Samplers: one small step contract, one loop.

A sampler builds its per-run `plan` once (time grid on the device), makes an initial state, and
advances it with `step(state, i, plan, generator) -> (state, Step)`, one network call per step.
`run_sampler` is the only loop; it never syncs with the host inside the loop.

- FlowSampler: x <- X_{t_i, t_{i+1}}(x) = x + (g_{i+1} - g_i)/(1 - g_i) * (delta - x) on the
  uniform-t grid. With delta = D(x, t_i) (FLM) this is the Euler step; with the flow map
  delta(x, t_i, t_{i+1}) (FMLM) it is exact. The last step lands on g = 1, i.e. x = delta.
- MaskedDiffusionSampler: MDLM ancestral sampling, t from 1 to 0, each masked position unmasked
  with probability (t - s)/t to a draw from p(x_0 | x_t).
- AutoregressiveSampler: one token per step with a key/value cache (L - 1 steps after BOS).

Held tokens (a prompt): every sampler can keep given tokens at given positions (`Held`) through
`holder(state, plan, held)`, a function the loop applies to the first state and after every step.
MDLM holds them exactly (they start unmasked); AR writes each when it reaches its position (it cannot
look ahead); the flows re-impose each held position's own noising path (replacement), which the
first call, at g = 0, cannot see.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from flm_core.paths import flow_map_step, input_embedding
from flm_core.schedule import gamma_from_alpha
from flm_core.trajectory import Recorder


@dataclass
class Step:
    """What one step predicted: logits and probs (B, L', K) for positions [first, first + L')."""

    logits: torch.Tensor
    probs: torch.Tensor
    t: float
    gamma: float
    first: int = 0


@dataclass(frozen=True)
class Held:
    """Tokens every sample keeps: ids (P,) at positions (P,), long tensors on the run's device."""

    positions: torch.Tensor
    ids: torch.Tensor


def categorical_sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row by inverse CDF: (..., K) -> (...).

    id = the first k with F_k > u * F_K, u ~ U[0, 1) per row and F the cumulative sum, so one uniform per
    row replaces K Gumbel draws; ids of probability 0 (flat steps of F) are never drawn. In float32 each
    id's share F_k - F_{k-1} is off by at most one ulp of F (6e-8), a total variation below K * 3e-8
    (6e-5 at K = 2048, 1e-3 at K = 30522); float64 doubled the memory traffic for no visible change."""
    cdf = probs.float().cumsum(-1)
    u = torch.rand(probs.shape[:-1], generator=generator, device=probs.device)
    ids = torch.searchsorted(cdf, (u * cdf[..., -1]).unsqueeze(-1), right=True).squeeze(-1)
    return ids.clamp_max_(probs.shape[-1] - 1)


class FlowSampler:
    """FLM Euler (one time input) or FMLM flow map (two time inputs) on the uniform-t grid.

    Every run starts from x_0 = eps ~ N(0, I_K) drawn from the seed alone, so two models given the same
    seed start from the same noise (the app's FLM-vs-FMLM agreement relies on it). After that, the
    network sees x only through h = x @ E (E = vocab_embed, (K, D)) and each update is linear in x, so an
    unrecorded run keeps its state in D dimensions (exact, not an approximation):
        h_0 = eps @ E,  h_{i+1} = h_i + (g_{i+1} - g_i) / (1 - g_i) (delta_i @ E - h_i)  (paths.flow_map_step),
    with no K-wide state update. A recorded run keeps the dense x, which the app shows."""

    def __init__(self, network: torch.nn.Module):
        self.network = network
        self.config = network.config
        self.two_times = network.config.double_time

    def num_steps(self, steps: int) -> int:
        return steps

    def plan(self, steps: int, device: torch.device, dense: bool = False) -> dict[str, Any]:
        t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
        g = gamma_from_alpha(t, self.config.vocab_size)
        embedded = input_embedding(self.network) is not None  # any other denoiser sees dense x
        return {"t": t.float().to(device), "g": g.float().to(device), "t_host": t.tolist(), "g_host": g.tolist(),
                "dense": dense or not embedded}

    def init_state(self, batch: int, plan: dict[str, Any], generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
        """x_0 = eps (B, L, K), or h_0 = eps @ E (B, L, D) for an unrecorded run."""
        eps = torch.randn(batch, self.config.seq_len, self.config.vocab_size, generator=generator, device=device)
        return eps if plan["dense"] else self.network.vocab_embed(eps)

    def step(self, x: torch.Tensor, i: int, plan: dict[str, Any], generator: torch.Generator):
        b = x.shape[0]
        s, t = plan["t"][i].expand(b), plan["t"][i + 1].expand(b)
        times = (s, t) if self.two_times else (s,)
        logits = self.network(x, *times) if plan["dense"] else self.network.forward_embedded(x, *times)
        delta = torch.softmax(logits, dim=-1)
        if i == len(plan["t_host"]) - 2:  # lands on g = 1, where X_{s,1}(x) = delta exactly
            x_next = delta
        else:  # the same step on x or, linearly, on h = x @ E
            target = delta if plan["dense"] else self.network.vocab_embed(delta)
            x_next = flow_map_step(x, target, plan["g"][i], plan["g"][i + 1])
        return x_next, Step(logits, delta, plan["t_host"][i], plan["g_host"][i])

    def holder(self, x: torch.Tensor, plan: dict[str, Any], held: Held) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """Held positions ride their own path x_g = (1 - g) eps + g e(id), re-imposed after every step
        (replacement, as in diffusion inpainting; linear, so the same on h = x @ E). At g = 0 they are pure
        noise: the first network call cannot see them, so a one-step run writes them in and is otherwise
        unconditional. The last state (delta, on the simplex) gets e(id) there."""
        pos = held.positions
        start = x[:, pos]  # eps (or eps @ E) at the held positions, (B, P, K or D)
        one_hot = F.one_hot(held.ids, self.config.vocab_size).float()  # e(id), (P, K)
        target = one_hot if plan["dense"] else input_embedding(self.network)[held.ids]  # e(id) or e(id) @ E
        last = len(plan["t_host"]) - 1

        def hold(x: torch.Tensor, i: int) -> torch.Tensor:
            if i == last:  # x is delta, in the network's output dtype
                return x.index_copy(1, pos, one_hot.to(x.dtype).expand(x.shape[0], -1, -1))
            g = plan["g"][i]
            return x.index_copy(1, pos, ((1 - g) * start + g * target).to(x.dtype))  # x_g = (1-g) eps + g e(id)
        return hold

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(-1)

    def pending(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)


class MaskedDiffusionSampler:
    """MDLM ancestral sampler (log-linear schedule: P(masked at t) = t)."""

    def __init__(self, network: torch.nn.Module, mask_id: int):
        self.network = network
        self.config = network.config
        self.mask_id = mask_id

    def num_steps(self, steps: int) -> int:
        return steps

    def plan(self, steps: int, device: torch.device, dense: bool = False) -> dict[str, Any]:
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        return {"t": t.float().to(device), "t_host": t.tolist()}

    def init_state(self, batch: int, plan: dict[str, Any], generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
        return torch.full((batch, self.config.seq_len), self.mask_id, dtype=torch.long, device=device)

    def step(self, x: torch.Tensor, i: int, plan: dict[str, Any], generator: torch.Generator):
        t, s = plan["t"][i], plan["t"][i + 1]
        logits = self.network(x, t.expand(x.shape[0]))
        logits[..., self.mask_id] = float("-inf")  # SUBS: never predict the mask
        probs = torch.softmax(logits, dim=-1)
        masked = x == self.mask_id
        unmask = masked & (torch.rand(x.shape, generator=generator, device=x.device) < (t - s) / t)
        x_next = torch.where(unmask, categorical_sample(probs, generator), x)  # SUBS: unmasked tokens are kept
        return x_next, Step(logits, probs, plan["t_host"][i], float("nan"))

    def holder(self, x: torch.Tensor, plan: dict[str, Any], held: Held) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """Held positions start unmasked, and SUBS keeps unmasked tokens: exact conditioning."""
        def hold(x: torch.Tensor, i: int) -> torch.Tensor:
            return x.index_copy(1, held.positions, held.ids.expand(x.shape[0], -1)) if i == 0 else x
        return hold

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pending(self, x: torch.Tensor) -> torch.Tensor:
        return x == self.mask_id


class AutoregressiveSampler:
    """Left-to-right sampling with a KV cache; the state is (tokens so far (B, i+1), cache)."""

    def __init__(self, network: torch.nn.Module, bos_id: int):
        self.network = network
        self.config = network.config
        self.bos_id = bos_id

    def num_steps(self, steps: int) -> int:
        return self.config.seq_len - 1  # fixed: one call per generated token

    def plan(self, steps: int, device: torch.device, dense: bool = False) -> dict[str, Any]:
        return {}

    def init_state(self, batch: int, plan: dict[str, Any], generator: torch.Generator, device: torch.device):
        return torch.full((batch, 1), self.bos_id, dtype=torch.long, device=device), None

    def step(self, state, i: int, plan: dict[str, Any], generator: torch.Generator):
        ids, cache = state
        logits, cache = self.network.forward_cached(ids[:, -1:] if cache is not None else ids, cache)
        probs = torch.softmax(logits[:, -1:], dim=-1)
        ids = torch.cat([ids, categorical_sample(probs, generator)], dim=1)
        return (ids, cache), Step(logits[:, -1:], probs, (i + 1) / self.config.seq_len, float("nan"), first=i + 1)

    def holder(self, state, plan: dict[str, Any], held: Held) -> Callable:
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


Sampler = FlowSampler | MaskedDiffusionSampler | AutoregressiveSampler


@torch.inference_mode()
def run_sampler(sampler: Sampler, batch: int, steps: int, generator: torch.Generator, device: torch.device,
                recorder: Recorder | None = None,
                progress: Callable[[int, int], None] | None = None,
                held: Held | None = None) -> tuple[torch.Tensor, int]:
    """The one sampling loop: returns final tokens (B, L) and the number of network calls."""
    n = sampler.num_steps(steps)
    plan = sampler.plan(n, device, dense=recorder is not None)
    state = sampler.init_state(batch, plan, generator, device)
    hold = sampler.holder(state, plan, held) if held is not None else None
    if hold is not None:
        state = hold(state, 0)
    partial = isinstance(sampler, AutoregressiveSampler)
    for i in range(n):
        record = recorder is not None and recorder.needs(i, partial)
        if record:
            pending = sampler.pending(state)
            dense = state if isinstance(state, torch.Tensor) and state.dim() == 3 else None
        state, out = sampler.step(state, i, plan, generator)
        if hold is not None:
            state = hold(state, i + 1)
        if record:
            recorder.update(i, out, dense, pending)
        if progress is not None:
            progress(i + 1, n)
    return sampler.tokens(state), n

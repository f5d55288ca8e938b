"""Training losses as pure functions of (network, tokens, generator).

Each returns (loss, logs): `loss` is the scalar to minimise and `logs` holds detached scalars,
detached scalar tensors (no host sync inside the step); "nll" is the per-token negative
log-likelihood (FLM cross-entropy, MDLM bound, AR), "consistency_kl" the flow-map distillation gap
("consistency_mse", "map_mse" for the authors' two squared-error stages).

The flow-map losses call their FLM teacher as teacher(x, t) -> logits; a self-conditioned teacher is
passed as `self_conditioned_teacher(teacher)` (its second pass) or as itself (its first pass, the estimate
read as zeros).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from flm_core.models import EmbeddedDenoiser
from flm_core.paths import (embedded_one_hot_path, flow_map_step, mask_tokens, one_hot_path, stratified_uniform,
                            subs_logits)
from flm_core.schedule import gamma_from_alpha

LossOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]
Objective = Callable[[torch.nn.Module, torch.Tensor, torch.Generator], LossOutput]


def _weighted(per_token: torch.Tensor, network: torch.nn.Module, time: torch.Tensor) -> torch.Tensor:
    """exp(-w(s)) * loss + w(s) with a learned log-weight w, or the plain mean without one."""
    weighting = getattr(network, "learnable_loss_weighting", None)
    if weighting is None:
        return per_token.mean()
    w = weighting(time).unsqueeze(-1)
    return (torch.exp(-w) * per_token + w).mean()


def flm_loss(network: EmbeddedDenoiser, tokens: torch.Tensor, generator: torch.Generator,
             low_rank_noise: bool = True) -> LossOutput:
    """Cross-entropy of D(x_g, t) = softmax(network(x_g, t)) against x, t ~ U[0,1], g = alpha^-1(t).

    The network reads x_g only through x_g @ E, so with low_rank_noise (the default, where K >= D) that
    product is drawn without the K-wide noise (same distribution, see paths.embedded_one_hot_path);
    False draws the dense x_g (bench-speed compares). A flow map called here is scored on its diagonal.
    A self-conditioned network also reads an estimate (`self_condition_estimate`)."""
    k = network.config.vocab_size
    t = stratified_uniform(tokens.shape[0], generator, tokens.device)
    g = gamma_from_alpha(t, k)
    embedding = network.vocab_embed.embedding
    if low_rank_noise and k >= embedding.shape[1]:  # x_g and D-hat in the network's own coordinates: @ E
        x, denoise, lift = (embedded_one_hot_path(tokens, g, embedding, generator), network.forward_embedded,
                            network.vocab_embed)
    else:
        x, denoise, lift = one_hot_path(tokens, g, k, generator), network, lambda probs: probs
    if network.config.self_condition:
        logits = denoise(x, t, estimate=self_condition_estimate(denoise, lift, x, t, generator))
    else:
        logits = denoise(x, t)
    ce = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, L)
    return _weighted(ce, network, t), {"nll": ce.mean().detach()}


def self_condition_estimate(denoise: Callable[..., torch.Tensor], lift: Callable[[torch.Tensor], torch.Tensor],
                            x: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Self-conditioning's training input for a state x (B, L, K or D) at times t (B,): on a random half of
    the rows (each row with probability 1/2 for an even batch, drawn from `generator`) the no-grad first
    pass D-hat = sg[softmax(denoise(x, t))], read with a zero estimate; zeros on the others. `lift` puts
    D-hat (B', L, K) in x's space (D-hat @ E beside x_g @ E), outside no_grad so E learns from both reads.
    A fixed half, not a coin per row: the expected loss is the same, the shapes are fixed and nothing waits
    for the host."""
    b = x.shape[0]
    rows = torch.randperm(b, generator=generator, device=x.device)[: b // 2]
    with torch.no_grad():
        d_hat = torch.softmax(denoise(x[rows], t[rows]), dim=-1)  # (B', L, K)
    estimate = lift(d_hat)
    return estimate.new_zeros(b, *estimate.shape[1:]).index_copy(0, rows, estimate)


def self_conditioned_teacher(teacher: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A self-conditioned FLM as a distillation teacher (x, t) -> logits of its second pass,
    teacher(x, t, estimate=softmax(teacher(x, t))): the input it was trained on with its own first pass,
    and the better of its two denoisers (the first pass reads the estimate as zeros). Two calls per target."""
    def second_pass(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return teacher(x, t, estimate=torch.softmax(teacher(x, t), dim=-1))
    return second_pass


def kl_to_logits(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per position: (B, L, K) -> (B, L); target may hold zeros."""
    return (torch.special.xlogy(target, target) - target * F.log_softmax(logits, dim=-1)).sum(-1)


def _flow_map_times(batch: int, boundary_prob: float, generator: torch.Generator, device: torch.device,
                    min_gap: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) with gap d = t - s stratified in model time (at least min_gap), s ~ U[0, 1-d], and (0, 1) w.p.
    boundary_prob."""
    d = stratified_uniform(batch, generator, device).clamp(min_gap, 1.0)
    s = torch.rand(batch, generator=generator, device=device) * (1 - d)
    boundary = torch.rand(batch, generator=generator, device=device) < boundary_prob
    s = torch.where(boundary, torch.zeros_like(s), s)
    t = torch.where(boundary, torch.ones_like(s), s + d)
    return s, t


def _student_with_diagonal(student: torch.nn.Module, teacher: torch.nn.Module, tokens: torch.Tensor,
                           x_s: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One batched student call for delta(x_s, s, t) and the diagonal delta(x_t, t, t).

    Returns the off-diagonal logits (B, L, K) and the diagonal KL(D_teacher(x_t, t) || delta(x_t, t, t)) (B, L)."""
    k = student.config.vocab_size
    x_t = one_hot_path(tokens, gamma_from_alpha(t, k), k, generator)
    with torch.no_grad():
        teacher_probs = torch.softmax(teacher(x_t, t), dim=-1)
    logits = student(torch.cat([x_s, x_t]), torch.cat([s, t]), torch.cat([t, t]))
    off_diagonal, diagonal = logits.chunk(2)
    return off_diagonal, kl_to_logits(teacher_probs, diagonal)


def fmlm_semigroup_loss(student: torch.nn.Module, teacher: torch.nn.Module, tokens: torch.Tensor,
                        generator: torch.Generator, boundary_prob: float = 0.1,
                        diagonal_weight: float = 1.0) -> LossOutput:
    """Semigroup self-consistency: delta(x_s, s, t) should equal the two half jumps through u.

    delta_bar = sg[w * delta(x_s, s, u) + (1 - w) * delta(X_{s,u}(x_s), u, t)],
    w = (1 - g_t)(g_u - g_s) / ((1 - g_u)(g_t - g_s)); loss = KL(delta_bar || delta(x_s, s, t)) + diagonal."""
    k = student.config.vocab_size
    s, t = _flow_map_times(tokens.shape[0], boundary_prob, generator, tokens.device)
    u = (s + t) / 2
    g_s, g_u, g_t = (gamma_from_alpha(x, k).view(-1, 1, 1) for x in (s, u, t))
    x_s = one_hot_path(tokens, g_s.view(-1), k, generator)
    with torch.no_grad():
        delta_su = torch.softmax(student(x_s, s, u), dim=-1)
        x_u = flow_map_step(x_s, delta_su, g_s, g_u)
        delta_ut = torch.softmax(student(x_u, u, t), dim=-1)
        w = ((1 - g_t) * (g_u - g_s) / ((1 - g_u) * (g_t - g_s)).clamp_min(1e-8)).clamp(0, 1)
        target = w * delta_su + (1 - w) * delta_ut
    logits, diagonal = _student_with_diagonal(student, teacher, tokens, x_s, s, t, generator)
    consistency = kl_to_logits(target, logits)
    loss = _weighted(consistency, student, s) + diagonal_weight * diagonal.mean()
    return loss, {"consistency_kl": consistency.mean().detach(), "diagonal_kl": diagonal.mean().detach()}


FlowMap = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (x, s, t) -> delta (B, L, K)


def _residual_delta(teacher_probs: torch.Tensor, residual: torch.Tensor, g_s: torch.Tensor,
                    g_t: torch.Tensor) -> torch.Tensor:
    """The authors' first-stage denoiser delta_1 = D_T(x, s) + 1/2 (g_t - g_s)(1 - g_s) r(x, s, t).

    Put in X_{s,t}(x) = x + (g_t - g_s)/(1 - g_s) (delta_1 - x) it is their map
    X = x + Delta v_T(x, s) + 1/2 Delta^2 r, Delta = g_t - g_s, v_T = (D_T - x)/(1 - g_s): the teacher's Euler
    step plus a learned second-order term r (raw network outputs, no softmax; delta_1 may leave the simplex)."""
    return teacher_probs + 0.5 * (g_t - g_s) * (1 - g_s) * residual


def residual_flow_map(teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      residual: torch.nn.Module) -> FlowMap:
    """The frozen first-stage map delta_1(x, s, t) of FLM teacher and residual network (two calls), the target of
    `fmlm_two_network_loss`."""
    k = residual.config.vocab_size

    @torch.no_grad()
    def delta_1(x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        g_s, g_t = gamma_from_alpha(s, k).view(-1, 1, 1), gamma_from_alpha(t, k).view(-1, 1, 1)
        return _residual_delta(torch.softmax(teacher(x, s), dim=-1), residual(x, s, t), g_s, g_t)
    return delta_1


RESIDUAL_BOUNDARY_PROB = 1 / 64  # the authors' (0, 1) share in their first stage's script
TWO_NETWORK_BOUNDARY_PROB = 1 / 128  # and in their second stage's


def fmlm_residual_loss(student: torch.nn.Module, teacher: torch.nn.Module, tokens: torch.Tensor,
                       generator: torch.Generator, boundary_prob: float = RESIDUAL_BOUNDARY_PROB,
                       diagonal_weight: float = 1.0) -> LossOutput:
    """The authors' first stage (their FLM_distill): the student is the residual r of
    delta_1 = D_T(x, s) + 1/2 (g_t - g_s)(1 - g_s) r(x, s, t) (`_residual_delta`), fitted to the semigroup target
    delta_bar = sg[w delta_1(x_s, s, u) + (1 - w) delta_1(X_{s,u}(x_s), u, t)] (the weights of
    `fmlm_semigroup_loss`; this delta_bar is exactly their x_hat = x_s + (1 - g_s) v_bar, every half jump carrying
    the teacher's velocity) by squared error summed over K: mean_k (delta_bar - delta_1)^2 * K.

    At t = s delta_1 is the teacher's D exactly, so there is no diagonal term (diagonal_weight is unused).
    Gap d >= 1e-6 as theirs. Logs consistency_mse."""
    del diagonal_weight
    k = student.config.vocab_size
    s, t = _flow_map_times(tokens.shape[0], boundary_prob, generator, tokens.device, min_gap=1e-6)
    u = (s + t) / 2
    g_s, g_u, g_t = (gamma_from_alpha(x, k).view(-1, 1, 1) for x in (s, u, t))
    x_s = one_hot_path(tokens, g_s.view(-1), k, generator)
    with torch.no_grad():
        teacher_s = torch.softmax(teacher(x_s, s), dim=-1)
        delta_su = _residual_delta(teacher_s, student(x_s, s, u), g_s, g_u)
        x_u = flow_map_step(x_s, delta_su, g_s, g_u)
        delta_ut = _residual_delta(torch.softmax(teacher(x_u, u), dim=-1), student(x_u, u, t), g_u, g_t)
        w = ((1 - g_t) * (g_u - g_s) / ((1 - g_u) * (g_t - g_s)).clamp_min(1e-12)).clamp(0, 1)
        target = w * delta_su + (1 - w) * delta_ut
    prediction = _residual_delta(teacher_s, student(x_s, s, t), g_s, g_t)
    mse = (target - prediction).square().mean(-1) * k  # (B, L)
    return _weighted(mse, student, s), {"consistency_mse": mse.mean().detach()}


def fmlm_two_network_loss(student: torch.nn.Module, first_stage: FlowMap, tokens: torch.Tensor,
                          generator: torch.Generator, boundary_prob: float = TWO_NETWORK_BOUNDARY_PROB,
                          diagonal_weight: float = 1.0) -> LossOutput:
    """The authors' second stage (their FLM_distill_double): one softmax flow map delta(x, s, t) regressed onto the
    frozen first-stage map (`residual_flow_map`) by squared error of the maps summed over K:
    mean_k (X^1_{s,t}(x_s) - X_{s,t}(x_s))^2 * K = mean_k (c (delta_1 - delta))^2 * K, c = (g_t - g_s)/(1 - g_s).

    Targets come only from frozen networks (no self-distillation, no diagonal term: diagonal_weight is unused);
    gap d >= 1e-5 as theirs; a learned loss weighting, if the student has one, applies as in the other losses
    (theirs builds one and leaves it unused). Logs map_mse."""
    del diagonal_weight
    k = student.config.vocab_size
    s, t = _flow_map_times(tokens.shape[0], boundary_prob, generator, tokens.device, min_gap=1e-5)
    g_s, g_t = gamma_from_alpha(s, k).view(-1, 1, 1), gamma_from_alpha(t, k).view(-1, 1, 1)
    x_s = one_hot_path(tokens, g_s.view(-1), k, generator)
    target = first_stage(x_s, s, t)
    c = (g_t - g_s) / (1 - g_s).clamp_min(1e-6)
    mse = (c * (target - torch.softmax(student(x_s, s, t), dim=-1))).square().mean(-1) * k  # (B, L)
    return _weighted(mse, student, s), {"map_mse": mse.mean().detach()}


def simplex_projection(target: torch.Tensor) -> torch.Tensor:
    """max(target, 0) renormalised over the last dim: a signed vector that sums to 1 as the nearest
    distribution that keeps its positive entries' proportions (the identity on the simplex)."""
    positive = target.clamp_min(0)
    return positive / positive.sum(-1, keepdim=True)


def fmlm_lagrangian_loss(student: torch.nn.Module, teacher: torch.nn.Module, tokens: torch.Tensor,
                         generator: torch.Generator, boundary_prob: float = 0.1,
                         diagonal_weight: float = 1.0) -> LossOutput:
    """Lagrangian self-distillation: d/dg_t X_{s,t}(x) must equal the teacher velocity at X_{s,t}(x).

    With X = x + c (delta - x), c = (g_t - g_s)/(1 - g_s), this is delta = D(X, t) - c (1 - g_t) d delta/d g_t,
    so delta_bar = sg[D_teacher(X_{s,t}(x_s), t) - c (1 - g_t) (d delta / d t) / (d g / d t)], the time
    derivative taken by forward-mode AD (torch.func.jvp). delta_bar sums to 1 but can leave the simplex (a
    negative entry wherever the correction outweighs the teacher), and cross-entropy against a signed target
    is unbounded below; so the loss is KL(P(delta_bar) || delta) with P = `simplex_projection`, >= 0, and
    its fixed point is unchanged (where delta satisfies the condition, delta_bar = delta is on the simplex).
    Logs: the KL, and negative_target_share, the share of positions whose delta_bar had a negative entry."""
    k = student.config.vocab_size
    s, t = _flow_map_times(tokens.shape[0], boundary_prob, generator, tokens.device)
    g_s, g_t = gamma_from_alpha(s, k).view(-1, 1, 1), gamma_from_alpha(t, k).view(-1, 1, 1)
    x_s = one_hot_path(tokens, g_s.view(-1), k, generator)
    with torch.no_grad():
        ones = torch.ones_like(t)
        delta, d_delta_dt = torch.func.jvp(lambda tau: torch.softmax(student(x_s, s, tau), dim=-1), (t,), (ones,))
        _, dg_dt = torch.func.jvp(lambda tau: gamma_from_alpha(tau, k), (t,), (ones,))
        x_t = flow_map_step(x_s, delta, g_s, g_t)
        teacher_probs = torch.softmax(teacher(x_t, t), dim=-1)
        c = (g_t - g_s) / (1 - g_s).clamp_min(1e-6)
        target = teacher_probs - c * (1 - g_t) * d_delta_dt / dg_dt.clamp_min(1e-6).view(-1, 1, 1)
        negative = (target < 0).any(-1).float().mean()
    logits, diagonal = _student_with_diagonal(student, teacher, tokens, x_s, s, t, generator)
    consistency = kl_to_logits(simplex_projection(target), logits)
    loss = _weighted(consistency, student, s) + diagonal_weight * diagonal.mean()
    return loss, {"consistency_kl": consistency.mean().detach(), "diagonal_kl": diagonal.mean().detach(),
                  "negative_target_share": negative}


def mdlm_loss(network: torch.nn.Module, tokens: torch.Tensor, generator: torch.Generator,
              mask_id: int, t_min: float = 1e-3) -> LossOutput:
    """Continuous-time MDLM ELBO with alpha_t = 1 - t and the SUBS parameterisation.

    NLL <= E_t[ (1/t) * sum_{masked i} -log p(x_i | x_t) ] / L: the mask logit is removed and
    unmasked positions are copied, so only masked positions cost anything."""
    t = t_min + (1 - t_min) * stratified_uniform(tokens.shape[0], generator, tokens.device)
    x_t, masked = mask_tokens(tokens, t, mask_id, generator)
    logits = subs_logits(network(x_t, t), mask_id)
    nll = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, L)
    bound = (nll * masked / t.view(-1, 1)).mean()
    return bound, {"nll": bound.detach()}


def ar_loss(network: torch.nn.Module, tokens: torch.Tensor, generator: torch.Generator) -> LossOutput:
    """Next-token cross-entropy: logits[:, i] predicts tokens[:, i + 1]."""
    del generator  # no noise: the AR objective is deterministic given the batch
    logits = network(tokens[:, :-1])
    nll = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])
    return nll, {"nll": nll.detach()}


FLOW_MAP_OBJECTIVES = {"fmlm-semigroup": fmlm_semigroup_loss, "fmlm-lagrangian": fmlm_lagrangian_loss,
                       "fmlm-residual": fmlm_residual_loss, "fmlm-two-network": fmlm_two_network_loss}
FIRST_STAGE_OBJECTIVE = "fmlm-residual"  # trains a residual over its teacher: not a flow map on its own
SECOND_STAGE_OBJECTIVE = "fmlm-two-network"  # distils a FIRST_STAGE_OBJECTIVE network with its teacher
AUTHORS_BOUNDARY_PROB = {FIRST_STAGE_OBJECTIVE: RESIDUAL_BOUNDARY_PROB,
                         SECOND_STAGE_OBJECTIVE: TWO_NETWORK_BOUNDARY_PROB}

"""The one table of model kinds: what "flm", "fmlm", "mdlm" and "ar" each imply.

Everything that depends on a checkpoint's kind asks this table (or the `Pipeline` built from it):
which network it has, how that network is called, which objective trains it, which sampler draws
from it, how its validation loss is scored and what that figure means. Nothing else in flm_core or
the app tests kind strings.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from flm_core import objectives
from flm_core.samplers import AutoregressiveSampler, FlowSampler, MaskedDiffusionSampler, Sampler
from flm_core.tokens import MASK_ID, SEP_ID


@dataclass(frozen=True)
class Kind:
    """One model kind.

    discrete: the sampler's state is token ids (MDLM, AR), not a point of R^{L x K}.
    causal: the network is the causal ARTransformer (no time input); else a DiT.
    two_times: the network is a flow map delta(x, s, t) (a DiT with a second time input).
    fixed_steps: the sampler makes seq_len - 1 calls whatever steps it is asked for (AR).
    self_conditioning: the network may read the previous estimate D_prev (ModelConfig.self_condition): the
        objective feeds it a no-grad first pass and the sampler the previous step's D (FLM; a flow map's
        estimate would need its own distillation target, MDLM's state is token ids).
    own_special_ids: the kind relies on flm_core's special token ids (MDLM's mask 1, AR's separator 0 as its
        first token), so it trains only on data with our tokenizers, not BERT's or GPT-2's (prepare-data --tokenizer).
    default_steps: the step count the app starts a lane at.
    objective_names: the ObjectiveConfig.name values that train this kind (the first is the default).
    val_nll_meaning: what `metrics.validation_nll` measures for this kind.
    """

    name: str
    label: str
    discrete: bool
    causal: bool
    two_times: bool
    fixed_steps: bool
    self_conditioning: bool
    own_special_ids: bool
    default_steps: int
    objective_names: tuple[str, ...]
    val_nll_meaning: str
    make_sampler: Callable[[torch.nn.Module], Sampler]
    validation_objective: objectives.Objective

    def call(self, network: torch.nn.Module, x: torch.Tensor, s: torch.Tensor,
             t: torch.Tensor | None = None) -> torch.Tensor:
        """Raw logits (B, L, K): AR network(ids); MDLM network(ids, s); FLM network(x, s); FMLM
        network(x, s, t), its diagonal delta(x, s, s) when t is None."""
        return network(x) if self.causal else network(x, s, t)

    def objective(self, name: str, teacher: torch.nn.Module | None, boundary_prob: float,
                  diagonal_weight: float) -> objectives.Objective:
        """The training loss (network, tokens, generator) -> (loss, logs) for objective `name`."""
        if name not in self.objective_names:
            raise ValueError(f"a {self.name} model trains with {' or '.join(self.objective_names)}, not {name!r}")
        if not self.two_times:
            return self.validation_objective
        loss = objectives.FLOW_MAP_OBJECTIVES[name]
        return lambda student, tokens, generator: loss(student, teacher, tokens, generator, boundary_prob,
                                                       diagonal_weight)


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("flm", "FLM", discrete=False, causal=False, two_times=False, fixed_steps=False, default_steps=32,
         self_conditioning=True, own_special_ids=False, objective_names=("flm",),
         val_nll_meaning="cross-entropy objective (nats/token, not a likelihood)",
         make_sampler=functools.partial(FlowSampler, low_rank=True), validation_objective=objectives.flm_loss),
    Kind("fmlm", "FMLM", discrete=False, causal=False, two_times=True, fixed_steps=False, default_steps=1,
         self_conditioning=False, own_special_ids=False, objective_names=tuple(objectives.FLOW_MAP_OBJECTIVES),
         val_nll_meaning="cross-entropy objective of delta(x, t, t) (nats/token, not a likelihood)",
         make_sampler=functools.partial(FlowSampler, low_rank=True), validation_objective=objectives.flm_loss),
    Kind("mdlm", "MDLM", discrete=True, causal=False, two_times=False, fixed_steps=False, default_steps=32,
         self_conditioning=False, own_special_ids=True, objective_names=("mdlm",),
         val_nll_meaning="ELBO bound (nats/token, >= NLL)",
         make_sampler=functools.partial(MaskedDiffusionSampler, mask_id=MASK_ID),
         validation_objective=functools.partial(objectives.mdlm_loss, mask_id=MASK_ID)),
    Kind("ar", "AR", discrete=True, causal=True, two_times=False, fixed_steps=True, default_steps=1,
         self_conditioning=False, own_special_ids=True, objective_names=("ar",), val_nll_meaning="exact NLL (nats/token)",
         make_sampler=functools.partial(AutoregressiveSampler, bos_id=SEP_ID),
         validation_objective=objectives.ar_loss),
)}


def kind_of(name: str) -> Kind:
    """The table entry of kind `name`; a one-line error naming the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}: expected one of {', '.join(KINDS)}") from None

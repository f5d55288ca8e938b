"""Compact per-step record of a sampling run, for the app and notebooks.

Per recorded step and position it keeps the prediction's argmax, its top-k ids and
probabilities, its entropy, the value at those ids and the argmax of the state the step read, a fixed
random projection (sketch) of the prediction to `SKETCH_DIM` dimensions, and which positions are still
pending after the step. Memory grows as steps x L x k, never as steps x L x K.

Held tokens (a prompt) are recorded as what the sampler used: at a held position the prediction is
the held token with probability 1, whatever the network guessed there.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

SKETCH_DIM = 8
MAX_RECORDED_STEPS = 256
TOP_K = 8  # ids and probabilities kept per position and step


@functools.lru_cache(maxsize=8)
def sketch_matrix(vocab_size: int, dim: int = SKETCH_DIM, device: str = "cpu") -> torch.Tensor:
    """Fixed Gaussian projection P (K, dim) / sqrt(dim), kept on `device`; vertex e_k maps to P[k]."""
    generator = torch.Generator().manual_seed(20260216)
    return (torch.randn(vocab_size, dim, generator=generator) / dim ** 0.5).to(device)


@dataclass
class Trajectory:
    """Recorded steps S (at most MAX_RECORDED_STEPS, evenly spaced, always the last)."""

    step: torch.Tensor  # (S,) index of the sampler step
    progress: torch.Tensor  # (S,) samplers.Step.progress: 0 at the start, 1 at a finished sample
    gamma: torch.Tensor  # (S,) noise level g of the state the step read (NaN where it has none: MDLM, AR)
    argmax: torch.Tensor  # (S, B, L) int64
    top_ids: torch.Tensor  # (S, B, L, k) int64
    top_probs: torch.Tensor  # (S, B, L, k) float32
    entropy: torch.Tensor  # (S, B, L) nats
    state_at_top: torch.Tensor  # (S, B, L, k) the read state's coordinate at top_ids (dense states, else NaN)
    state_argmax: torch.Tensor  # (S, B, L) argmax of the dense state the step read (-1 for discrete states)
    prediction_sketch: torch.Tensor  # (S, B, L, SKETCH_DIM) probabilities @ P
    pending: torch.Tensor  # (S, B, L) bool: position still masked / not yet generated after the step
    final_tokens: torch.Tensor = field(default=None)  # (B, L)

    def to_dict(self) -> dict:
        """Plain lists, for JSON export."""
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}


class Recorder:
    """Collects one record per chosen step; a record costs a top-k, two K-wide reductions (entropy, state
    argmax) and one small matmul (the sketch), and stays on the sampler's device until `finish` (no host
    round-trip inside the loop).

    Samplers that predict only some positions per step (AR) update those positions of a running
    row; the others keep their last values."""

    def __init__(self, total_steps: int, batch: int, seq_len: int, vocab_size: int, top_k: int = TOP_K):
        stride = max(1, -(-total_steps // MAX_RECORDED_STEPS))
        self.keep = set(range(0, total_steps, stride)) | {total_steps - 1}
        self.top_k = min(top_k, vocab_size)
        self.vocab_size = vocab_size
        self.shape = (batch, seq_len)
        self.current: dict[str, torch.Tensor] = {}
        self.rows: list[dict[str, torch.Tensor]] = []

    def _blank(self, device: torch.device) -> dict[str, torch.Tensor]:
        k, nan, shape = self.top_k, float("nan"), self.shape
        return dict(argmax=torch.full(shape, -1, dtype=torch.long, device=device),
                    top_ids=torch.full((*shape, k), -1, dtype=torch.long, device=device),
                    top_probs=torch.zeros(*shape, k, device=device),
                    entropy=torch.full(shape, nan, device=device),
                    state_at_top=torch.full((*shape, k), nan, device=device),
                    state_argmax=torch.full(shape, -1, dtype=torch.long, device=device),
                    prediction_sketch=torch.full((*shape, SKETCH_DIM), nan, device=device))

    def needs(self, step: int, partial: bool) -> bool:
        """Whether `update` must run at this step (always for per-position samplers)."""
        return partial or step in self.keep

    @torch.no_grad()
    def update(self, step: int, out, state: torch.Tensor | None, pending: torch.Tensor, held=None) -> None:
        """out: the sampler's Step (logits, probs (B, L', K) at positions first..); state: the dense state
        (B, L, K) the step read, or None; pending (B, L): after the step; held: the run's `Held` or None."""
        probs, logits = out.probs, out.logits.float()
        if not self.current:
            self.current = self._blank(probs.device)
        span = slice(out.first, out.first + probs.shape[1])
        top_probs, top_ids = probs.topk(self.top_k, dim=-1)
        # H = log Z - sum_k p_k l_k with log Z = l_top - log p_top (softmax); nansum drops 0 * (-inf) terms.
        log_z = logits.gather(-1, top_ids[..., :1]).squeeze(-1) - top_probs[..., 0].float().log()
        projection = sketch_matrix(self.vocab_size, device=str(probs.device))
        fresh = dict(argmax=top_ids[..., 0], top_ids=top_ids, top_probs=top_probs.float(),
                     entropy=(log_z - torch.nansum(probs.float() * logits, dim=-1)).clamp_min(0.0),
                     prediction_sketch=probs.float() @ projection)
        if state is not None:
            fresh["state_at_top"] = state.gather(-1, top_ids).float()
            fresh["state_argmax"] = state.max(-1).indices
        for name, value in fresh.items():
            self.current[name][:, span] = value
        if held is not None:
            self._hold(held, projection, state, pending)
        if step in self.keep:
            row = {name: value.clone() for name, value in self.current.items()}
            row.update(step=torch.tensor(step), progress=torch.tensor(out.progress), gamma=torch.tensor(out.gamma),
                       pending=pending.clone())
            self.rows.append(row)

    def _hold(self, held, projection: torch.Tensor, state: torch.Tensor | None, pending: torch.Tensor) -> None:
        """Held positions the sampler has written (all of them, except those an AR has not reached yet)
        predict their held token with probability 1: entropy 0, sketch P[id], and the state read at that id."""
        rec = self.current
        written = ~pending[:, held.positions]  # (B, P)
        ids = held.ids.expand_as(written)

        def put(name: str, value: torch.Tensor) -> None:
            old = rec[name][:, held.positions]
            mask = written.view(*written.shape, *([1] * (old.dim() - 2)))
            rec[name][:, held.positions] = torch.where(mask, value.to(old.dtype).expand_as(old), old)

        top_ids = rec["top_ids"][:, held.positions].clone()
        top_ids[..., 0] = ids
        put("argmax", ids)
        put("top_ids", top_ids)
        put("top_probs", torch.nn.functional.one_hot(torch.zeros_like(ids), self.top_k).float())
        put("entropy", torch.zeros_like(ids, dtype=torch.float32))
        put("prediction_sketch", projection[ids])
        if state is not None:
            put("state_at_top", state[:, held.positions].gather(-1, top_ids).float())

    def finish(self, final_tokens: torch.Tensor) -> Trajectory:
        stacked = {k: torch.stack([row[k] for row in self.rows]).cpu() for k in self.rows[0]}
        return Trajectory(**stacked, final_tokens=final_tokens.cpu())

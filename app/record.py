"""A run's record (flm_core.trajectory.Trajectory) as numpy arrays, read step by step for the views.

The library records the truth: the state after each step and the prompt hold (`pending`), with held
positions recorded as their token, certain. These functions only reshape it."""
from __future__ import annotations

import numpy as np

PLAY_FRAMES = 32  # the Trajectory page's Play shows at most this many recorded steps, whatever the run's length


def to_numpy(trajectory) -> dict[str, np.ndarray]:
    """Trajectory dataclass -> dict of numpy arrays (same field names)."""
    return {name: getattr(trajectory, name).detach().cpu().numpy()
            for name in trajectory.__dataclass_fields__ if getattr(trajectory, name) is not None}


def argmax_changes(argmax: np.ndarray) -> np.ndarray:
    """(S, L) -> (S, L) bool: the argmax differs from the previous recorded step (first row False)."""
    argmax = np.asarray(argmax)
    changed = np.zeros(argmax.shape, dtype=bool)
    changed[1:] = (argmax[1:] != argmax[:-1]) & (argmax[1:] >= 0) & (argmax[:-1] >= 0)
    return changed


def not_final_share(argmax: np.ndarray, final: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """Share of positions whose argmax is not yet the final token, per step: (S, B, L), (B, L) -> (S,),
    over the `free` positions (L,) bool only when given (a prompt's positions are not the model's to write).

    Positions not predicted yet (AR: argmax -1) count as not final."""
    wrong = np.asarray(argmax) != np.asarray(final)[None]
    if free is not None:
        wrong = wrong[..., np.asarray(free, bool)]
    return wrong.reshape(wrong.shape[0], -1).mean(axis=1)


def pending_share(pending: np.ndarray) -> np.ndarray:
    """Share of masked / not-yet-generated positions per step: (S, B, L) -> (S,)."""
    pending = np.asarray(pending)
    return pending.reshape(pending.shape[0], -1).mean(axis=1)


def step_view(arrays: dict[str, np.ndarray], sample: int, index: int, discrete: bool) -> dict[str, np.ndarray]:
    """What the sequence looks like after one recorded step, for one sample.

    Flow models: the prediction's argmax and its probability. Discrete models (MDLM, AR): the state
    itself, which is the final token wherever the position is no longer pending (unmasked tokens are
    kept), the mask elsewhere. Returns ids (L,), confidence (L,), pending (L,) bool, changed (L,) bool."""
    argmax = arrays["argmax"][:, sample]
    pending = arrays["pending"][index, sample].astype(bool)
    conf = np.nan_to_num(arrays["top_probs"][index, sample, :, 0].astype(float), nan=0.0)
    final = arrays["final_tokens"][sample]
    if discrete:
        ids = np.where(pending, -1, final)
        prev = np.where(arrays["pending"][index - 1, sample], -1, final) if index > 0 else np.full_like(ids, -1)
        changed = ids != prev
        conf = np.where(pending, 0.0, 1.0)
    else:
        ids = argmax[index]
        changed = argmax_changes(argmax)[index]
    return {"ids": ids, "confidence": conf, "pending": pending, "changed": changed}


def blank_view(length: int) -> dict[str, np.ndarray]:
    """The sequence before the first network call, as step_view returns it: every position pending (noise for a
    flow, masks for MDLM, nothing yet for AR)."""
    return {"ids": np.full(length, -1), "confidence": np.zeros(length), "pending": np.ones(length, bool),
            "changed": np.zeros(length, bool)}


def frame_indices(num_steps: int, max_frames: int) -> list[int]:
    """Evenly spaced recorded-step indices, always the first and the last."""
    if num_steps <= max_frames:
        return list(range(num_steps))
    picks = np.unique(np.round(np.linspace(0, num_steps - 1, max_frames)).astype(int))
    return picks.tolist()


def next_play_frame(index: int, num_steps: int, max_frames: int = PLAY_FRAMES) -> int:
    """The recorded step Play shows after `index`: the next of frame_indices(num_steps, max_frames), so a run
    of any length plays in at most max_frames frames; the last step once there is no later frame."""
    later = [i for i in frame_indices(num_steps, max_frames) if i > index]
    return later[0] if later else num_steps - 1

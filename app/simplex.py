"""One position's path on the simplex: its mass on {final token, runner-up, rest} per recorded step."""
from __future__ import annotations

import numpy as np


def ternary_path(top_ids: np.ndarray, top_probs: np.ndarray, final_id: int) -> dict[str, np.ndarray]:
    """Mass on {final token, runner-up, rest} along the path of one position.

    top_ids, top_probs: (S, k). The runner-up is the most probable token other than the final one.
    When the final token is outside the top-k at a step its mass is unknown but below the k-th
    probability: it is reported as that bound and flagged in `bound`. Steps where the position
    has no prediction yet (AR: ids -1) are flagged in `valid` = False.
    Returns final, runner, rest (S,), bound (S,) bool, valid (S,) bool.
    """
    ids, probs = np.asarray(top_ids), np.asarray(top_probs, dtype=np.float64)
    valid = (ids >= 0).all(axis=-1) & np.isfinite(probs).all(axis=-1) & (probs.sum(axis=-1) > 0)
    is_final = ids == final_id
    inside = is_final.any(axis=-1)
    final_mass = np.where(inside, (probs * is_final).sum(axis=-1), probs[:, -1])
    others = np.where(is_final, -np.inf, probs)
    runner = others.max(axis=-1)
    runner = np.where(np.isfinite(runner), runner, 0.0)
    rest = np.clip(1.0 - final_mass - runner, 0.0, 1.0)
    nan = np.where(valid, 1.0, np.nan)
    return {"final": final_mass * nan, "runner": runner * nan, "rest": rest * nan,
            "bound": ~inside & valid, "valid": valid}


def state_ternary(top_ids: np.ndarray, state_at_top: np.ndarray, final_id: int) -> dict[str, np.ndarray]:
    """Softmax-free position of the dense noisy state among the recorded candidates.

    state_at_top (S, k) holds the state's own coordinates x_j at the prediction's top-k ids. Each
    coordinate is shifted by the smallest of the k (so all are >= 0) and normalised to sum 1; the
    ternary groups are {final token, largest other candidate, remaining candidates}. Defined only at
    steps where the final token is among the recorded ids (`valid`), NaN elsewhere. Discrete states
    (MDLM, AR) have NaN coordinates: everything is invalid.
    """
    ids, x = np.asarray(top_ids), np.asarray(state_at_top, dtype=np.float64)
    is_final = ids == final_id
    valid = is_final.any(axis=-1) & np.isfinite(x).all(axis=-1)
    finite = np.isfinite(x)
    low = np.where(finite, x, np.inf).min(axis=-1, keepdims=True) if x.size else np.zeros(x.shape[:-1] + (1,))
    shifted = np.where(finite & np.isfinite(low), x - np.where(np.isfinite(low), low, 0.0), 0.0)
    total = shifted.sum(axis=-1)
    valid &= total > 0
    total = np.where(total > 0, total, 1.0)
    final = (shifted * is_final).sum(axis=-1) / total
    runner = np.where(is_final, -np.inf, shifted).max(axis=-1) / total
    runner = np.where(np.isfinite(runner), runner, 0.0)
    rest = np.clip(1.0 - final - runner, 0.0, 1.0)
    nan = np.where(valid, 1.0, np.nan)
    return {"final": final * nan, "runner": runner * nan, "rest": rest * nan, "valid": valid}

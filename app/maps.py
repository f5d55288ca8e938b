"""2-D maps of a run's prediction sketches (flm_core.trajectory's p·P) and their token vertices."""
from __future__ import annotations

import numpy as np

from app.record import frame_indices


def pca_2d(points: np.ndarray, anchors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Project points (N, D) (and anchors (M, D)) on the top-2 principal axes of both together.

    NaN rows stay NaN. Uses numpy SVD; deterministic sign (largest loading positive)."""
    points = np.asarray(points, dtype=np.float64)
    stack = points if anchors is None else np.concatenate([points, np.asarray(anchors, np.float64)])
    ok = np.isfinite(stack).all(axis=1)
    if ok.sum() < 2:
        basis = np.eye(stack.shape[1])[:, :2]
        mean = np.zeros(stack.shape[1])
    else:
        mean = stack[ok].mean(axis=0)
        _, _, vt = np.linalg.svd(stack[ok] - mean, full_matrices=False)
        basis = vt[:2].T
        if basis.shape[1] < 2:
            basis = np.pad(basis, ((0, 0), (0, 2 - basis.shape[1])))
        signs = np.sign(basis[np.abs(basis).argmax(axis=0), range(basis.shape[1])])
        basis = basis * np.where(signs == 0, 1, signs)
    proj = (stack - mean) @ basis
    proj[~ok] = np.nan
    if anchors is None:
        return proj, None
    return proj[: len(points)], proj[len(points):]


def umap_2d(points: np.ndarray, anchors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Like pca_2d but with umap-learn (optional dependency; ImportError when absent)."""
    import umap  # noqa: PLC0415 - optional, slow import

    points, anchors = np.asarray(points, np.float64), np.asarray(anchors, np.float64)
    stack = np.concatenate([points, anchors])
    ok = np.isfinite(stack).all(axis=1)
    out = np.full((len(stack), 2), np.nan)
    reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=15, min_dist=0.3, n_jobs=1)
    out[ok] = reducer.fit_transform(stack[ok])
    return out[: len(points)], out[len(points):]


def sketch_map(prediction_sketch: np.ndarray, final_tokens: np.ndarray, sketch_matrix: np.ndarray,
               method: str = "pca", max_umap_points: int = 4000) -> dict[str, np.ndarray]:
    """2-D map of one sample's prediction sketches over the steps and its token vertices.

    prediction_sketch (S, L, D), final_tokens (L,), sketch_matrix P (K, D): vertex e_k -> P[k].
    Returns points (S, L, 2), vertices (L, 2) and `embedded` (S,) bool: the steps placed on the map
    (all for PCA; for UMAP, which is slow, at most max_umap_points points from evenly spaced steps)."""
    s, length, d = prediction_sketch.shape
    vertices = np.asarray(sketch_matrix)[np.asarray(final_tokens)]
    sketch = np.asarray(prediction_sketch, dtype=np.float64)
    embedded = np.ones(s, dtype=bool)
    if method == "umap":
        steps = np.asarray(frame_indices(s, max(2, max_umap_points // max(length, 1))))
        embedded[:] = False
        embedded[steps] = True
        pts_sub, verts = umap_2d(sketch[steps].reshape(-1, d), vertices)
        pts = np.full((s, length, 2), np.nan)
        pts[steps] = pts_sub.reshape(len(steps), length, 2)
    else:
        pts, verts = pca_2d(sketch.reshape(s * length, d), vertices)
        pts = pts.reshape(s, length, 2)
    return {"points": pts, "vertices": verts, "embedded": embedded}

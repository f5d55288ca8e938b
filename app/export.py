"""What a run exports: its JSON record and the frames of the slide GIF (drawn by render.gif_frames)."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from app.record import frame_indices, step_view
from flm_core.checkpoint import json_safe
from app.tokens_view import joined_pieces


def export_run(meta: dict, generation) -> str:
    """JSON text of one run: metadata, texts, token ids and Trajectory.to_dict() (NaN -> null)."""
    payload = dict(meta)
    payload.update(kind=generation.kind, steps=generation.steps, nfe=generation.nfe,
                   seconds=generation.seconds, device=generation.device, texts=list(generation.texts),
                   token_ids=generation.tokens.tolist(),
                   trajectory=generation.trajectory.to_dict() if generation.trajectory is not None else None)
    return json.dumps(json_safe(payload), allow_nan=False)


def denoising_frames(arrays: dict[str, np.ndarray], sample: int, tokens: Sequence[str], discrete: bool,
                     label: str, steps: int, nfe: int, max_frames: int = 40) -> list[dict]:
    """Frames for the slide GIF: the sequence before the first network call (noise / masks: every position a grey
    ░), at evenly spaced recorded steps, then the final text; so a one-step run shows nothing, then everything.

    Each frame is {"title", "pieces": [(text, confidence, changed, pending)]} (see render.gif_frames)."""
    length = arrays["final_tokens"].shape[-1]
    start = "masked" if discrete else "noise"
    frames = [{"title": f"{label} · before the first network call: {start}",
               "pieces": [("", 0.0, False, True)] * length}]
    for idx in frame_indices(len(arrays["step"]), max_frames):
        view = step_view(arrays, sample, idx, discrete)
        title = f"{label} · after step {int(arrays['step'][idx]) + 1}/{steps}"
        texts = joined_pieces([tokens[int(i)] if i >= 0 and not p else ""
                               for i, p in zip(view["ids"], view["pending"])])
        frames.append({"title": title, "pieces": [
            (text, float(c), bool(ch), bool(p))
            for text, c, ch, p in zip(texts, view["confidence"], view["changed"], view["pending"])]})
    final = joined_pieces([tokens[int(i)] for i in arrays["final_tokens"][sample]])
    frames.append({"title": f"{label} · final text ({nfe} network call{'s' if nfe != 1 else ''})",
                   "pieces": [(text, 1.0, False, False) for text in final]})
    return frames

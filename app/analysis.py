"""Pure data helpers for the app: checkpoint catalog, trajectory summaries, projections.

Nothing here imports Streamlit, so every function is testable as plain Python. The model math
(schedules, sampling, recording) lives in flm_core; these functions only reshape what a
`Generation` / `Trajectory` recorded into arrays the charts draw.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from flm_core.config import ConfigError, RunConfig

KIND_ORDER = ("fmlm", "flm", "mdlm", "ar")
KIND_LABEL = {"flm": "FLM", "fmlm": "FMLM", "mdlm": "MDLM", "ar": "AR"}
KIND_COLOR = {"flm": "#1f77b4", "fmlm": "#d62728", "mdlm": "#2ca02c", "ar": "#9467bd"}
STEP_CHOICES = tuple(2 ** i for i in range(11))  # 1 .. 1024, log scale
SPECIAL_SHOWN = {0: "⏎", 1: "░", 2: "∅"}  # separator, mask, pad (flm_core.tokens ids 0, 1, 2)
ENV_CHECKPOINTS = "FLM_EXPLORER_CHECKPOINTS"
ENV_BENCHMARKS = "FLM_EXPLORER_BENCHMARKS"
ENV_ALLOW = "FLM_EXPLORER_ALLOW_PATHS"


# --------------------------------------------------------------------------------------------
# Checkpoint catalog
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint directory as listed by the picker (config.json parsed by flm_core)."""

    name: str
    path: str
    kind: str | None
    vocab_size: int | None
    seq_len: int | None
    mtime: float
    error: str | None = None

    @property
    def label(self) -> str:
        if self.error:
            return f"{self.name} (unreadable)"
        return f"{KIND_LABEL.get(self.kind, self.kind)} · {self.name}"


def checkpoint_roots(env: dict[str, str] | None = None, repo_root: Path | None = None) -> list[Path]:
    """Folders scanned for checkpoints: $FLM_EXPLORER_CHECKPOINTS (os.pathsep-separated) or ./checkpoints."""
    env = os.environ if env is None else env
    repo_root = repo_root or Path(__file__).resolve().parents[1]
    return _paths_from_env(env, ENV_CHECKPOINTS) or [repo_root / "checkpoints"]


def _paths_from_env(env: dict[str, str], name: str) -> list[Path]:
    return [Path(p).expanduser() for p in env.get(name, "").split(os.pathsep) if p.strip()]


def describe_checkpoint(path: str | Path) -> CheckpointInfo:
    """Read one directory's config.json through flm_core (never raises; errors go in `.error`)."""
    path = Path(path)
    weights = path / "model.safetensors"
    mtime = max((f.stat().st_mtime for f in (path / "config.json", weights) if f.exists()), default=0.0)
    try:
        config = RunConfig.load(path / "config.json")
    except (ConfigError, OSError) as err:
        return CheckpointInfo(path.name, str(path), None, None, None, mtime, one_line(err))
    missing = [f for f in ("model.safetensors", "tokenizer.json") if not (path / f).is_file()]
    error = f"{path}: missing {', '.join(missing)}" if missing else None
    return CheckpointInfo(path.name, str(path), config.kind, config.model.vocab_size, config.model.seq_len,
                          mtime, error)


def scan_checkpoints(roots: Iterable[Path], extra: Iterable[str] = ()) -> list[CheckpointInfo]:
    """Every <root>/*/config.json plus user-added directories, sorted by kind then name."""
    seen: dict[str, CheckpointInfo] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for config in sorted(root.glob("*/config.json")):
            info = describe_checkpoint(config.parent)
            seen.setdefault(str(Path(info.path).resolve()), info)
    for path in extra:
        info = describe_checkpoint(path)
        seen.setdefault(str(Path(info.path).resolve()), info)
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    return sorted(seen.values(), key=lambda c: (c.error is not None, order.get(c.kind, 9), c.name))


def allowed_roots(env: dict[str, str] | None = None, repo_root: Path | None = None) -> list[Path]:
    """Folders a user-typed checkpoint path may lie in: the scanned roots, the repo's runs/, and
    $FLM_EXPLORER_ALLOW_PATHS (os.pathsep-separated)."""
    env = os.environ if env is None else env
    repo_root = repo_root or Path(__file__).resolve().parents[1]
    return [*checkpoint_roots(env, repo_root), repo_root / "runs", *_paths_from_env(env, ENV_ALLOW)]


def validate_user_path(text: str, allowed: Iterable[Path]) -> Path:
    """A user-typed checkpoint path -> resolved directory inside an allowed folder (links resolved first,
    so none leads outside), or ValueError with a one-line reason."""
    text = (text or "").strip()
    if not text:
        raise ValueError("enter the path of a checkpoint directory")
    path = Path(text).expanduser().resolve()
    roots = [Path(root).expanduser().resolve() for root in allowed]

    def inside(p: Path) -> bool:
        return any(p.resolve().is_relative_to(root) for root in roots)

    if not inside(path):
        raise ValueError(f"{text}: outside the allowed folders ({', '.join(str(r) for r in roots)}); add its "
                         f"parent folder to {ENV_ALLOW} to open it")
    if not path.exists():
        raise ValueError(f"{text}: no such directory")
    if not path.is_dir():
        raise ValueError(f"{text}: not a directory (a checkpoint is a folder with config.json)")
    if not (path / "config.json").is_file():
        raise ValueError(f"{text}: not a checkpoint directory (no config.json)")
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if (path / name).exists() and not inside(path / name):
            raise ValueError(f"{text}: {name} links outside the allowed folders")
    return path


def one_line(err: BaseException | str) -> str:
    """First line of an error message (flm_core errors are one line already)."""
    text = str(err).strip()
    if not text and isinstance(err, BaseException):
        text = type(err).__name__
    return text.splitlines()[0] if text else "unknown error"


# --------------------------------------------------------------------------------------------
# Tokens and texts
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of the byte-level BPE alphabet (GPT-2's bytes_to_unicode, used by tokenizers' ByteLevel)."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(visible), 0
    for b in range(256):
        if b not in visible:
            visible.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(visible, chars)}


def token_strings(tokenizer, vocab_size: int) -> list[str]:
    """Printable string of every token id (byte-level pieces decoded one by one; specials as symbols).

    A token that is only part of a UTF-8 character decodes to U+FFFD on its own; it is shown by its
    bytes instead (e.g. "\\xe2\\x80"), so distinct tokens stay distinguishable in the views."""
    pieces = tokenizer.decode_batch([[i] for i in range(vocab_size)], skip_special_tokens=False)
    table = _byte_decoder()
    out = []
    for i, piece in enumerate(pieces):
        if i in SPECIAL_SHOWN:
            out.append(SPECIAL_SHOWN[i])
            continue
        if "\ufffd" in piece:
            raw = tokenizer.id_to_token(i) or ""
            if raw and all(c in table for c in raw):
                piece = bytes(table[c] for c in raw).decode("utf-8", errors="backslashreplace")
        out.append(piece)
    return out


ESCAPED_BYTE = re.compile(r"\\x([0-9a-f]{2})")


def _utf8_bytes(piece: str) -> bytes:
    """A token string of analysis.token_strings back to bytes ("\\xc3" stands for the byte 0xc3)."""
    out, last = bytearray(), 0
    for match in ESCAPED_BYTE.finditer(piece):
        out += piece[last:match.start()].encode() + bytes([int(match.group(1), 16)])
        last = match.end()
    return bytes(out + piece[last:].encode())


def joined_pieces(pieces: Sequence[str]) -> list[str]:
    """Running text of consecutive token strings: a character split over tokens (shown alone as
    "\\xc3", "\\xa8") is written whole, on the first of its tokens; the others become empty. Bytes that
    form no character are written as U+FFFD, as a text decoder does."""
    out = list(pieces)
    i = 0
    while i < len(out):
        if not ESCAPED_BYTE.search(out[i]):
            i += 1
            continue
        j = i + 1
        while j < len(out) and ESCAPED_BYTE.search(out[j]):
            j += 1
        text = b"".join(_utf8_bytes(p) for p in pieces[i:j]).decode("utf-8", errors="replace")
        out[i:j] = [text] + [""] * (j - i - 1)
        i = j
    return out


def token_diff(a: np.ndarray, b: np.ndarray, free: np.ndarray | None = None) -> dict[str, Any]:
    """Position-wise comparison of two token arrays (B, L): agreement share overall and per sample, counted
    over the `free` positions (L,) bool only when given (a prompt's positions agree by construction)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"token arrays differ in shape {a.shape} vs {b.shape}")
    same = a == b
    counted = same if free is None else same[..., np.asarray(free, bool)]
    return {"same": same, "agreement": float(counted.mean()) if counted.size else 1.0,
            "per_sample": counted.mean(axis=-1).tolist() if counted.size else []}


def speedups(lanes: Sequence[dict], reference: str = "fmlm") -> list[dict]:
    """Wall-time and NFE ratio of each lane over the reference lane (lanes: dicts with kind, seconds, nfe, name)."""
    ref = next((lane for lane in lanes if lane["kind"] == reference), None)
    if ref is None:
        return []
    out = []
    for lane in lanes:
        if lane is ref:
            continue
        out.append({"name": lane["name"], "kind": lane["kind"],
                    "time_ratio": lane["seconds"] / max(ref["seconds"], 1e-9),
                    "nfe_ratio": lane["nfe"] / max(ref["nfe"], 1)})
    return out


def estimate_seconds(runs: Iterable[dict], path: str, nfe: int, samples: int) -> float | None:
    """Seconds a run of `nfe` network calls on `samples` samples of checkpoint `path` should take, scaled
    from the latest earlier run of that checkpoint (runs: dicts with path, n and a Generation as gen);
    None without one. Per-sample cost falls with the batch on most hardware, so this errs on the long side
    for a batch larger than the earlier one."""
    last = next((r for r in reversed(list(runs)) if r.get("path") == path and r["gen"].nfe > 0), None)
    if last is None:
        return None
    return last["gen"].seconds / last["gen"].nfe / max(last["n"], 1) * nfe * samples


def times_phrase(ratio: float, up: str, down: str) -> str:
    """'3.2× faster' for ratio 3.2, '4.0× slower' for 0.25, '1,024× ...' from 10 on: a factor of at least 1
    and its direction."""
    factor, word = (ratio, up) if ratio >= 1 else (1 / max(ratio, 1e-12), down)
    return f"{factor:.1f}× {word}" if factor < 10 else f"{factor:,.0f}× {word}"


def steps_phrase(steps: int) -> str:
    return f"{steps} step{'s' if steps != 1 else ''}"


# --------------------------------------------------------------------------------------------
# Trajectory summaries (inputs are numpy arrays taken from flm_core.trajectory.Trajectory)
# --------------------------------------------------------------------------------------------
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


def pending_after_step(pending: np.ndarray) -> np.ndarray:
    """(S, B, L) positions still masked / not generated after each recorded step, from the record's
    pending flags of the state each step starts from: the next row's flags, and none after the last step.
    Exact when every step is recorded (up to 256 steps); above that the rows are evenly spaced and the
    view runs ahead by less than one spacing."""
    pending = np.asarray(pending, dtype=bool)
    return np.concatenate([pending[1:], np.zeros_like(pending[:1])])


def pending_share(pending: np.ndarray) -> np.ndarray:
    """Share of masked / not-yet-generated positions per step: (S, B, L) -> (S,)."""
    pending = np.asarray(pending)
    return pending.reshape(pending.shape[0], -1).mean(axis=1)


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


def frame_indices(num_steps: int, max_frames: int) -> list[int]:
    """Evenly spaced recorded-step indices, always the first and the last."""
    if num_steps <= max_frames:
        return list(range(num_steps))
    picks = np.unique(np.round(np.linspace(0, num_steps - 1, max_frames)).astype(int))
    return picks.tolist()


PLAY_FRAMES = 32  # the Trajectory page's Play shows at most this many recorded steps: any run plays in ~25 s


def next_play_frame(index: int, num_steps: int, max_frames: int = PLAY_FRAMES) -> int:
    """The recorded step Play shows after `index`: the next of frame_indices(num_steps, max_frames), so a run
    of any length plays in at most max_frames frames; the last step once there is no later frame."""
    later = [i for i in frame_indices(num_steps, max_frames) if i > index]
    return later[0] if later else num_steps - 1


# --------------------------------------------------------------------------------------------
# Benchmarks and exports
# --------------------------------------------------------------------------------------------
BENCH_FIELDS = ("model", "kind", "steps", "nfe", "seconds_per_sample", "gen_ppl", "entropy", "mauve",
                "memorization", "word_validity")


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def quality_points(rows: Sequence[dict]) -> list[dict]:
    """The benchmark rows that place a model on the quality-vs-speed chart: Gen PPL and time per sample."""
    return [r for r in rows if r.get("gen_ppl") and r.get("seconds_per_sample")]


def read_benchmarks(path: str | Path) -> tuple[list[dict], str | None]:
    """Rows of benchmarks.json, read defensively: (rows, message). Never raises.

    Accepts a list of rows, {"rows": [...]}/{"results": [...]}/{"benchmarks": [...]}, or a mapping
    name -> row. Numeric fields become floats or None; unknown fields are kept."""
    path = Path(path)
    if not path.is_file():
        return [], "no benchmark yet"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return [], f"{path}: unreadable ({one_line(err)})"
    if isinstance(raw, dict):
        for key in ("rows", "results", "benchmarks"):
            if isinstance(raw.get(key), list):
                raw = raw[key]
                break
        else:
            raw = [dict(row, model=row.get("model", name)) for name, row in raw.items() if isinstance(row, dict)]
    if not isinstance(raw, list):
        return [], f"{path}: expected a list of rows"
    rows = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        row = dict(item)
        row["model"] = str(item.get("model", item.get("checkpoint", "?")))
        row["kind"] = str(item.get("kind", "?")).lower()
        for name in BENCH_FIELDS[2:]:
            row[name] = _number(item.get(name))
        rows.append(row)
    return rows, (None if rows else "no benchmark yet")


def jsonable(value: Any) -> Any:
    """Nested lists / dicts with NaN and inf turned into None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def export_run(meta: dict, generation) -> str:
    """JSON text of one run: metadata, texts, token ids and Trajectory.to_dict() (NaN -> null)."""
    payload = dict(meta)
    payload.update(kind=generation.kind, steps=generation.steps, nfe=generation.nfe,
                   seconds=generation.seconds, device=generation.device, texts=list(generation.texts),
                   token_ids=generation.tokens.tolist(),
                   trajectory=generation.trajectory.to_dict() if generation.trajectory is not None else None)
    return json.dumps(jsonable(payload), allow_nan=False)


def numeric_keys(records: Sequence[dict]) -> list[str]:
    """Numeric metric names in metrics.jsonl records (step/split excluded), in first-seen order."""
    keys: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in ("step", "split") and isinstance(value, (int, float)) and not isinstance(value, bool):
                keys.setdefault(key, None)
    return list(keys)


LOSS_KEYS = ("nll", "consistency_kl", "diagonal_kl", "loss", "kl")


def show_held(arrays: dict[str, np.ndarray], held: np.ndarray) -> None:
    """A flow run with a prompt: the sampler held those positions (L,) bool to their tokens, so every view
    shows the held token there, certain, instead of the network's guess that the sampler overwrote.
    Rewrites copies of argmax, top_ids and top_probs (the arrays may share memory with the run's record)."""
    final = arrays["final_tokens"][:, held][None]  # (1, B, P)
    for name in ("argmax", "top_ids", "top_probs"):
        arrays[name] = arrays[name].copy()
    arrays["argmax"][:, :, held] = final
    arrays["top_ids"][:, :, held, 0] = final
    arrays["top_probs"][:, :, held] = 0.0
    arrays["top_probs"][:, :, held, 0] = 1.0


def step_view(arrays: dict[str, np.ndarray], sample: int, index: int, discrete: bool) -> dict[str, np.ndarray]:
    """What the sequence looks like at one recorded step, for one sample.

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


def denoising_frames(arrays: dict[str, np.ndarray], sample: int, tokens: Sequence[str], discrete: bool,
                     label: str, steps: int, nfe: int, max_frames: int = 40) -> list[dict]:
    """Frames for the slide GIF: the sequence at evenly spaced recorded steps, then the final text.

    Each frame is {"title", "pieces": [(text, confidence, changed, pending)]} (see render.gif_frames)."""
    frames = []
    for idx in frame_indices(len(arrays["step"]), max_frames):
        view = step_view(arrays, sample, idx, discrete)
        title = f"{label} · step {int(arrays['step'][idx]) + 1}/{steps} · t={float(arrays['t'][idx]):.2f}"
        texts = joined_pieces([tokens[int(i)] if i >= 0 and not p else ""
                               for i, p in zip(view["ids"], view["pending"])])
        frames.append({"title": title, "pieces": [
            (text, float(c), bool(ch), bool(p))
            for text, c, ch, p in zip(texts, view["confidence"], view["changed"], view["pending"])]})
    final = joined_pieces([tokens[int(i)] for i in arrays["final_tokens"][sample]])
    frames.append({"title": f"{label} · final text ({nfe} network call{'s' if nfe != 1 else ''})",
                   "pieces": [(text, 1.0, False, False) for text in final]})
    return frames

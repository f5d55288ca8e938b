"""The checkpoint catalogue: which folders are scanned, what each checkpoint is, and which user-typed paths
may be opened (only inside the allowed folders, links resolved first)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from flm_core.config import ConfigError, RunConfig
from flm_core.kinds import Kind, kind_of
from app.kind_style import kind_label, kind_rank
from flm_core.errors import one_line
from flm_core.checkpoint import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from flm_core.pipeline import why_not_a_sampler
from flm_core.toy import TOY_PREFIX, is_toy

ENV_CHECKPOINTS = "FLM_EXPLORER_CHECKPOINTS"
ENV_BENCHMARKS = "FLM_EXPLORER_BENCHMARKS"
ENV_ALLOW = "FLM_EXPLORER_ALLOW_PATHS"


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint directory as listed by the picker (config.json parsed by flm_core). source: its training
    data's source (config.data["source"]; "toy:story" for a toy-language model), None where unknown."""

    name: str
    path: str
    kind: str | None
    vocab_size: int | None
    seq_len: int | None
    mtime: float
    error: str | None = None
    source: str | None = None
    first_stage: bool = False  # readable, but a first-stage residual: not a sampler (its error says what to do)

    @property
    def toy(self) -> bool:
        """Trained on a synthetic toy language (flm_core.toy), not on a corpus."""
        return is_toy(self.source)

    @property
    def label(self) -> str:
        if self.error:
            return f"{self.name} ({'first stage, not a sampler' if self.first_stage else 'unreadable'})"
        toy = f" · toy language ({str(self.source).removeprefix(TOY_PREFIX)})" if self.toy else ""
        return f"{kind_label(self.kind)} · {self.name}{toy}"

    @property
    def spec(self) -> Kind:
        """Its kind's entry in flm_core.kinds (a readable checkpoint's config names a known kind)."""
        return kind_of(self.kind)


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
    weights = path / WEIGHTS_FILE
    mtime = max((f.stat().st_mtime for f in (path / CONFIG_FILE, weights) if f.exists()), default=0.0)
    try:
        config = RunConfig.load(path / CONFIG_FILE)
    except (ConfigError, OSError) as err:
        return CheckpointInfo(path.name, str(path), None, None, None, mtime, one_line(err))
    missing = [f for f in (WEIGHTS_FILE, TOKENIZER_FILE) if not (path / f).is_file()]
    refusal = why_not_a_sampler(path, config)
    error = f"{path}: missing {', '.join(missing)}" if missing else refusal
    return CheckpointInfo(path.name, str(path), config.kind, config.model.vocab_size, config.model.seq_len,
                          mtime, error, config.data.get("source"), first_stage=refusal is not None)


def authors_checkpoints() -> list[CheckpointInfo]:
    """The authors' released checkpoints complete in the Hugging Face cache, named "<name> (authors')"."""
    import json

    from flm_core.authors import AUTHORS
    from flm_core.download import authors_folder

    out = []
    for entry in AUTHORS:
        folder = authors_folder(entry)
        if folder is None:
            continue
        try:
            length = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("model", {}).get("length")
        except (OSError, ValueError, AttributeError):
            length = None
        out.append(CheckpointInfo(f"{entry.name} (authors')", str(folder), entry.kind, entry.vocab_size,
                                  length or entry.seq_len, (folder / WEIGHTS_FILE).stat().st_mtime,
                                  source="released"))  # as flm_core.released records it
    return out


def scan_checkpoints(roots: Iterable[Path], extra: Iterable[str] = (),
                     found: Iterable[CheckpointInfo] = ()) -> list[CheckpointInfo]:
    """Every <root>/*/config.json plus user-added directories and `found` ones, sorted by kind then name, toy-language
    models and then the authors' released ones after ours (the pickers' first choices stay the small corpus models,
    quick on a CPU)."""
    seen: dict[str, CheckpointInfo] = {str(Path(info.path).resolve()): info for info in found}
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
    return sorted(seen.values(), key=lambda c: (c.error is not None, c.toy, c.source == "released", kind_rank(c.kind),
                                                c.name))


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
    if not (path / CONFIG_FILE).is_file():
        raise ValueError(f"{text}: not a checkpoint directory (no config.json)")
    for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
        if (path / name).exists() and not inside(path / name):
            raise ValueError(f"{text}: {name} links outside the allowed folders")
    return path

"""Hub repos into the standard Hugging Face cache, verified: the authors' checkpoints and Gen PPL evaluators.

`fetch(repo_id, patterns)` resolves the repo's revision to one commit, lists its files at that commit,
and downloads the ones matching `patterns` one after another through `hf_hub_download` (an interrupted
transfer resumes from the byte it reached, with an HTTP Range request; finished files are kept). Every
file is then checked against the Hub's listing (sha256 for LFS files, the git blob sha1 otherwise); a
file that differs is deleted and refused. Files already in the cache are not downloaded again.

Every failure is a `DownloadError` whose one-line message says what failed, the command to run on a
connected machine, and where the folder goes here. The network is never tried while HF_HUB_OFFLINE is set.
"""
from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Callable

from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.hf_api import RepoFile
from tqdm.auto import tqdm

from flm_core.authors import AUTHORS, AuthorsCheckpoint, find
from flm_core.checkpoint import CheckpointError, atomic_write_text
from flm_core.errors import one_line

CHECKPOINT_FILES = ("config.json", "model.safetensors", "README.md")
EVALUATOR_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                   "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class DownloadError(CheckpointError):
    """A download that failed or was refused; the message is one line and says what to do."""


def cache_folder(repo_id: str) -> Path:
    """Where the Hugging Face cache keeps a model repo (HF_HUB_CACHE / models--owner--name)."""
    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")


def instructions(repo_id: str) -> str:
    """What to do without network here: the command for a connected machine and where its folder goes."""
    folder = repo_folder_name(repo_id=repo_id, repo_type="model")
    return (f"on a machine with internet run `python -m flm_core download {repo_id}`, then copy its "
            f"~/.cache/huggingface/hub/{folder} folder to {cache_folder(repo_id)}")


def cached(repo_id: str, patterns: tuple[str, ...] = CHECKPOINT_FILES) -> Path | None:
    """The repo's cached snapshot folder holding its config.json and every other file in `patterns` that
    the cache knows of, or None; never touches the network."""
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=list(patterns)))
    except Exception:  # noqa: BLE001 - anything missing or unreadable means not cached
        return None
    return folder if (folder / "config.json").is_file() else None


def fetch(repo_id: str, patterns: tuple[str, ...] = CHECKPOINT_FILES, progress: Progress | None = None,
          revision: str = "main") -> Path:
    """Download the repo's files that match `patterns` into the cache, verified; returns the snapshot folder."""
    if constants.HF_HUB_OFFLINE:
        raise DownloadError(f"{repo_id}: not downloaded: HF_HUB_OFFLINE is set; {instructions(repo_id)}")
    api = HfApi()
    try:
        commit = api.model_info(repo_id, revision=revision).sha
        listing = [f for f in api.list_repo_tree(repo_id, revision=commit, recursive=True) if isinstance(f, RepoFile)]
    except Exception as err:  # unreachable, refused, missing repo: one line
        answer = "refused the request" if isinstance(err, HfHubHTTPError) else "did not answer"
        raise DownloadError(f"{repo_id}: the Hub at {constants.ENDPOINT} {answer} ({_reason(err)}); "
                            f"{instructions(repo_id)}") from None
    files = [f for f in listing if any(fnmatch.fnmatch(f.path, p) for p in patterns)]
    if not any(f.path == "config.json" for f in files):
        raise DownloadError(f"{repo_id}@{commit[:8]}: no config.json in the repo (found "
                            f"{', '.join(f.path for f in listing) or 'nothing'}); is it the right repo id?")
    total, done = sum(f.size for f in files), [0]

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    for entry in files:
        try:
            path = hf_hub_download(repo_id, entry.path, revision=commit, tqdm_class=_relay(advance))
        except Exception as err:  # noqa: BLE001 - connection lost, refused, disk full: one line
            raise DownloadError(f"{repo_id}: downloading {entry.path} failed ({_reason(err)}); run the same "
                                f"command again to continue, or {instructions(repo_id)}") from None
        _verify(repo_id, entry, Path(path))
    if progress is not None:
        progress(total, total)
    atomic_write_text(cache_folder(repo_id) / "refs" / revision, commit)  # the snapshot is complete: name it
    return cache_folder(repo_id) / "snapshots" / commit


def fetch_authors(entry: AuthorsCheckpoint, progress: Progress | None = None) -> Path:
    """The checkpoint and its tokenizer's files (their repo's vocab, or GPT-2's BPE files)."""
    folder = fetch(entry.repo_id, CHECKPOINT_FILES, progress)
    if cached(entry.tokenizer_repo, entry.tokenizer_files) is None:
        fetch(entry.tokenizer_repo, ("config.json", *entry.tokenizer_files))
    return folder


def authors_folder(entry: AuthorsCheckpoint) -> Path | None:
    """The cached snapshot of an authors' checkpoint with its weights, or None."""
    folder = cached(entry.repo_id)
    return folder if folder is not None and (folder / "model.safetensors").is_file() else None


def hub_model(repo_id: str, patterns: tuple[str, ...] = EVALUATOR_FILES) -> Path:
    """A Hub model's folder: the cached snapshot if it holds config.json, else downloaded (when online)."""
    folder = cached(repo_id, patterns)
    if folder is not None:
        return folder
    show, close = _byte_bar(repo_id)
    try:
        return fetch(repo_id, patterns, progress=show)
    finally:
        close()


def download_all(references: list[str], progress_bars: bool = True) -> list[Path]:
    """`python -m flm_core download ID|all`: each checkpoint with a byte progress bar; their folders."""
    entries = list(AUTHORS) if [r.lower() for r in references] == ["all"] else [find(r) for r in references]
    folders = []
    for entry in entries:
        show, close = _byte_bar(entry.name, progress_bars)
        try:
            folders.append(fetch_authors(entry, show))
        finally:
            close()
    return folders


def _byte_bar(desc: str, enabled: bool = True) -> tuple[Progress, Callable[[], None]]:
    """A tqdm byte bar drawn from the first progress report on (a refused download draws none)."""
    bars: list[tqdm] = []

    def show(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not enabled))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    return show, lambda: [bar.close() for bar in bars]


def _relay(advance: Callable[[int], None]) -> type:
    """A silent tqdm class for hf_hub_download that passes every byte count on to `advance`."""

    class Relay(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            advance(int(kwargs.get("initial") or 0))

        def update(self, n: float | None = 1) -> None:
            advance(int(n or 0))

    return Relay


def _verify(repo_id: str, entry: RepoFile, path: Path) -> None:
    """sha256 of an LFS file, or the git blob sha1 of a plain one, against the Hub's listing; a mismatch
    deletes the cached file (its blob and its snapshot link) and raises."""
    lfs = getattr(entry, "lfs", None)
    expected = lfs["sha256"] if lfs else entry.blob_id
    digest = hashlib.sha256() if lfs else hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() == expected:
        return
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    raise DownloadError(f"{repo_id}: {entry.path} is corrupt ({'sha256' if lfs else 'git sha1'} "
                        f"{digest.hexdigest()[:12]}… where the Hub lists {expected[:12]}…); deleted it: run "
                        f"`python -m flm_core download {repo_id}` again")


def _reason(err: Exception) -> str:
    text = one_line(err)
    for marker in ("Max retries", "(Request ID"):
        text = text.split(marker)[0]
    return f"{type(err).__name__}: {text.strip()[:200]}"

"""Our checkpoint directories on the Hugging Face Hub, in the same layout, and repo ids as sources.

`push(directory, repo_id)` uploads config.json, model.safetensors, tokenizer.json, README.md (and
metrics.jsonl when present); `pull(repo_id)` returns the local snapshot folder, which `flm_core.load`
reads like any checkpoint directory. Offline first: the local Hugging Face cache is read before any
network call, and the network is never tried while HF_HUB_OFFLINE is set.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

from flm_core.authors import find, is_authors
from flm_core.checkpoint import (CARD_DATA_FILE, CARD_FILE, CONFIG_FILE, METRICS_FILE, TOKENIZER_FILE, WEIGHTS_FILE,
                                 CheckpointError)
from flm_core.errors import one_line

log = logging.getLogger(__name__)

HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, CARD_FILE, CARD_DATA_FILE, METRICS_FILE)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def push(directory: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
         commit_message: str | None = None, api: Any = None) -> str:
    """Upload one of our checkpoint directories to the model repo `repo_id` (created if missing).

    The directory must load with `flm_core.load` first. `api` defaults to `HfApi(token=token)` (tests pass
    a stand-in). Returns what `upload_folder` returns (the commit URL).
    """
    from flm_core.pipeline import load  # late import: pipeline imports this module
    from flm_core.released import is_released

    directory = Path(directory)
    if is_released(directory) or not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(f"{directory}: not one of our checkpoint directories (config.json with a \"kind\")")
    load(directory)  # one-line CheckpointError naming the file if it would not load
    files = [name for name in HUB_FILES if (directory / name).is_file()]
    api = api if api is not None else HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    result = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(directory), allow_patterns=files,
                               commit_message=commit_message or f"Upload {directory.name} ({', '.join(files)})")
    log.info("pushed %s to %s: %s", directory, repo_id, ", ".join(files))
    return str(result)


def pull(repo_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
         token: str | None = None, refresh: bool = False) -> Path:
    """Local snapshot folder of the Hub repo `repo_id`: the Hugging Face cache first; the Hub only when
    the cache lacks it (or refresh=True) and HF_HUB_OFFLINE is not set."""
    where = dict(repo_id=repo_id, revision=revision, cache_dir=cache_dir)
    if not refresh:
        try:
            return Path(snapshot_download(**where, local_files_only=True))
        except (LocalEntryNotFoundError, HFValidationError, OSError):
            pass
    cache = cache_dir or constants.HF_HUB_CACHE
    if constants.HF_HUB_OFFLINE:
        raise CheckpointError(f"{repo_id}: not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set")
    try:
        return Path(snapshot_download(**where, token=token))
    except Exception as err:  # network, authorisation, missing repo: one line naming the repo
        raise CheckpointError(f"{repo_id}: not in the local Hugging Face cache ({cache}) and not downloadable "
                              f"({one_line(err)[:300]})") from None


REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout flm_core runs from (pip install -e .)
SHIPPED_DIR = "checkpoints"  # relative paths under it are also looked up in REPO_ROOT


def resolve(source: str | Path) -> Path:
    """Where a checkpoint is: a local file or folder as it is; else a relative path under checkpoints/ inside
    this repository (so `checkpoints/fmlm-wiki` works from any folder, a mistyped one is reported missing); else, for the form 'owner/name', a Hub repo id
    (pulled; one of the authors' checkpoints comes with its tokenizer, see flm_core.download), unless 'owner'
    is a local folder (then it is a mistyped local path, reported as missing)."""
    path = Path(source)
    if path.exists():
        return path
    shipped = not path.is_absolute() and path.parts[:1] == (SHIPPED_DIR,)
    if shipped and (REPO_ROOT / path).exists():
        log.info("%s: read from %s", source, REPO_ROOT / path)
        return REPO_ROOT / path
    if not _REPO_ID.match(str(source)) or path.parent.is_dir() or shipped:
        return path
    if is_authors(str(source)):  # the cache, else the Hub with the tokenizer; errors say what to do
        from flm_core.download import authors_folder, download_all

        return authors_folder(find(str(source))) or download_all([str(source)])[0]  # with a byte progress bar
    try:
        return pull(str(source))
    except CheckpointError as err:
        reason = str(err).removeprefix(f"{source}: ")
        raise CheckpointError(f"{source}: no such folder here ({Path.cwd()}) or in {REPO_ROOT}, and {reason[:160]}; "
                              "give the checkpoint folder's full path") from None

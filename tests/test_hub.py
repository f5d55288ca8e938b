"""Hub push / pull of our checkpoint directories, offline: a stand-in HfApi writes what it receives into
a local Hugging Face cache laid out as huggingface_hub's own downloads are (refs/main + snapshots/<sha>),
and the real snapshot_download(local_files_only=True) reads it back."""
from __future__ import annotations

import hashlib
import inspect
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants

import flm_core
from flm_core import hub
from flm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, save_checkpoint
from flm_core.models import build_network


class CacheHub:
    """Stand-in for HfApi: create_repo / upload_folder with the real signatures; an upload becomes the
    repo's new main revision in the local cache `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, **kwargs):
        inspect.signature(HfApi.create_repo).bind(None, **kwargs)
        self.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        inspect.signature(HfApi.upload_folder).bind(None, **kwargs)
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        files = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and any(fnmatch(p.name, pattern) for pattern in kwargs["allow_patterns"]))
        sha = hashlib.sha1(b"".join((folder / name).read_bytes() for name in files)).hexdigest()
        repo = self.root / ("models--" + kwargs["repo_id"].replace("/", "--"))
        snapshot = repo / "snapshots" / sha
        snapshot.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(folder / name, snapshot / name)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(sha)
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/{sha}"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "hf_cache"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


@pytest.fixture
def ours(tmp_path, tokenizer, make_config, randomize):
    """One of our tiny FMLM checkpoint directories, plus its network."""
    config = make_config("fmlm", tokenizer.get_vocab_size())
    network = randomize(build_network(config.model), seed=5).eval()
    directory = tmp_path / "fmlm"
    save_checkpoint(directory, config, network, tokenizer.to_str(), card="# tiny FMLM\n")
    (directory / "optimizer.pt").write_bytes(b"training state, never pushed")
    return directory, network


def test_push_then_pull_round_trip(ours, cache):
    directory, network = ours
    fake = CacheHub(cache)
    url = hub.push(directory, "me/tiny-fmlm", api=fake)
    assert url.startswith("https://huggingface.co/me/tiny-fmlm/commit/")
    (name, create), (_, upload) = fake.calls
    assert name == "create_repo" and create["repo_id"] == "me/tiny-fmlm" and create["exist_ok"]
    assert sorted(upload["allow_patterns"]) == sorted(["README.md", CONFIG_FILE, WEIGHTS_FILE, "tokenizer.json"])
    pulled = hub.pull("me/tiny-fmlm")
    assert sorted(os.listdir(pulled)) == sorted(upload["allow_patterns"])
    assert all((pulled / f).read_bytes() == (directory / f).read_bytes() for f in os.listdir(pulled))
    x = torch.randn(2, 16, network.config.vocab_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = network(x, torch.full((2,), 0.25), torch.full((2,), 0.75))
    for source in (pulled, "me/tiny-fmlm"):  # a folder, or the repo id through the cache
        pipe = flm_core.load(source)
        assert pipe.kind == "fmlm" and torch.equal(pipe.logits(x, 0.25, 0.75), expected)


def test_pull_is_offline_first(cache, monkeypatch, tmp_path):
    calls = []

    def fake_snapshot(**kwargs):
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise hub.LocalEntryNotFoundError("not cached")
        return str(tmp_path)

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot)
    with pytest.raises(CheckpointError, match="me/absent: not in the local Hugging Face cache .*HF_HUB_OFFLINE"):
        hub.pull("me/absent")
    assert [c.get("local_files_only") for c in calls] == [True]  # no network while offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls.clear()
    assert hub.pull("me/absent") == tmp_path
    assert [c.get("local_files_only") for c in calls] == [True, None]  # cache first, then the Hub
    calls.clear()
    hub.pull("me/absent", refresh=True)
    assert [c.get("local_files_only") for c in calls] == [None]


def test_push_refuses_what_would_not_load(ours, cache, tmp_path):
    directory, _ = ours
    fake = CacheHub(cache)
    (directory / WEIGHTS_FILE).write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        hub.push(directory, "me/broken", api=fake)
    with pytest.raises(CheckpointError, match="not one of our checkpoint directories"):
        hub.push(tmp_path / "nowhere", "me/none", api=fake)
    released = tmp_path / "released"
    released.mkdir()
    (released / CONFIG_FILE).write_text('{"vocab_size": 30522, "algo": {"name": "flm"}}')
    with pytest.raises(CheckpointError, match="not one of our checkpoint directories"):
        hub.push(released, "me/released", api=fake)
    assert fake.calls == []


def test_missing_repo_or_path_is_one_line(cache):
    with pytest.raises(CheckpointError) as info:
        flm_core.load("me/never-pushed")
    message = str(info.value)
    assert "\n" not in message and message.startswith("me/never-pushed: no such folder here")
    assert message.endswith("give the checkpoint folder's full path")


def test_a_shipped_checkpoint_loads_by_its_repository_path_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing called checkpoints/ here
    monkeypatch.setattr(hub, "pull", lambda *a, **k: pytest.fail("a path inside the repository went to the Hub"))
    pipe = flm_core.load("checkpoints/fmlm-wiki")
    assert Path(pipe.path) == hub.REPO_ROOT / "checkpoints" / "fmlm-wiki" and pipe.kind == "fmlm"


def test_a_mistyped_path_inside_a_local_folder_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub, "pull", lambda *a, **k: pytest.fail("a local-looking path went to the Hub"))
    with pytest.raises(CheckpointError, match="checkpoints/fmlm-wikx: no such checkpoint directory"):
        flm_core.load("checkpoints/fmlm-wikx")

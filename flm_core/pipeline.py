"""`flm_core.load(path)` -> Pipeline: network + tokenizer + the sampler its kind calls for (`kinds.KINDS`)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tokenizers import Tokenizer

from flm_core import hub, released
from flm_core.checkpoint import (CheckpointError, TOKENIZER_FILE, WEIGHTS_FILE, load_state_into, read_checkpoint,
                                 read_checkpoint_config, read_checkpoint_weights)
from flm_core.config import RunConfig
from flm_core.kinds import Kind, kind_of
from flm_core.memory import available_bytes, generation_bytes, gib
from flm_core.models import build_network
from flm_core.models.guided import GuidedDenoiser
from flm_core.objectives import FIRST_STAGE_OBJECTIVE
from flm_core.samplers import Held, Sampler, run_sampler
from flm_core.tokens import decode, document_start_id, load_tokenizer
from flm_core.trajectory import MAX_RECORDED_STEPS, Recorder, Trajectory


@dataclass
class Generation:
    """One sampling run: tokens (B, L), texts, generation seconds (load excluded), network calls (nfe: every
    call of every network, so a guided run counts the strong and the guide network: 2 per step)."""

    kind: str
    tokens: torch.Tensor
    texts: list[str]
    seconds: float
    nfe: int
    steps: int
    device: str
    trajectory: Trajectory | None = None
    held: torch.Tensor | None = None  # (L,) bool: positions held to the prompt, None without one
    renoise: float = 0.0  # the flows' share of fresh noise per step (0: deterministic)
    guidance: float = 1.0  # autoguidance weight w (1: the model alone, no guide called)
    guide: str | None = None  # the guide checkpoint's path where a guide was called (guidance != 1)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens.numel() / max(self.seconds, 1e-9)


class Pipeline:
    """A loaded model ready to sample; see `generate` and `logits`."""

    def __init__(self, config: RunConfig, network: torch.nn.Module, tokenizer: Tokenizer,
                 path: str = "", device: str = "cpu"):
        self.config = config
        self.kind = config.kind
        self.spec: Kind = kind_of(config.kind)
        self.network = network.to(device).eval()
        self.tokenizer = tokenizer
        self.path = path
        self.device = torch.device(device)
        self.sampler = self.spec.make_sampler(self.network)
        self.guide: Pipeline | None = None

    def set_guide(self, guide: Pipeline) -> None:
        """Autoguidance's weaker model: a flow of the same kind (both logits are of the same quantity: D(x, s)
        for FLM, the flow map's delta(x, s, t) for FMLM), the same vocabulary and the same length."""
        if self.spec.discrete:
            raise ValueError(f"autoguidance applies to flows (FLM, FMLM); {self.path} is an {self.spec.label}")
        if guide.kind != self.kind:
            raise ValueError(f"the guide {guide.path} is an {guide.spec.label} but {self.path} is an {self.spec.label}: "
                             f"guide it with a weaker {self.spec.label} (its logits must be of the same quantity)")
        if guide.tokenizer.get_vocab() != self.tokenizer.get_vocab() or guide.seq_len != self.seq_len:
            raise ValueError(f"the guide {guide.path} (vocabulary {guide.vocab_size}, length {guide.seq_len}) does not "
                             f"share the tokenizer and length of {self.path} (vocabulary {self.vocab_size}, length "
                             f"{self.seq_len}): use a guide trained on the same prepared data")
        self.guide = guide

    def guided_sampler(self, guidance: float) -> Sampler:
        """The sampler for autoguidance weight w: this model's own at w = 1 (the guide is not called), else one
        over `GuidedDenoiser` (logits l_weak + w (l_strong - l_weak))."""
        if not (math.isfinite(guidance) and guidance >= 0):
            raise ValueError(f"guidance must be a finite w >= 0 (1: no guidance), got {guidance}")
        if guidance == 1:
            return self.sampler
        if self.guide is None:
            raise ValueError(f"guidance {guidance} needs a guide model: load it with load(path, guide=DIR) "
                             "(command line: --guide DIR)")
        return self.spec.make_sampler(GuidedDenoiser(self.network, self.guide.network, guidance))

    @property
    def vocab_size(self) -> int:
        return self.config.model.vocab_size

    @property
    def seq_len(self) -> int:
        return self.config.model.seq_len

    def held_tokens(self, prefix: str = "", suffix: str = "") -> Held | None:
        """A prompt as held tokens: the document start and `prefix` first, `suffix` last; None for neither.
        A suffix that starts with a letter or digit starts a new word (a space is put before it)."""
        encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
        head = [document_start_id(self.tokenizer), *encode(prefix)] if prefix else []
        tail = encode(" " + suffix if suffix[:1].isalnum() else suffix) if suffix else []
        if not head and not tail:
            return None
        if len(head) + len(tail) > self.seq_len - 1:
            raise ValueError(f"the prompt takes {len(head) + len(tail)} tokens but a sample has {self.seq_len} "
                             "and needs at least one to write: shorten the prefix or the suffix")
        positions = [*range(len(head)), *range(self.seq_len - len(tail), self.seq_len)]
        return Held(torch.tensor(positions, device=self.device), torch.tensor(head + tail, device=self.device))

    def generate(self, num_samples: int, steps: int, seed: int = 0, record: bool = False,
                 progress: Callable[[int, int], None] | None = None, prefix: str = "",
                 suffix: str = "", renoise: float = 0.0, guidance: float = 1.0) -> Generation:
        """Sample num_samples sequences with `steps` network calls (AR: always L - 1).

        prefix / suffix: text every sample starts (after a document start) / ends with (`held_tokens`).
        renoise: flows only, the share eta of fresh noise per step (`paths.renoised_step`; 0: deterministic).
        guidance: autoguidance weight w with the guide given to `load` (`guided_sampler`; 1: none)."""
        if not 1 <= num_samples <= 4096:
            raise ValueError(f"num_samples must be in [1, 4096], got {num_samples}")
        if not 1 <= steps <= 100_000:
            raise ValueError(f"steps must be in [1, 100000], got {steps}")
        sampler = self.guided_sampler(guidance)
        n = sampler.num_steps(steps)
        needed = generation_bytes(self.config.model, num_samples, min(n, MAX_RECORDED_STEPS) if record else 0)
        free = available_bytes(self.device)
        if needed > free:
            raise ValueError(f"{num_samples} samples of {self.seq_len} tokens over a vocabulary of {self.vocab_size} "
                             f"need about {gib(needed)}, more than the {gib(free)} free: use fewer samples")
        held = self.held_tokens(prefix, suffix)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        recorder = Recorder(n, num_samples, self.seq_len, self.vocab_size) if record else None
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens, n = run_sampler(sampler, num_samples, steps, generator, self.device, recorder, progress, held,
                                  renoise)
        tokens = tokens.cpu()  # waits for the device
        seconds = time.perf_counter() - start
        texts = [decode(self.tokenizer, row.tolist()) for row in tokens]
        mask = None
        if held is not None:
            mask = torch.zeros(self.seq_len, dtype=torch.bool)
            mask[held.positions.cpu()] = True
        guided = sampler is not self.sampler
        return Generation(kind=self.kind, tokens=tokens, texts=texts, seconds=seconds, nfe=n * (2 if guided else 1),
                          steps=n, device=str(self.device), trajectory=recorder.finish(tokens) if record else None,
                          held=mask, renoise=renoise, guidance=guidance, guide=self.guide.path if guided else None)

    @torch.inference_mode()
    def logits(self, x: torch.Tensor, s: torch.Tensor | float, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Raw network output (B, L, K) for a state x (B, L, K) (ids (B, L) for MDLM/AR) at time s (and t;
        a flow map without t gives its diagonal delta(x, s, s))."""
        x = x.to(self.device)
        as_times = lambda v: torch.as_tensor(v, dtype=torch.float32, device=self.device).expand(x.shape[0])  # noqa: E731
        return self.spec.call(self.network, x, as_times(s), None if t is None else as_times(t))


def load(path: str | Path, device: str = "cpu", guide: str | Path | None = None) -> Pipeline:
    """Load a checkpoint directory (config.json + model.safetensors + tokenizer.json), a released FLM/FMLM
    checkpoint (hub-mixin folder or Lightning .ckpt, see released.py), or a Hub repo id (cache first).
    guide: a weaker flow of the same kind and tokenizer for autoguidance (`Pipeline.set_guide`)."""
    pipe = _load(path, device)
    if guide is not None:
        pipe.set_guide(_load(guide, device))
    return pipe


def _load(path: str | Path, device: str) -> Pipeline:
    path = hub.resolve(path)
    if released.is_released(path):
        config, weights, tokenizer = released.read_released(path)
        network = build_network(config.model)
        load_state_into(network, weights, path)
        return Pipeline(config, network, tokenizer, str(path), device)
    config = read_checkpoint_config(path)
    if (refusal := why_not_a_sampler(path, config)) is not None:
        raise CheckpointError(refusal)
    weights = read_checkpoint_weights(path)
    try:
        tokenizer = load_tokenizer(path / TOKENIZER_FILE)
    except (FileNotFoundError, ValueError) as err:
        raise CheckpointError(str(err)) from None
    if tokenizer.get_vocab_size() != config.model.vocab_size:
        raise CheckpointError(f"{path / TOKENIZER_FILE}: tokenizer has {tokenizer.get_vocab_size()} tokens "
                              f"but config.json says vocab_size {config.model.vocab_size}")
    network = build_network(config.model)
    load_state_into(network, weights, path / WEIGHTS_FILE)
    return Pipeline(config, network, tokenizer, str(path), device)


def why_not_a_sampler(path: str | Path, config: RunConfig) -> str | None:
    """Why a readable checkpoint cannot be sampled (one line), or None: a first-stage residual needs its teacher."""
    if config.objective.name != FIRST_STAGE_OBJECTIVE:
        return None
    return (f"{path}: a first-stage residual ({FIRST_STAGE_OBJECTIVE}) is not a flow map on its own: distil it with "
            f"`train fmlm --objective two-network --first-stage {path}`")


def load_first_stage(path: str | Path, flag: str = "--first-stage") -> tuple[RunConfig, torch.nn.Module]:
    """The config and residual network (eval mode) of a first-stage checkpoint (objective fmlm-residual): the
    second stage's target, or a first stage's warm start (`flag` names the option that gave the path)."""
    config, weights = read_checkpoint(Path(path))
    if config.objective.name != FIRST_STAGE_OBJECTIVE:
        raise CheckpointError(f"{path}: {flag} needs a checkpoint trained with `train fmlm --objective residual`, "
                              f"got objective {config.objective.name!r}")
    network = build_network(config.model)
    load_state_into(network, weights, Path(path) / WEIGHTS_FILE)
    return config, network.eval()

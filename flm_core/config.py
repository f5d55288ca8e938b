"""Plain dataclasses for every setting, serialised to and from JSON.

A checkpoint's `config.json` holds `{"kind", "model", "training", "objective", "data"}` and is
enough to rebuild its network without any code path guessing.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass
class ModelConfig:
    """Shape of a network. `double_time` adds the flow map's second time embedder; `self_condition` adds the
    previous estimate D_prev (B, L, K) as a second input (an FLM's self-conditioning, see `kinds.Kind`)."""

    vocab_size: int
    seq_len: int
    hidden_size: int = 256
    n_blocks: int = 6
    n_heads: int = 4
    cond_dim: int = 128
    dropout: float = 0.1
    causal: bool = False  # AR: causal attention, no time conditioning
    double_time: bool = False  # FMLM: delta(x, s, t) gets a second time input
    learnable_loss_weighting: bool = False
    self_condition: bool = False  # FLM: the network also reads the previous estimate D_prev

    def validate(self) -> None:
        _check_range(self, "vocab_size", 3, 1_000_000)
        _check_range(self, "seq_len", 1, 65_536)
        _check_range(self, "hidden_size", 8, 16_384)
        _check_range(self, "n_blocks", 1, 256)
        _check_range(self, "n_heads", 1, 256)
        _check_range(self, "cond_dim", 8, 16_384)
        if self.hidden_size % self.n_heads or (self.hidden_size // self.n_heads) % 2:
            raise ConfigError(
                f"hidden_size {self.hidden_size} must split into n_heads {self.n_heads} heads of even size")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.causal and self.double_time:
            raise ConfigError("a causal (AR) model has no time inputs, so double_time must be false")
        if self.causal and self.self_condition:
            raise ConfigError("a causal (AR) model has no denoiser estimate to read, so self_condition must be false")


# Presets: "tiny" for tests, "cpu" the CPU default, "small" the paper's size (768/12/12, cond 128).
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16, dropout=0.0),
    "cpu": dict(hidden_size=256, n_blocks=6, n_heads=4, cond_dim=128, dropout=0.1),
    "small": dict(hidden_size=768, n_blocks=12, n_heads=12, cond_dim=128, dropout=0.1),
}

# The paper's training runs (github.com/david3684/flm at d89a02f; docs/recipe.md section 1 cites each value):
# scripts/train_lm1b_flm.sh and scripts/train_owt_flm.sh (global batch 512, small model, lr 3e-4, 1.5M steps,
# length 128 / 1024), configs/config.yaml (AdamW betas (0.9, 0.999), weight decay 0, EMA 0.9999, gradient clip 1,
# validation every 5000 steps), configs/lr_scheduler/constant_warmup.yaml (2500 warmup steps, then constant).
# The data side (tokenizer, length, packing) is flm_core.data.DATA_PRESETS. They are the FLM runs: the authors'
# distillations use other settings (scripts/train_lm1b_flm_distill.sh: 1M steps, learned loss weights; OWT batch 128).
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    name: {"kind": "flm", "model": "small",
           "training": dict(batch_size=512, lr=3e-4, warmup_steps=2500, min_lr_ratio=1.0, max_steps=1_500_000,
                            weight_decay=0.0, adam_beta2=0.999, grad_clip=1.0, ema=0.9999, eval_every=5000)}
    for name in ("paper-lm1b", "paper-owt")  # the length is the data's: flm_core.data.DATA_PRESETS
}


@dataclass
class ObjectiveConfig:
    """Which loss trains the network and its knobs."""

    name: str = "flm"  # flm | fmlm-semigroup | fmlm-lagrangian | fmlm-residual | fmlm-two-network | mdlm | ar
    boundary_prob: float = 0.1  # FMLM: chance of drawing (s, t) = (0, 1)
    diagonal_weight: float = 1.0  # FMLM: weight of KL(D_teacher || delta(., t, t))
    teacher: str | None = None  # FMLM: path of the FLM teacher checkpoint
    teacher_self_condition: bool = True  # FMLM: a self-conditioned teacher's targets are its second pass
    first_stage: str | None = None  # fmlm-two-network: path of the fmlm-residual checkpoint it distils

    def validate(self) -> None:
        from flm_core.kinds import KINDS  # the table imports the networks, which import this module

        names = tuple(name for kind in KINDS.values() for name in kind.objective_names)
        if self.name not in names:
            raise ConfigError(f"objective must be one of {names}, got {self.name!r}")
        if not 0.0 <= self.boundary_prob <= 1.0:
            raise ConfigError(f"boundary_prob must be in [0, 1], got {self.boundary_prob}")
        from flm_core.objectives import SECOND_STAGE_OBJECTIVE

        if (self.name == SECOND_STAGE_OBJECTIVE) != (self.first_stage is not None):
            raise ConfigError(f"objective {SECOND_STAGE_OBJECTIVE} distils a first stage (--first-stage PATH) and "
                              f"only it takes one; objective {self.name!r}, first stage {self.first_stage!r}")


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping for one training run."""

    batch_size: int = 64  # global batch (split over DDP ranks and accumulation steps)
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio at max_steps
    warmup_steps: int = 200
    max_steps: int = 10_000
    max_minutes: float | None = None
    weight_decay: float = 0.0
    adam_beta2: float = 0.98  # AdamW (0.9, beta2); the authors' 0.999 is in TRAINING_PRESETS
    grad_clip: float = 1.0
    ema: float = 0.999
    eval_every: int = 250
    eval_batches: int = 4
    save_every_minutes: float = 5.0
    log_every: int = 25
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16
    compile: bool = False
    init_from: str | None = None  # checkpoint directory whose weights start the run (fresh optimizer)

    def validate(self) -> None:
        _check_range(self, "batch_size", 1, 1 << 20)
        _check_range(self, "grad_accum", 1, 4096)
        _check_range(self, "max_steps", 1, 1 << 40)
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.adam_beta2 < 1.0:
            raise ConfigError(f"adam_beta2 must be in [0, 1), got {self.adam_beta2}")


@dataclass
class RunConfig:
    """Everything a checkpoint directory's config.json records."""

    kind: str
    model: ModelConfig
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    data: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def validate(self) -> None:
        from flm_core.kinds import KINDS  # the table imports the networks, which import this module

        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {tuple(KINDS)}, got {self.kind!r}")
        spec = KINDS[self.kind]
        if isinstance(self.format_version, bool) or self.format_version != FORMAT_VERSION:
            raise ConfigError(f"format_version {self.format_version!r} is not supported (expected {FORMAT_VERSION})")
        self.model.validate()
        self.objective.validate()
        self.training.validate()
        if self.objective.name not in spec.objective_names:
            raise ConfigError(f"a {self.kind} model trains with {' or '.join(spec.objective_names)}, "
                              f"not objective {self.objective.name!r}")
        if spec.two_times != self.model.double_time:
            raise ConfigError(f"kind {self.kind!r} does not match double_time={self.model.double_time}")
        if spec.causal != self.model.causal:
            raise ConfigError(f"kind {self.kind!r} does not match causal={self.model.causal}")
        if self.model.self_condition and not spec.self_conditioning:
            able = " or ".join(kind.name for kind in KINDS.values() if kind.self_conditioning)
            raise ConfigError(f"self_condition applies to kind {able} only, not {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        if not isinstance(raw, dict) or "kind" not in raw or "model" not in raw:
            raise ConfigError("config needs at least the keys 'kind' and 'model'")
        cfg = cls(
            kind=raw["kind"],
            model=_build(ModelConfig, raw["model"]),
            objective=_build(ObjectiveConfig, raw.get("objective", {})),
            training=_build(TrainConfig, raw.get("training", {})),
            data=dict(raw.get("data", {})),
            format_version=raw.get("format_version", FORMAT_VERSION),
        )
        cfg.validate()
        return cfg

    def save(self, path: Path) -> None:
        from flm_core.checkpoint import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        try:
            return cls.from_dict(raw)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None


def _build(cls: type, raw: Any) -> Any:
    """Build dataclass `cls` from a dict, checking names and basic types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    for name, value in raw.items():
        expected = known[name].type
        if "int" in expected and "float" not in expected and (isinstance(value, bool) or not isinstance(value, int)):
            if not (expected.endswith("None") and value is None):
                raise ConfigError(f"{cls.__name__}.{name} must be an integer, got {value!r}")
        if expected == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{cls.__name__}.{name} must be true or false, got {value!r}")
        if expected.startswith("float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            if not (expected.endswith("None") and value is None):
                raise ConfigError(f"{cls.__name__}.{name} must be a number, got {value!r}")
        if expected.startswith("str") and not isinstance(value, str):
            if not (expected.endswith("None") and value is None):
                raise ConfigError(f"{cls.__name__}.{name} must be a string, got {value!r}")
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"{cls.__name__}: {err}") from None


def _check_range(obj: Any, name: str, low: int, high: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{type(obj).__name__}.{name} must be an integer in [{low}, {high}], got {value!r}")


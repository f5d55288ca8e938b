"""One trainer for every kind (flm, fmlm, mdlm, ar): AdamW, warmup + cosine, clipping, EMA,
bf16 autocast where it helps, periodic validation, atomic checkpoints, exact resume, and DDP
under torchrun.

Determinism: the data order and every random draw of step n come from (seed, n, shard), so a
resumed run repeats an uninterrupted one, and N ranks match one process that accumulates N
shards of the same global batch.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from flm_core import hub, objectives
from flm_core.checkpoint import (append_jsonl, atomic_save_tensors, atomic_write_text,
                                 load_tensors, read_jsonl, save_checkpoint, METRICS_FILE, TOKENIZER_FILE)
from flm_core.cards import last_stage_command, read_card_data, write_card
from flm_core.config import RunConfig
from flm_core.environment import hardware
from flm_core.data import load_manifest, open_blocks
from flm_core.kinds import kind_of
from flm_core.models import build_network
from flm_core.shards import Blocks

log = logging.getLogger(__name__)
STATE_DIR = "state"
EARLIER_STAGES_FILE = "earlier_stages.json"  # a warm-started run's stages before it, copied from the init card data


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, mismatched resume state, ...)."""


def cpu_has_fast_bf16() -> bool:
    """Whether bf16 matmuls beat fp32 on this CPU: only with AMX tiles (with AVX512-BF16 alone bf16 is
    slower; `bench-speed` measures both, see docs/measurements/)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or cpu_has_fast_bf16()


class ObjectiveModule(nn.Module):
    """The network plus its loss, so that DDP sees every parameter used inside forward."""

    def __init__(self, network: nn.Module, loss_fn):
        super().__init__()
        self.network = network
        self.loss_fn = loss_fn

    def forward(self, tokens: torch.Tensor, generator: torch.Generator):
        return self.loss_fn(self.network, tokens, generator)


def teacher_targets(config: RunConfig, teacher: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The FLM as a distillation run calls it for targets: its second pass where it is self-conditioned and the
    run asks for it (`teacher_self_condition`), else the network itself."""
    if teacher.config.self_condition and config.objective.teacher_self_condition:
        return objectives.self_conditioned_teacher(teacher)
    return teacher


def make_objective(config: RunConfig, teacher: nn.Module | None,
                   first_stage: nn.Module | None = None) -> objectives.Objective:
    """The run's loss; a flow map's teacher is the FLM (`teacher_targets`), or, for the authors' second stage,
    the first stage's map built on that FLM."""
    obj = config.objective
    if teacher is not None:
        teacher = teacher_targets(config, teacher)
    if first_stage is not None:
        teacher = objectives.residual_flow_map(teacher, first_stage)
    return kind_of(config.kind).objective(obj.name, teacher, obj.boundary_prob, obj.diagonal_weight)


class EMA:
    """Shadow weights: ema <- d * ema + (1 - d) * w, d = min(decay, (1 + n) / (10 + n))."""

    def __init__(self, network: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in network.state_dict().items()}

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in network.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.float(), 1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, network: nn.Module) -> None:
        network.load_state_dict(self.shadow)


def lr_at(step: int, config) -> float:
    """Linear warmup to lr, then cosine decay to lr * min_lr_ratio at max_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def step_seed(seed: int, step: int, shard: int) -> int:
    return (seed * 1_000_003 + step * 7919 + shard * 104_729) % (2**62)


class BatchSchedule:
    """Global batch of step n = samples [n B, (n+1) B) of an endless sequence of seeded epoch permutations.
    Only the rows of a batch are read (the blocks may be memory-mapped shards); the memory that grows with
    the corpus are the permutations of the current and previous epoch: 8 bytes per block each."""

    def __init__(self, blocks: Blocks | torch.Tensor, batch_size: int, seed: int):
        self.blocks, self.batch_size, self.seed = blocks, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        """Seeded permutation of epoch `epoch`; the two most recent are kept (a batch may straddle two)."""
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e == epoch - 1}
            self._perms[epoch] = torch.randperm(len(self.blocks), generator=torch.Generator().manual_seed(
                self.seed * 31 + epoch))
        return self._perms[epoch]

    def shard(self, step: int, index: int, count: int) -> torch.Tensor:
        """Rows of shard `index` of `count` equal shards of step `step`'s global batch."""
        n = len(self.blocks)
        per = self.batch_size // count
        positions = torch.arange(step * self.batch_size + index * per, step * self.batch_size + (index + 1) * per)
        epochs, offsets = positions // n, positions % n
        rows = torch.empty_like(positions)
        for epoch in epochs.unique().tolist():
            here = epochs == epoch
            rows[here] = self._perm(epoch)[offsets[here]]
        return self.blocks[rows]


def _save_state(out: Path, step: int, network: nn.Module, ema: EMA, optimizer: torch.optim.Optimizer,
                elapsed: float, config: RunConfig, best: float) -> None:
    """Atomic training state: write state/step_N.tmp, rename it, then point LATEST at it."""
    root = out / STATE_DIR
    final = root / f"step_{step:09d}"
    shutil.rmtree(final, ignore_errors=True)  # an orphan of a crash before LATEST moved: train saves a step once
    tmp = root / f".step_{step:09d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tensors = {f"model.{k}": v for k, v in network.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.shadow.items()})
    opt = optimizer.state_dict()
    for index, slots in opt["state"].items():
        tensors.update({f"opt.{index}.{name}": torch.as_tensor(v) for name, v in slots.items()})
    atomic_save_tensors(tmp / "tensors.safetensors", tensors)
    meta = {"step": step, "elapsed_seconds": elapsed, "ema_updates": ema.updates, "best_val_nll": best,
            "param_groups": opt["param_groups"], "config": config.to_dict()}
    atomic_write_text(tmp / "state.json", json.dumps(meta))
    os.replace(tmp, final)
    atomic_write_text(root / "LATEST", final.name)
    for old in root.iterdir():  # older states and what a killed save left (temporary files and folders)
        if old.is_dir() and old != final:
            shutil.rmtree(old, ignore_errors=True)
        elif old.is_file() and old.name != "LATEST":
            old.unlink(missing_ok=True)
    for stale in out.glob(".*.tmp"):  # an export killed mid-write (checkpoint.atomic_write's temporary names)
        stale.unlink(missing_ok=True)


def saved_run_config(out_dir: str | Path) -> RunConfig | None:
    """The config of the resumable run saved in out_dir (None when there is none)."""
    latest = Path(out_dir) / STATE_DIR / "LATEST"
    if not latest.is_file():
        return None
    meta = json.loads((latest.parent / latest.read_text().strip() / "state.json").read_text())
    return RunConfig.from_dict(meta["config"])


def _load_state(out: Path, network: nn.Module, ema: EMA,
                optimizer: torch.optim.Optimizer) -> tuple[int, float, float]:
    root = out / STATE_DIR
    latest = (root / "LATEST").read_text().strip()
    meta = json.loads((root / latest / "state.json").read_text())
    tensors = load_tensors(root / latest / "tensors.safetensors")
    network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.shadow = {k[4:]: v.to(next(iter(ema.shadow.values())).device)
                  for k, v in tensors.items() if k.startswith("ema.")}
    ema.updates = meta["ema_updates"]
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta["step"], meta["elapsed_seconds"], meta["best_val_nll"]


def build_student(config: RunConfig, device: torch.device,
                  warm_start: bool = True) -> tuple[nn.Module, nn.Module | None]:
    """The network to train and, for FMLM, the frozen FLM teacher it distils.

    The network starts from `training.init_from` when given (a warm start; skipped with warm_start=False,
    as when a resumed run's state replaces the weights anyway; it may switch self-conditioning on, see
    `_load_warm_start`), else a fresh FMLM student starts from its teacher with the second time embedding
    zeroed (so it first equals the teacher)."""
    from flm_core.pipeline import load as load_pipeline, load_first_stage

    network = build_network(config.model)
    init_from = config.training.init_from if warm_start else None
    if init_from:
        if config.objective.name == objectives.FIRST_STAGE_OBJECTIVE:  # a residual continues only a residual
            init_kind, (_, init_network) = config.kind, load_first_stage(init_from, "--init-from")
        else:
            init = load_pipeline(init_from)
            init_kind, init_network = init.kind, init.network
        shape = replace(init_network.config, self_condition=config.model.self_condition)
        if init_kind != config.kind or shape != config.model:
            raise TrainingError(f"{init_from}: --init-from needs a {config.kind} checkpoint of the same shape, "
                                f"got {init_kind} with {init_network.config}")
        _load_warm_start(network, init_network.state_dict(), init_from)
    if not kind_of(config.kind).two_times:  # only a flow map distils a teacher
        return network.to(device), None
    teacher_pipe = load_pipeline(config.objective.teacher, device=str(device))
    if teacher_pipe.spec.discrete or teacher_pipe.spec.two_times:  # the teacher is a one-time flow denoiser
        raise TrainingError(f"{config.objective.teacher}: the teacher must be an FLM checkpoint, "
                            f"not {teacher_pipe.kind}")
    teacher = teacher_pipe.network.requires_grad_(False)
    if not init_from:
        student_state = network.state_dict()
        student_state.update({k: v for k, v in teacher.state_dict().items() if k in student_state})
        network.load_state_dict(student_state)
        network.zero_init_second_time()
        if config.objective.name == objectives.FIRST_STAGE_OBJECTIVE:  # a residual over the teacher starts at 0
            network.zero_init_output()
    return network.to(device), teacher


def frozen_first_stage(config: RunConfig, device: torch.device) -> nn.Module | None:
    """The frozen first-stage residual network a second-stage run distils (None for other runs). Its residual is
    only meaningful over the teacher pass it was trained on, so that teacher (same folder, same first or second
    pass) and the student's vocabulary and length must match."""
    obj = config.objective
    if obj.first_stage is None:
        return None
    from flm_core.pipeline import load_first_stage

    first, network = load_first_stage(obj.first_stage)
    trained_on = (Path(first.objective.teacher or "").resolve(), first.objective.teacher_self_condition)
    if trained_on != (Path(obj.teacher or "").resolve(), obj.teacher_self_condition):
        raise TrainingError(f"{obj.first_stage} was trained on teacher {first.objective.teacher} (teacher_self_condition"
                            f" {first.objective.teacher_self_condition}): distil it with the same --teacher and "
                            "--[no-]teacher-self-condition")
    if network.config.vocab_size != config.model.vocab_size or network.config.seq_len != config.model.seq_len:
        raise TrainingError(f"{obj.first_stage}: the first stage has K = {network.config.vocab_size}, "
                            f"L = {network.config.seq_len}; the student K = {config.model.vocab_size}, "
                            f"L = {config.model.seq_len}")
    return network.requires_grad_(False).to(device)


def _load_warm_start(network: nn.Module, weights: dict[str, torch.Tensor], init_from: str) -> None:
    """Load a checkpoint's weights into `network`. Only the self-conditioning projection may be missing from
    them (a checkpoint trained without it): it stays zero, so the network starts as the checkpoint's function."""
    missing, unexpected = network.load_state_dict(weights, strict=False)
    projection = ({f"estimate_proj.{name}" for name in network.estimate_proj.state_dict()}
                  if network.config.self_condition else set())
    absent = sorted(set(missing) - projection)
    if absent or unexpected:
        raise TrainingError(f"{init_from}: its weights do not fit the network (missing {absent[:3]}, "
                            f"unexpected {unexpected[:3]})")


def _record_history(out: Path, init_from: str) -> None:
    """Keep the stages behind the init checkpoint's weights in the run (once, at the start: the init folder
    may later be overwritten by this run's own export, as scripts/continue_shipped.sh does)."""
    stages = read_card_data(init_from)["stages"]
    atomic_write_text(out / EARLIER_STAGES_FILE, json.dumps(stages, indent=2) + "\n")


def _write_card(out: Path, config: RunConfig, n_params: int, step: int, elapsed: float, val: dict, tokens_seen: int,
                device: torch.device, bf16: bool, command: str, teacher_trained_by: str | None) -> None:
    """card.json and README.md of an export: the stages behind the init weights, then this run (with, for a
    distillation, the command that made its teacher's weights)."""
    earlier = out / EARLIER_STAGES_FILE
    stages = json.loads(earlier.read_text(encoding="utf-8")) if earlier.is_file() else []
    stage = {"command": command, "steps": step, "tokens_seen": tokens_seen, "wall_minutes": round(elapsed / 60, 3),
             "hardware": hardware(device), "precision": "bf16" if bf16 else "fp32",
             "init_from": config.training.init_from, "validation": {k: round(v, 4) for k, v in val.items()}}
    if teacher_trained_by is not None:
        stage["teacher_trained_by"] = teacher_trained_by
    stages.append(stage)
    write_card(out, config, {"parameters": n_params, "stages": stages, "benchmark": None})


@torch.no_grad()
def evaluate_loss(module: ObjectiveModule, blocks: Blocks | torch.Tensor, batch_size: int, batches: int, seed: int,
                  device: torch.device, bf16: bool) -> dict[str, float]:
    """Mean logs over fixed validation batches with fixed noise (comparable across runs)."""
    module.eval()
    totals: dict[str, float] = {}
    count = 0
    for i in range(min(batches, max(1, len(blocks) // batch_size))):
        tokens = blocks[i * batch_size:(i + 1) * batch_size].to(device)
        generator = torch.Generator(device=device).manual_seed(step_seed(seed, -1 - i, 0))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            _, logs = module(tokens, generator)
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + float(v)
        count += 1
    module.train()
    return {k: v / count for k, v in totals.items()}


@dataclass
class Placement:
    """Where this process trains: world size, rank, device, and gradient shards per global batch."""

    world: int
    rank: int
    device: torch.device
    shards: int


def _placement(cfg) -> Placement:
    """torchrun's environment (one process without it); joins the process group when there are several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    shards = world * cfg.grad_accum
    if cfg.batch_size % shards:
        raise TrainingError(f"batch_size {cfg.batch_size} must divide into {world} ranks x {cfg.grad_accum} "
                            "accumulation steps")
    return Placement(world, rank, device, shards)


class Trainer:
    """One training run: its network, EMA, optimizer and position (step, elapsed seconds, best val NLL).
    `train` drives it; every method leaves the run resumable from its last save."""

    def __init__(self, config: RunConfig, data_dir: Path, out: Path, resume: bool, command: str):
        self.config, self.cfg, self.out, self.command = config, config.training, out, command
        self.place = place = _placement(self.cfg)
        manifest = load_manifest(data_dir)
        self.train_blocks, self.val_blocks = open_blocks(data_dir, "train"), open_blocks(data_dir, "val")  # mapped
        if self.train_blocks.shape[1] != config.model.seq_len:
            raise TrainingError(f"{data_dir}: blocks have length {self.train_blocks.shape[1]}, the model expects "
                                f"{config.model.seq_len}")
        self.tokenizer_json = (Path(data_dir) / TOKENIZER_FILE).read_text(encoding="utf-8")
        torch.manual_seed(self.cfg.seed)
        resuming = resume and (out / STATE_DIR / "LATEST").is_file()
        self.network, teacher = build_student(config, place.device, warm_start=not resuming)
        self.teacher_trained_by = (last_stage_command(hub.resolve(config.objective.teacher))  # where it was read
                                   if teacher is not None else None)
        first_stage = frozen_first_stage(config, place.device)
        self.module = ObjectiveModule(self.network, make_objective(config, teacher, first_stage))
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.cfg.lr, betas=(0.9, self.cfg.adam_beta2),
                                           weight_decay=self.cfg.weight_decay)
        self.ema = EMA(self.network, self.cfg.ema)
        self.step, self.elapsed, self.best = 0, 0.0, math.inf
        if resuming:
            self.step, self.elapsed, self.best = _load_state(out, self.network, self.ema, self.optimizer)
            log.info("resumed %s at step %d", out, self.step)
        elif place.rank == 0 and out.exists() and (out / STATE_DIR).exists():
            raise TrainingError(f"{out} already holds a training run: pass --resume to continue it or choose a new --out")
        runner = nn.parallel.DistributedDataParallel(self.module) if place.world > 1 else self.module
        self.runner = torch.compile(runner) if self.cfg.compile else runner
        self.bf16 = use_bf16(self.cfg.precision, place.device)
        self.schedule = BatchSchedule(self.train_blocks, self.cfg.batch_size, self.cfg.seed)
        self.tokens_per_step = self.cfg.batch_size * config.model.seq_len
        out.mkdir(parents=True, exist_ok=True)
        if place.rank == 0 and self.cfg.init_from and not resuming:
            _record_history(out, self.cfg.init_from)
        config.data = {"source": manifest.get("source"), "data_dir": str(data_dir),
                       "train_tokens": int(self.train_blocks.numel())}
        log.info("training %s: %s parameters on %s (%s), %d ranks", config.kind,
                 f"{sum(p.numel() for p in self.network.parameters()):,}", place.device,
                 "bf16" if self.bf16 else "fp32", place.world)

    def save(self, val: dict[str, float]) -> None:
        """Training state always; the exported EMA weights only when validation NLL improved."""
        if self.place.rank != 0:
            return
        improved = "nll" not in val or val["nll"] <= self.best
        self.best = min(self.best, val.get("nll", self.best))
        _save_state(self.out, self.step, self.network, self.ema, self.optimizer, self.elapsed, self.config, self.best)
        if improved:
            export = build_network(self.config.model)
            self.ema.copy_to(export)
            save_checkpoint(self.out, self.config, export, self.tokenizer_json)
            _write_card(self.out, self.config, sum(p.numel() for p in export.parameters()), self.step, self.elapsed,
                        val, self.step * self.tokens_per_step, self.place.device, self.bf16, self.command,
                        self.teacher_trained_by)

    def validate(self) -> dict[str, float]:
        """Validation figures of the EMA weights (the live weights are put back after)."""
        live = {k: v.clone() for k, v in self.network.state_dict().items()}
        self.ema.copy_to(self.network)
        val = evaluate_loss(self.module, self.val_blocks, self.cfg.batch_size, self.cfg.eval_batches, self.cfg.seed,
                            self.place.device, self.bf16)
        self.network.load_state_dict(live)
        if self.place.rank == 0:
            append_jsonl(self.out / METRICS_FILE, {"step": self.step, "split": "val", "elapsed_s": round(self.elapsed, 2),
                                                   **{k: round(v, 5) for k, v in val.items()}})
        return val

    def train_step(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step over this rank's shards of the global batch; returns the gradient norm and logs."""
        cfg, place = self.cfg, self.place
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, cfg)
        logs_sum: dict[str, torch.Tensor] = {}
        for micro in range(cfg.grad_accum):
            shard = place.rank * cfg.grad_accum + micro
            torch.manual_seed(step_seed(cfg.seed, self.step, shard))  # dropout draws: per shard, as the noise
            tokens = self.schedule.shard(self.step, shard, place.shards).to(place.device)
            generator = torch.Generator(device=place.device).manual_seed(step_seed(cfg.seed, self.step, shard))
            with torch.autocast(place.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss, logs = self.runner(tokens, generator)
            (loss / cfg.grad_accum).backward()
            for k, v in logs.items():
                logs_sum[k] = logs_sum.get(k, 0) + v / cfg.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(self.network.parameters(), cfg.grad_clip)
        if not torch.isfinite(grad_norm):
            raise TrainingError(f"non-finite loss or gradient at step {self.step}: stopped; the last good checkpoint "
                                f"in {self.out} is intact (try a lower --lr)")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.network)
        self.step += 1
        return grad_norm, logs_sum

    def log_train(self, grad_norm: torch.Tensor, logs: dict[str, torch.Tensor], rate: float, progress) -> None:
        record = {"step": self.step, "split": "train", "lr": lr_at(self.step - 1, self.cfg),
                  "tokens_per_s": round(rate, 1), "elapsed_s": round(self.elapsed, 2),
                  "grad_norm": round(float(grad_norm), 4), **{k: round(float(v), 5) for k, v in logs.items()}}
        if self.place.rank == 0:
            append_jsonl(self.out / METRICS_FILE, record)
        progress.set_postfix({k: f"{float(v):.3f}" for k, v in logs.items()} | {"tok/s": f"{rate:.0f}"})

    def run(self) -> dict:
        """Train until max_steps or max_minutes; validate every eval_every steps, save every
        save_every_minutes and at every better validation, and once more at the end."""
        cfg = self.cfg
        progress = _progress(self.place.rank, cfg.max_steps, self.step)
        deadline = None if cfg.max_minutes is None else time.monotonic() + cfg.max_minutes * 60 - self.elapsed
        last_save, saved_step = time.monotonic(), self.step  # a resumed run's state is saved already
        window_start, window_tokens = time.monotonic(), 0
        val: dict[str, float] = {}
        while self.step < cfg.max_steps and (deadline is None or time.monotonic() < deadline):
            tick = time.monotonic()
            try:
                grad_norm, logs = self.train_step()
            except TrainingError:
                progress.close()
                raise
            self.elapsed += time.monotonic() - tick
            window_tokens += self.tokens_per_step
            progress.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                self.log_train(grad_norm, logs, window_tokens / max(time.monotonic() - window_start, 1e-9), progress)
                window_start, window_tokens = time.monotonic(), 0
            due_save = time.monotonic() - last_save > cfg.save_every_minutes * 60
            if due_save or self.step % cfg.eval_every == 0:
                val = self.validate()
                if due_save or val.get("nll", math.inf) < self.best:  # a better model is exported as soon as seen
                    self.save(val)
                    last_save, saved_step = time.monotonic(), self.step
        progress.close()
        if not val or (saved_step != self.step and self.step % cfg.eval_every):
            val = self.validate()
        if saved_step != self.step:  # never the same step twice: that would replace the folder LATEST points to
            self.save(val)
        if self.place.world > 1:
            dist.barrier()
        return {"step": self.step, "elapsed_s": self.elapsed, **val}


def train(config: RunConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = False,
          command: str = "") -> dict:
    """Train until max_steps or max_minutes; returns the final validation figures. The caller's config is
    not changed (the run records its data in its own copy)."""
    config = copy.deepcopy(config)
    config.validate()
    return Trainer(config, Path(data_dir), Path(out_dir), resume, command).run()


def _progress(rank: int, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=rank != 0, mininterval=2.0, desc="train")


def training_log(out_dir: str | Path) -> list[dict]:
    """The metrics.jsonl records of a run or checkpoint directory."""
    return read_jsonl(Path(out_dir) / METRICS_FILE)

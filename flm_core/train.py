"""One trainer for every kind (flm, fmlm, mdlm, ar): AdamW, warmup + cosine, clipping, EMA,
bf16 autocast where it helps, periodic validation, atomic checkpoints, exact resume, and DDP
under torchrun.

Determinism: the data order and every random draw of step n come from (seed, n, shard), so a
resumed run repeats an uninterrupted one, and N ranks match one process that accumulates N
shards of the same global batch.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import platform
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from flm_core import objectives
from flm_core.checkpoint import (append_jsonl, atomic_save_tensors, atomic_write_text,
                                 load_tensors, read_jsonl, save_checkpoint, CARD_FILE, METRICS_FILE)
from flm_core.config import RunConfig
from flm_core.data import load_blocks, load_manifest
from flm_core.models import build_network
from flm_core.tokens import MASK_ID

log = logging.getLogger(__name__)
STATE_DIR = "state"
HISTORY_FILE = "history.md"  # a warm-started run's earlier stages, read from the init card when it starts
HISTORY_SECTION = "## Earlier training"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, mismatched resume state, ...)."""


def cpu_has_fast_bf16() -> bool:
    """Only AMX tiles make bf16 matmuls faster than fp32 on a CPU. With AVX512-BF16 alone (this
    project's CPU) `bench-speed` measured the opposite: matmul 166 vs 322 GFLOP/s, FLM training
    2,832 vs 3,841 tokens/s (docs/measurements/speed_cpu_train_*.json)."""
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


def make_objective(config: RunConfig, teacher: nn.Module | None):
    name, obj = config.objective.name, config.objective
    if name == "flm":
        return objectives.flm_loss
    if name == "mdlm":
        return functools.partial(objectives.mdlm_loss, mask_id=MASK_ID)
    if name == "ar":
        return objectives.ar_loss
    loss = objectives.fmlm_semigroup_loss if name == "fmlm-semigroup" else objectives.fmlm_lagrangian_loss
    return lambda net, tokens, gen: loss(net, teacher, tokens, gen, obj.boundary_prob, obj.diagonal_weight)


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
    """Global batch of step n = samples [n B, (n+1) B) of an endless sequence of seeded epoch permutations."""

    def __init__(self, blocks: torch.Tensor, batch_size: int, seed: int):
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
    for stale in out.glob(".*.tmp"):  # an export killed mid-write (checkpoint._atomic's temporary names)
        stale.unlink(missing_ok=True)


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
    as when a resumed run's state replaces the weights anyway), else a fresh FMLM student starts from its
    teacher with the second time embedding zeroed (so it first equals the teacher)."""
    from flm_core.pipeline import load as load_pipeline

    network = build_network(config.model)
    init_from = config.training.init_from if warm_start else None
    if init_from:
        init = load_pipeline(init_from)
        if init.kind != config.kind or init.config.model != config.model:
            raise TrainingError(f"{init_from}: --init-from needs a {config.kind} checkpoint of the same shape, "
                                f"got {init.kind} with {init.config.model}")
        network.load_state_dict(init.network.state_dict())
    if config.kind != "fmlm":
        return network.to(device), None
    teacher_pipe = load_pipeline(config.objective.teacher, device=str(device))
    if teacher_pipe.kind != "flm":
        raise TrainingError(f"{config.objective.teacher}: the teacher must be an FLM checkpoint, "
                            f"not {teacher_pipe.kind}")
    teacher = teacher_pipe.network.requires_grad_(False)
    if not init_from:
        student_state = network.state_dict()
        student_state.update({k: v for k, v in teacher.state_dict().items() if k in student_state})
        network.load_state_dict(student_state)
        network.zero_init_second_time()
    return network.to(device), teacher


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def earlier_stages(card: str) -> list[str]:
    """The stages behind a model card's weights, oldest first, each one line: the card's own earlier
    stages, then the run the card describes (its command, steps and tokens, hardware)."""
    header = card.split("\n## ")[0]  # the lines above the first section (not the benchmark's samples)
    own = {}
    for line in header.splitlines():
        for key in ("command", "steps", "hardware"):
            if line.startswith(f"- {key}: "):
                own.setdefault(key, line.split(": ", 1)[1])
    _, _, section = card.partition(HISTORY_SECTION)
    stages = [line for line in section.split("\n## ")[0].splitlines() if line.startswith("- stage ")]
    if "command" in own:
        last = int(stages[-1].split()[2].rstrip(":")) if stages else 0
        stages.append(f"- stage {last + 1}: {own['command']}; steps: {own.get('steps', '?')}; "
                      f"{own.get('hardware', '?')}")
    return stages


def _record_history(out: Path, init_from: str) -> None:
    """Keep the init checkpoint's stages in the run (once, at the start: the init folder may later be
    overwritten by this run's own export, as scripts/continue_shipped.sh does)."""
    card = Path(init_from) / CARD_FILE
    stages = earlier_stages(card.read_text(encoding="utf-8")) if card.is_file() else []
    if stages:
        atomic_write_text(out / HISTORY_FILE, "\n".join(stages) + "\n")


def _write_card(out: Path, config: RunConfig, n_params: int, step: int, elapsed: float, val: dict, tokens_seen: int,
                device: torch.device, bf16: bool, command: str) -> None:
    card = f"""# {config.kind.upper()} checkpoint

- kind: `{config.kind}`, objective `{config.objective.name}`
- data: `{config.data.get('source', '?')}` ({config.data.get('data_dir', '?')}), vocab {config.model.vocab_size}, length {config.model.seq_len}
- size: {n_params:,} parameters (hidden {config.model.hidden_size}, {config.model.n_blocks} blocks, {config.model.n_heads} heads)
- command: `{command}`
- steps: {step}, tokens seen: {tokens_seen:,}, wall time: {elapsed / 60:.1f} min
- hardware: {_hardware(device)}, precision {'bf16' if bf16 else 'fp32'}
{f"- initialised from: `{config.training.init_from}` (steps and tokens above count this run only){chr(10)}" if config.training.init_from else ""}- validation: {json.dumps({k: round(v, 4) for k, v in val.items()})}

Weights are the EMA weights (decay {config.training.ema}). Training log: `metrics.jsonl`.
"""
    history = out / HISTORY_FILE
    if history.is_file():
        card += (f"\n{HISTORY_SECTION}\n\nThe stages that trained the weights this run started from, oldest "
                 f"first (this run, above, is the next):\n\n{history.read_text(encoding='utf-8')}")
    atomic_write_text(out / CARD_FILE, card)


@torch.no_grad()
def evaluate_loss(module: ObjectiveModule, blocks: torch.Tensor, batch_size: int, batches: int, seed: int,
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


def train(config: RunConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = False,
          command: str = "") -> dict:
    """Train until max_steps or max_minutes; returns the final validation figures."""
    cfg = config.training
    config.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    shards = world * cfg.grad_accum
    if cfg.batch_size % shards:
        raise TrainingError(f"batch_size {cfg.batch_size} must divide into {world} ranks x {cfg.grad_accum} accumulation steps")
    out = Path(out_dir)
    manifest = load_manifest(data_dir)
    train_blocks, val_blocks = load_blocks(data_dir, "train"), load_blocks(data_dir, "val")
    if train_blocks.shape[1] != config.model.seq_len:
        raise TrainingError(f"{data_dir}: blocks have length {train_blocks.shape[1]}, the model expects {config.model.seq_len}")
    tokenizer_json = (Path(data_dir) / "tokenizer.json").read_text(encoding="utf-8")

    torch.manual_seed(cfg.seed)
    resuming = resume and (out / STATE_DIR / "LATEST").is_file()
    network, teacher = build_student(config, device, warm_start=not resuming)
    module = ObjectiveModule(network, make_objective(config, teacher))
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, betas=(0.9, 0.98),
                                  weight_decay=cfg.weight_decay)
    ema = EMA(network, cfg.ema)
    step, elapsed, best = 0, 0.0, math.inf
    if resuming:
        step, elapsed, best = _load_state(out, network, ema, optimizer)
        log.info("resumed %s at step %d", out, step)
    elif rank == 0 and out.exists() and (out / STATE_DIR).exists():
        raise TrainingError(f"{out} already holds a training run: pass --resume to continue it or choose a new --out")
    runner = nn.parallel.DistributedDataParallel(module) if world > 1 else module
    if cfg.compile:
        runner = torch.compile(runner)
    bf16 = use_bf16(cfg.precision, device)
    schedule = BatchSchedule(train_blocks, cfg.batch_size, cfg.seed)
    tokens_per_step = cfg.batch_size * config.model.seq_len
    log.info("training %s: %s parameters on %s (%s), %d ranks", config.kind,
             f"{sum(p.numel() for p in network.parameters()):,}", device, "bf16" if bf16 else "fp32", world)

    def save(val: dict[str, float]) -> None:
        """Training state always; the exported EMA weights only when validation NLL improved."""
        nonlocal best
        if rank != 0:
            return
        improved = "nll" not in val or val["nll"] <= best
        best = min(best, val.get("nll", best))
        _save_state(out, step, network, ema, optimizer, elapsed, config, best)
        if improved:
            export = build_network(config.model)
            ema.copy_to(export)
            save_checkpoint(out, config, export, tokenizer_json)
            _write_card(out, config, sum(p.numel() for p in export.parameters()), step, elapsed, val,
                        step * tokens_per_step, device, bf16, command)

    def validate() -> dict[str, float]:
        live = {k: v.clone() for k, v in network.state_dict().items()}
        ema.copy_to(network)
        val = evaluate_loss(module, val_blocks, cfg.batch_size, cfg.eval_batches, cfg.seed, device, bf16)
        network.load_state_dict(live)
        if rank == 0:
            append_jsonl(out / METRICS_FILE, {"step": step, "split": "val", "elapsed_s": round(elapsed, 2),
                                              **{k: round(v, 5) for k, v in val.items()}})
        return val

    out.mkdir(parents=True, exist_ok=True)
    if rank == 0 and cfg.init_from and not resuming:
        _record_history(out, cfg.init_from)
    config.data = {"source": manifest.get("source"), "data_dir": str(data_dir),
                   "train_tokens": int(train_blocks.numel())}
    progress = _progress(rank, cfg.max_steps, step)
    deadline = None if cfg.max_minutes is None else time.monotonic() + cfg.max_minutes * 60 - elapsed
    last_save, saved_step = time.monotonic(), step  # a resumed run's state is saved already
    window_start, window_tokens = time.monotonic(), 0
    val: dict[str, float] = {}
    while step < cfg.max_steps and (deadline is None or time.monotonic() < deadline):
        tick = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        logs_sum: dict[str, torch.Tensor] = {}
        for micro in range(cfg.grad_accum):
            shard = rank * cfg.grad_accum + micro
            torch.manual_seed(step_seed(cfg.seed, step, shard))  # dropout draws: per shard, as the noise
            tokens = schedule.shard(step, shard, shards).to(device)
            generator = torch.Generator(device=device).manual_seed(step_seed(cfg.seed, step, shard))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, logs = runner(tokens, generator)
            (loss / cfg.grad_accum).backward()
            for k, v in logs.items():
                logs_sum[k] = logs_sum.get(k, 0) + v / cfg.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
        if not torch.isfinite(grad_norm):
            progress.close()
            raise TrainingError(f"non-finite loss or gradient at step {step}: stopped; the last good checkpoint "
                                f"in {out} is intact (try a lower --lr)")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(network)
        step += 1
        elapsed += time.monotonic() - tick
        window_tokens += tokens_per_step
        progress.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            rate = window_tokens / max(time.monotonic() - window_start, 1e-9)
            record = {"step": step, "split": "train", "lr": lr_at(step - 1, cfg), "tokens_per_s": round(rate, 1),
                      "elapsed_s": round(elapsed, 2), "grad_norm": round(float(grad_norm), 4),
                      **{k: round(float(v), 5) for k, v in logs_sum.items()}}
            if rank == 0:
                append_jsonl(out / METRICS_FILE, record)
            progress.set_postfix({k: f"{float(v):.3f}" for k, v in logs_sum.items()} | {"tok/s": f"{rate:.0f}"})
            window_start, window_tokens = time.monotonic(), 0
        due_save = time.monotonic() - last_save > cfg.save_every_minutes * 60
        if due_save or step % cfg.eval_every == 0:
            val = validate()
            if due_save or val.get("nll", math.inf) < best:  # a better model is exported as soon as it is seen
                save(val)
                last_save, saved_step = time.monotonic(), step
    progress.close()
    if not val or (saved_step != step and step % cfg.eval_every):
        val = validate()
    if saved_step != step:  # never the same step twice: that would replace the folder LATEST points to
        save(val)
    if world > 1:
        dist.barrier()
    return {"step": step, "elapsed_s": elapsed, **val}


def _progress(rank: int, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=rank != 0, mininterval=2.0, desc="train")


def training_log(out_dir: str | Path) -> list[dict]:
    """The metrics.jsonl records of a run or checkpoint directory."""
    return read_jsonl(Path(out_dir) / METRICS_FILE)

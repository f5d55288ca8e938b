"""`python -m flm_core SUBCOMMAND`: prepare-data, train {flm,fmlm,mdlm,ar}, export, sample, download, evaluate,
bench, bench-speed.

Every failure prints one line naming the cause and exits with status 2 (no traceback).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import shlex
import sys

from flm_core.config import MODEL_PRESETS, TRAINING_PRESETS, ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from flm_core.errors import one_line
from flm_core.kinds import KINDS, kind_of
from flm_core.objectives import AUTHORS_BOUNDARY_PROB

log = logging.getLogger("flm_core")

def _prepare_data(args: argparse.Namespace) -> None:
    from flm_core.data import DATA_PRESETS, DEFAULT_SOURCE, prepare

    settings = {"source": args.source, "tokenizer": args.tokenizer, "seq_len": args.seq_len}
    if args.preset:  # the preset fills what the command line left out
        settings = {k: v if v is not None else DATA_PRESETS[args.preset][k] for k, v in settings.items()}
        if args.vocab_size is not None and args.tokenizer is None:
            raise ValueError(f"--preset {args.preset} uses the {settings['tokenizer']} tokenizer: drop --vocab-size")
    manifest = prepare(settings["source"] or DEFAULT_SOURCE, args.out, vocab_size=args.vocab_size,
                       seq_len=settings["seq_len"], val_fraction=args.val_fraction, seed=args.seed,
                       tokenizer=settings["tokenizer"], streaming=args.streaming,
                       tokenizer_sample_chars=args.tokenizer_sample_chars, shard_tokens=args.shard_tokens)
    print(json.dumps({k: manifest[k] for k in ("source", "counts") if k in manifest}, indent=2))


def _run_config(args: argparse.Namespace) -> RunConfig:
    from flm_core.data import DATA_PRESETS, load_manifest
    from flm_core.tokens import is_foreign, load_tokenizer

    spec = kind_of(args.kind)
    manifest = load_manifest(args.data)
    tokenizer = load_tokenizer(args.data)
    if spec.own_special_ids and is_foreign(tokenizer):
        raise ValueError(f"train {args.kind} needs flm_core's own special tokens (mask, separator), which "
                         f"{args.data}'s tokenizer lacks: prepare the data without --tokenizer, or train flm/fmlm")
    vocab_size = tokenizer.get_vocab_size()
    preset = TRAINING_PRESETS.get(args.preset)
    if preset and preset["kind"] != args.kind:
        raise ValueError(f"--preset {args.preset} is the paper's {preset['kind']} run; their {args.kind} runs use "
                         "other settings (docs/recipe.md sections 2 and 7): pass --preset small and the flags you want")
    model = dict(MODEL_PRESETS[preset["model"] if preset else args.preset])
    for name in ("hidden_size", "n_blocks", "n_heads", "cond_dim", "dropout"):
        if getattr(args, name) is not None:
            model[name] = getattr(args, name)
    seq_len = manifest["settings"]["seq_len"]
    if preset and seq_len != DATA_PRESETS[args.preset]["seq_len"]:
        log.warning("--preset %s is the paper's run at length %d; %s has blocks of %d (prepare-data --preset %s "
                    "gives the paper's data)", args.preset, DATA_PRESETS[args.preset]["seq_len"], args.data, seq_len,
                    args.preset)
    learnable_loss_weighting = args.learnable_loss_weighting
    self_condition = args.self_condition
    if args.init_from:  # a warm start keeps the shape (and dropout) of the checkpoint it continues
        init = _checkpoint_config(args.init_from)  # its kind is checked by the trainer
        shape = ("hidden_size", "n_blocks", "n_heads", "cond_dim", "dropout")
        given = [f"--{k.replace('_', '-')}" for k in shape if getattr(args, k) is not None]
        if given or args.learnable_loss_weighting:
            given += ["--learnable-loss-weighting"] if args.learnable_loss_weighting else []
            raise ValueError(f"--init-from {args.init_from} fixes the model's shape: drop {', '.join(given)}")
        _require_data_tokenizer("--init-from", args.init_from, args.data)
        model = {k: getattr(init.model, k) for k in shape}
        learnable_loss_weighting = init.model.learnable_loss_weighting
        self_condition = args.self_condition or init.model.self_condition  # the flag may switch it on
    elif spec.two_times:  # a flow map starts from its teacher's shape
        teacher = _checkpoint_config(args.teacher)  # the weights are read once, by the trainer
        model = {k: getattr(teacher.model, k) for k in ("hidden_size", "n_blocks", "n_heads", "cond_dim")}
        model["dropout"] = 0.0 if args.dropout is None else args.dropout  # targets come from the student itself
    if spec.two_times:  # with or without --init-from, the teacher's ids must be the data's
        _require_data_tokenizer("--teacher", args.teacher, args.data)
    if args.first_stage:
        _require_data_tokenizer("--first-stage", args.first_stage, args.data)
    name = f"{spec.name}-{args.objective}" if spec.two_times else spec.objective_names[0]
    objective = ObjectiveConfig(
        name=name, boundary_prob=AUTHORS_BOUNDARY_PROB.get(name, 0.1) if args.boundary_prob is None else args.boundary_prob,
        teacher=args.teacher if spec.two_times else None, teacher_self_condition=args.teacher_self_condition,
        first_stage=args.first_stage if spec.two_times else None)
    training = TrainConfig(**{**(preset["training"] if preset else {}),  # flags given override the preset
                              **{k: v for k, v in vars(args).items()
                                 if k in TrainConfig.__dataclass_fields__ and v is not None}})
    return RunConfig(kind=args.kind, objective=objective, training=training,
                     model=ModelConfig(vocab_size=vocab_size, seq_len=seq_len, causal=spec.causal,
                                       double_time=spec.two_times,
                                       learnable_loss_weighting=learnable_loss_weighting,
                                       self_condition=self_condition, **model))


def _checkpoint_config(directory: str) -> RunConfig:
    from pathlib import Path

    from flm_core.checkpoint import CONFIG_FILE

    return RunConfig.load(Path(directory) / CONFIG_FILE)


def _require_data_tokenizer(flag: str, directory: str, data: str) -> None:
    """A checkpoint that starts or teaches a run must share the data's tokenizer (same ids, same K)."""
    from pathlib import Path

    from flm_core.checkpoint import TOKENIZER_FILE
    from flm_core.tokens import load_tokenizer

    theirs, ours = load_tokenizer(Path(directory) / TOKENIZER_FILE), load_tokenizer(data)
    if theirs.to_str() != ours.to_str():
        raise ValueError(f"{flag} {directory} was trained with another tokenizer than {data} (vocabulary "
                         f"{theirs.get_vocab_size()} vs {ours.get_vocab_size()}): use the data folder that "
                         "checkpoint was trained on, or a checkpoint trained on this data")


def _train(args: argparse.Namespace) -> None:
    from flm_core.train import saved_run_config, train

    if kind_of(args.kind).two_times and not args.teacher:
        raise ValueError(f"train {args.kind} needs --teacher DIR (an FLM checkpoint directory)")
    if args.first_stage and not kind_of(args.kind).two_times:
        raise ValueError(f"--first-stage is for `train fmlm --objective two-network`, not train {args.kind}")
    config = saved_run_config(args.out) if args.resume else None
    if config is not None:
        for name in ("max_steps", "max_minutes"):
            if getattr(args, name) is not None:
                setattr(config.training, name, getattr(args, name))
    else:
        config = _run_config(args)
    command = "python -m flm_core " + " ".join(shlex.quote(a) for a in args.argv)
    result = train(config, args.data, args.out, resume=args.resume, command=command)
    print(json.dumps(result))


def _sample(args: argparse.Namespace) -> None:
    from flm_core.pipeline import load

    pipe = load(args.checkpoint, device=args.device, guide=args.guide)
    if pipe.sampler.num_steps(args.steps) != args.steps:  # stderr: --json keeps stdout one JSON object
        print(f"note: an {pipe.spec.label} model makes {pipe.sampler.num_steps(args.steps)} network calls whatever "
              f"--steps says (asked {args.steps})", file=sys.stderr)
    gen = pipe.generate(args.num_samples, args.steps, seed=args.seed, prefix=args.prefix, suffix=args.suffix,
                        renoise=args.renoise, guidance=args.guidance)
    if args.json:
        out = {"kind": gen.kind, "checkpoint": args.checkpoint, "steps": gen.steps, "nfe": gen.nfe,
               "seconds": gen.seconds, "texts": gen.texts, "token_ids": gen.tokens.tolist()}
        if gen.renoise:  # the sampler knobs, where used (the contract's keys stay the default output)
            out["renoise"] = gen.renoise
        if gen.guide is not None:
            out.update(guidance=gen.guidance, guide=gen.guide)
        print(json.dumps(out))
        return
    for i, text in enumerate(gen.texts):
        print(f"--- sample {i}\n{text}")
    print(f"--- {gen.kind}: {gen.nfe} network calls, {gen.seconds:.3f} s, {gen.tokens_per_second:.0f} tokens/s")


def _export(args: argparse.Namespace) -> None:
    from flm_core.checkpoint import export_checkpoint

    export_checkpoint(args.checkpoint, args.out, half=not args.fp32)
    print(args.out)


def _download(args: argparse.Namespace) -> None:
    from flm_core.download import download_all

    for folder in download_all(args.ids):
        print(folder)


def _reproduce(args: argparse.Namespace) -> None:
    from pathlib import Path

    from flm_core.checkpoint import atomic_write_text
    from flm_core.paper import markdown, reproduce

    def show(row: dict) -> None:
        print(f"{row['model']} {row['steps']} steps: Gen PPL {row['gen_ppl']:.2f}, entropy {row['entropy']:.3f}, "
              f"{row['seconds']:.1f} s", file=sys.stderr, flush=True)

    result = reproduce(args.table, evaluator=args.evaluator, num_samples=args.num_samples, batch_size=args.batch_size,
                       seed=args.seed, device=args.device, flm_steps=args.flm_steps, report=show)
    if args.out:
        atomic_write_text(Path(args.out) / f"reproduce_{args.table}.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(Path(args.out) / f"reproduce_{args.table}.md", markdown(result))
    print(markdown(result))


def _evaluate(args: argparse.Namespace) -> None:
    from flm_core.bench import evaluate_checkpoint, format_evaluation

    result = evaluate_checkpoint(args.checkpoint, args.data, steps=args.steps, num_samples=args.num_samples,
                                 seed=args.seed, evaluator=args.evaluator, mauve=not args.no_mauve,
                                 device=args.device, renoise=args.renoise, guide=args.guide,
                                 guidance=args.guidance)
    print(json.dumps(result) if args.json else format_evaluation(result))


def _bench(args: argparse.Namespace) -> None:
    from flm_core.bench import run_bench, speedup_sentence, update_model_cards, write_outputs

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run_bench(args.checkpoints, args.data, evaluator=args.evaluator, steps=args.steps,
                       max_steps=args.max_steps, num_samples=args.num_samples, seed=args.seed,
                       repeats=args.repeats, mauve=not args.no_mauve, device=args.device, renoise=args.renoise,
                       guide=args.guide, guidance=args.guidance)
    paths = write_outputs(result, args.out, args.name)
    if args.update_cards:
        paths["cards"] = update_model_cards(result)
    for s in result["speedups"]:
        print(speedup_sentence(s))
    print(json.dumps(paths))


def _speed_steps(path: str, steps: list[int]) -> list[int]:
    """The step counts worth timing for a checkpoint: one for a kind whose sampler ignores them (AR)."""
    try:
        fixed = kind_of(_checkpoint_config(path).kind).fixed_steps
    except (OSError, ValueError):  # not one of our checkpoint folders (a released one): time every count
        fixed = False
    return steps[:1] if fixed else steps


def _bench_speed(args: argparse.Namespace) -> None:
    """Each timing is a task; the JSON (--out) is rewritten after every task, so a stopped run keeps what
    it measured. A progress bar with an ETA goes to stderr."""
    from pathlib import Path

    import torch
    from tqdm.auto import tqdm

    from flm_core import speed
    from flm_core.checkpoint import atomic_write_text
    from flm_core.environment import hardware
    from flm_core.pipeline import load
    from flm_core.train import use_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = use_bf16(args.precision, device)
    result = {"device": hardware(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "complete": False, "sampling": [], "training": []}
    loaded = functools.lru_cache(maxsize=1)(lambda path: load(path, device=args.device))  # one model resident
    tasks = [("sampling", lambda c=path, n=steps: speed.sampler_overhead(loaded(c), args.batch, n, args.repeats))
             for path in args.checkpoints for steps in _speed_steps(path, args.steps)]
    tasks += [("training", lambda k=kind, c=compiled: speed.training_throughput(
                  k, args.train_preset, args.vocab_size, args.seq_len, args.train_batch, args.train_steps, device,
                  bf16, c))
              for kind in args.train_kinds for compiled in ((False, True) if args.train_compile else (False,))]
    for section, task in tqdm(tasks, desc="bench-speed", unit="timing"):
        row = task()
        result[section].append(row)
        print(json.dumps(row), flush=True)
        result["peak_memory_mb"] = speed.peak_memory_mb(device)
        result["complete"] = len(result["sampling"]) + len(result["training"]) == len(tasks)
        if args.out:
            atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")


def _guidance_arguments(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--guide", help=f"autoguidance: a weaker checkpoint of the same kind and tokenizer ({who})")
    p.add_argument("--guidance", type=float, default=1.0,
                   help="autoguidance weight w: logits l_guide + w (l_model - l_guide); 1 (default): no guidance")


def build_parser() -> argparse.ArgumentParser:
    from flm_core.data import (DATA_PRESETS, DEFAULT_SEQ_LEN, DEFAULT_SOURCE, DEFAULT_VOCAB_SIZE,
                               TOKENIZER_SAMPLE_CHARS)
    from flm_core.shards import SHARD_TOKENS
    from flm_core.schedule import STEP_GRID

    parser = argparse.ArgumentParser(prog="python -m flm_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-data", help="corpus -> tokenizer + packed token blocks in shards (streamed)")
    p.add_argument("--source", default=None,
                   help=f"{DEFAULT_SOURCE} (default), a .txt/.jsonl file or folder, lm1b/openwebtext/hf:NAME, or a "
                        "synthetic language: toy:story, toy:align (generated, no files)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--preset", choices=sorted(DATA_PRESETS),
                   help="the paper's data: source, tokenizer and block length (flags given override it)")
    p.add_argument("--tokenizer", default=None,
                   help="use this tokenizer instead of training one: bert-base-uncased, gpt2 or a tokenizer.json")
    p.add_argument("--vocab-size", type=int, default=None,
                   help=f"BPE vocabulary to train (default {DEFAULT_VOCAB_SIZE}; a toy language fixes its own)")
    p.add_argument("--seq-len", type=int, default=None,
                   help=f"block length (default {DEFAULT_SEQ_LEN}; a toy language's own length)")
    p.add_argument("--val-fraction", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--streaming", action="store_true",
                   help="hf:NAME: read the dataset from the Hub as it goes instead of the local HF cache")
    p.add_argument("--tokenizer-sample-chars", type=int, default=TOKENIZER_SAMPLE_CHARS,
                   help="a trained tokenizer learns from the first this many characters of train documents")
    p.add_argument("--shard-tokens", type=int, default=SHARD_TOKENS, help="tokens per on-disk shard")
    p.set_defaults(func=_prepare_data)

    p = sub.add_parser("train", help="train a model of one kind")
    p.add_argument("kind", choices=list(KINDS))
    p.add_argument("--data", required=True, help="folder written by prepare-data")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--preset", choices=sorted(MODEL_PRESETS) + sorted(TRAINING_PRESETS), default="cpu",
                   help="model size (cpu, small, tiny), or one of the paper's runs: its model size and training "
                        "settings (flags given override them; prepare the data with the same --preset)")
    for name, kind in (("hidden-size", int), ("n-blocks", int), ("n-heads", int), ("cond-dim", int),
                       ("dropout", float)):
        p.add_argument(f"--{name}", type=kind, default=None, help="override the preset")
    p.add_argument("--learnable-loss-weighting", action="store_true")
    p.add_argument("--self-condition", action="store_true",
                   help="flm: the network also reads its previous estimate D (training: a no-grad first pass on "
                        "half the rows, zeros on the others; sampling: the previous step's D); with --init-from "
                        "the new input starts at zero, so the run starts from the checkpoint's function")
    p.add_argument("--teacher", help="fmlm: FLM checkpoint directory to distil")
    p.add_argument("--init-from", help="checkpoint directory of the same kind whose weights, shape and tokenizer "
                                       "start the run (a warm start: fresh optimizer and step count)")
    p.add_argument("--objective", choices=["semigroup", "lagrangian", "residual", "two-network"], default="semigroup",
                   help="fmlm objective: ours (semigroup, lagrangian), or the authors' two stages: residual (a "
                        "second-order term over the teacher's Euler step, not a sampler on its own) then two-network "
                        "(one flow map regressed onto it, with --first-stage)")
    p.add_argument("--first-stage", help="fmlm --objective two-network: the residual checkpoint to distil (trained "
                                         "with --objective residual from the same --teacher)")
    p.add_argument("--boundary-prob", type=float, default=None,
                   help="fmlm: probability of (s, t) = (0, 1); default 0.1, the authors' 1/64 (residual) and 1/128 "
                        "(two-network)")
    p.add_argument("--teacher-self-condition", action=argparse.BooleanOptionalAction, default=True,
                   help="fmlm with a self-conditioned teacher: its targets are its second pass, which reads its own "
                        "first pass as the estimate (two teacher calls); --no-teacher-self-condition: the first pass")
    for name, kind in (("batch-size", int), ("grad-accum", int), ("lr", float), ("warmup-steps", int),
                       ("max-steps", int), ("max-minutes", float), ("min-lr-ratio", float), ("weight-decay", float),
                       ("adam-beta2", float), ("ema", float),
                       ("eval-every", int), ("eval-batches", int), ("save-every-minutes", float),
                       ("log-every", int), ("seed", int)):
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the training step")
    p.set_defaults(func=_train)

    p = sub.add_parser("bench-speed", help="sampler overhead, trajectory cost, training throughput and MFU")
    p.add_argument("--checkpoints", nargs="*", default=[], help="checkpoint dirs whose samplers to time")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 32])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="rounds per sampler timing (medians)")
    p.add_argument("--train-kinds", nargs="*", default=["flm", "ar"], choices=["flm", "flm-dense", "mdlm", "ar"],
                   help="flm-dense: the FLM loss with K-wide noise instead of the low-rank draw")
    p.add_argument("--train-preset", choices=sorted(MODEL_PRESETS), default="cpu")
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--train-steps", type=int, default=3, help="timed optimizer steps (after 2 warm-up)")
    p.add_argument("--train-compile", action="store_true", help="time the training step under torch.compile too")
    p.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    p.add_argument("--seq-len", type=int, default=DEFAULT_SEQ_LEN)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--out", help="write the JSON results here")
    p.set_defaults(func=_bench_speed)

    p = sub.add_parser("export", help="copy a run's inference checkpoint (fp16 weights, card, log)")
    p.add_argument("--checkpoint", required=True, help="run directory written by train")
    p.add_argument("--out", required=True, help="destination checkpoint directory")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights")
    p.set_defaults(func=_export)

    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--num-samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--prefix", default="", help="text every sample starts with (after a document start)")
    p.add_argument("--suffix", default="", help="text every sample ends with")
    p.add_argument("--renoise", type=float, default=0.0,
                   help="flows: share eta in [0, 1] of fresh noise per step (0: the deterministic sampler)")
    _guidance_arguments(p, "FLM or FMLM")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_sample)

    p = sub.add_parser("download", help="the authors' released checkpoints into the Hugging Face cache (verified)")
    p.add_argument("ids", nargs="+", help="david3684/FLM-B-LM1B, FMLM-B-LM1B, FLM-B-OWT, FMLM-B-OWT (owner optional), "
                                          "or all")
    p.set_defaults(func=_download)

    p = sub.add_parser("reproduce", help="the paper's Gen PPL table from the authors' checkpoints, scored as "
                                         "their scripts score (docs/recipe.md)")
    p.add_argument("table", choices=["lm1b", "owt"], help="lm1b: FMLM-B-LM1B at 1/2/4/8 steps, FLM-B-LM1B at 1024")
    p.add_argument("--evaluator", default="gpt2-large", help="Hub id or local folder of a causal LM (the paper's "
                                                             "gpt2-large by default)")
    p.add_argument("--num-samples", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=64, help="samples per generate call")
    p.add_argument("--seed", type=int, default=1, help="their scripts' seed=1")
    p.add_argument("--flm-steps", type=int, nargs="+", help="replace the FLM's 1024 steps (a quick look on a CPU)")
    p.add_argument("--device", default="cpu", help="cuda on a GPU machine")
    p.add_argument("--out", help="folder for reproduce_TABLE.json and .md")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("evaluate", help="sample from a checkpoint and score the samples")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="prepared data folder (training n-grams, words, validation); a toy-language "
                                  "model needs none (its language's checker scores it)")
    p.add_argument("--evaluator", help="AR checkpoint, local Hugging Face causal LM folder, or a Hub id "
                                       "(gpt2-large: the cache, else downloaded) for Gen PPL")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-mauve", action="store_true", help="skip MAUVE (needs mauve-text and the MiniLM encoder)")
    p.add_argument("--renoise", type=float, default=0.0,
                   help="flows: share eta in [0, 1] of fresh noise per step (0: the deterministic sampler)")
    _guidance_arguments(p, "FLM or FMLM")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("bench", help="quality and speed of checkpoints x step counts -> OUT/benchmarks.*")
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--data", help="prepared data folder (not needed for toy-language models)")
    p.add_argument("--evaluator", help="AR checkpoint, local Hugging Face causal LM folder, or a Hub id "
                                       "(gpt2-large: the cache, else downloaded) for Gen PPL")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEP_GRID))
    p.add_argument("--max-steps", type=int, default=None, help="skip step counts above this")
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per setting after one warm-up")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--renoise", type=float, default=0.0,
                   help="flows (MDLM and AR run as usual): share eta in [0, 1] of fresh noise per step (0: the deterministic sampler)")
    _guidance_arguments(p, "guides the checkpoints of its kind; the others run unguided")
    p.add_argument("--no-mauve", action="store_true")
    p.add_argument("--out", required=True, help="folder for NAME.json/.md/.html/.plotly.json")
    p.add_argument("--name", default="benchmarks", help="file name stem (the toy models' table: benchmarks-toy)")
    p.add_argument("--update-cards", action="store_true",
                   help="rewrite the Benchmark section (figures + unedited samples) of each checkpoint's README.md")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in the model card
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI contract: one line, no traceback
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0

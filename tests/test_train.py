"""The trainer end to end on the tiny data folder: learning, exact resume, refusal to overwrite,
DDP equivalence, the NaN guard, and FMLM distillation from an FLM teacher."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import flm_core
from flm_core import train as train_module
from flm_core.checkpoint import WEIGHTS_FILE, save_checkpoint
from flm_core.cli import main
from flm_core.config import RunConfig
from flm_core.models import build_network
from flm_core.pipeline import Pipeline
from flm_core.cards import read_card_data
from flm_core.train import STATE_DIR, TrainingError, build_student, training_log

REPO = Path(__file__).resolve().parents[1]


def state_tensors(out: Path) -> dict[str, torch.Tensor]:
    latest = (out / STATE_DIR / "LATEST").read_text().strip()
    return load_file(str(out / STATE_DIR / latest / "tensors.safetensors"))


def snapshot(out: Path, skip=("metrics.jsonl",)) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in skip}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("WORLD_SIZE", None), env.pop("RANK", None), env.pop("LOCAL_RANK", None)
    return env


# ------------------------------------------------------------------ (1) it learns, and the result loads


def test_flm_training_reduces_the_loss_and_the_checkpoint_samples(tiny_data, tmp_path, tiny_train_args, capsys):
    out = tmp_path / "flm"
    code = main(tiny_train_args("flm", tiny_data, out, "--max-steps", "40", "--lr", "3e-3", "--warmup-steps", "5"))
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 40 and "nll" in result
    records = [r for r in training_log(out) if r["split"] == "train"]
    assert [r["step"] for r in records] == list(range(1, 41))
    first, last = records[0]["nll"], sum(r["nll"] for r in records[-5:]) / 5
    assert abs(first - torch.log(torch.tensor(300.0)).item()) < 0.1  # starts at ~log K (zero-init output)
    assert last < first - 0.8, (first, last)
    val = [r for r in training_log(out) if r["split"] == "val"]
    assert val and val[-1]["nll"] < first - 0.8
    for name in ("config.json", WEIGHTS_FILE, "tokenizer.json", "README.md"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "steps: 40" in card and "train flm" in card
    pipe = flm_core.load(out)
    assert pipe.kind == "flm" and pipe.seq_len == 16
    gen = pipe.generate(2, 4, seed=0)
    assert gen.tokens.shape == (2, 16) and len(gen.texts) == 2 and gen.nfe == 4


@pytest.mark.parametrize("kind", ["mdlm", "ar"])
def test_baselines_train_and_sample(tiny_data, tmp_path, tiny_train_args, kind):
    out = tmp_path / kind
    assert main(tiny_train_args(kind, tiny_data, out, "--max-steps", "3", "--lr", "3e-3")) == 0
    pipe = flm_core.load(out)
    assert pipe.kind == kind
    gen = pipe.generate(2, 3, seed=1)
    assert gen.tokens.shape == (2, 16)
    assert all(r["nll"] > 0 for r in training_log(out) if "nll" in r)


# ------------------------------------------------------------------ (2) exact resume


def test_resume_with_a_longer_max_steps_repeats_an_uninterrupted_run(tiny_data, tmp_path, tiny_train_args):
    """A: 20 steps straight. B: 10 steps, then --resume to 20. Same weights, EMA and optimizer state.
    (min_lr_ratio 1 keeps the learning rate independent of max_steps; dropout > 0 checks the RNG.)"""
    common = ("--lr", "3e-3", "--warmup-steps", "5", "--min-lr-ratio", "1.0", "--dropout", "0.1")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args("flm", tiny_data, a, "--max-steps", "20", *common)) == 0
    assert main(tiny_train_args("flm", tiny_data, b, "--max-steps", "10", *common)) == 0
    assert state_tensors(b).keys() == state_tensors(a).keys()
    assert not torch.equal(state_tensors(b)["model.vocab_embed.embedding"],
                           state_tensors(a)["model.vocab_embed.embedding"])
    assert main(["train", "flm", "--data", str(tiny_data), "--out", str(b), "--resume", "--max-steps", "20"]) == 0
    sa, sb = state_tensors(a), state_tensors(b)
    assert sa.keys() == sb.keys() and any(k.startswith("opt.") for k in sa)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    wa, wb = load_file(str(a / WEIGHTS_FILE)), load_file(str(b / WEIGHTS_FILE))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    steps = [r["step"] for r in training_log(b) if r["split"] == "train"]
    assert steps == list(range(1, 21))


def test_resume_after_an_interruption_repeats_an_uninterrupted_run(tiny_data, tmp_path, tiny_train_args,
                                                                   monkeypatch):
    """A crash after the state of step 7 was saved; --resume with the same settings (cosine decay)."""
    common = ("--max-steps", "12", "--lr", "3e-3", "--warmup-steps", "3", "--dropout", "0.1")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args("flm", tiny_data, a, *common)) == 0
    original = train_module._save_state

    def crash_after_step_7(out, step, *args, **kwargs):
        original(out, step, *args, **kwargs)
        if step == 7:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(train_module, "_save_state", crash_after_step_7)
    assert main(tiny_train_args("flm", tiny_data, b, *common, "--save-every-minutes", "0")) == 2
    assert (b / STATE_DIR / "LATEST").read_text().strip() == "step_000000007"
    monkeypatch.setattr(train_module, "_save_state", original)
    assert main(tiny_train_args("flm", tiny_data, b, *common, "--resume")) == 0
    sa, sb = state_tensors(a), state_tensors(b)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ------------------------------------------------------------------ (3) no silent overwrite


def test_the_exported_weights_are_those_of_the_best_validation(tiny_data, tmp_path, tiny_train_args, monkeypatch):
    """Validation every 2 steps with scripted NLLs 3.0, 2.0, 2.5, 2.7 (no timed save in between): the
    export is step 4's, the best, not the last one's (before, only timed and final saves could export)."""
    scripted = iter([3.0, 2.0, 2.5, 2.7])
    monkeypatch.setattr(train_module, "evaluate_loss", lambda *args, **kwargs: {"nll": next(scripted)})
    out = tmp_path / "run"
    assert main(tiny_train_args("flm", tiny_data, out, "--max-steps", "8", "--eval-every", "2",
                                "--save-every-minutes", "60")) == 0
    card = (out / "README.md").read_text()
    assert "- steps: 4," in card and '"nll": 2.0' in card
    assert [r["nll"] for r in training_log(out) if r["split"] == "val"] == [3.0, 2.0, 2.5, 2.7]


def test_refuses_to_overwrite_an_existing_run(tiny_data, tmp_path, tiny_train_args, capsys):
    out = tmp_path / "run"
    assert main(tiny_train_args("flm", tiny_data, out, "--max-steps", "2")) == 0
    before = snapshot(out, skip=())
    capsys.readouterr()
    assert main(tiny_train_args("flm", tiny_data, out, "--max-steps", "4")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--resume" in err[0]
    assert snapshot(out, skip=()) == before
    config = RunConfig.load(out / "config.json")
    with pytest.raises(TrainingError, match="already holds a training run"):
        train_module.train(config, tiny_data, out)


# ------------------------------------------------------------------ (4) DDP equivalence


@pytest.fixture(scope="module")
def sharded_tiny_data(tiny_data, tmp_path_factory) -> Path:
    """tiny_data's corpus prepared again into shards of 5 blocks (same tokenizer): the same blocks, read
    memory-mapped from many files."""
    from flm_core.data import load_blocks, prepare

    out = tmp_path_factory.mktemp("sharded") / "data"
    manifest = prepare(str(tiny_data.parent / "corpus.txt"), out, seq_len=16, val_fraction=0.1, seed=0,
                       tokenizer=str(tiny_data / "tokenizer.json"), tokenizer_sample_chars=1, shard_tokens=5 * 16)
    assert len(manifest["shards"]["train"]) > 3
    for split in ("train", "val"):
        assert torch.equal(load_blocks(out, split), load_blocks(tiny_data, split))
    return out


def test_training_on_memory_mapped_shards_equals_training_on_one_file(tiny_data, sharded_tiny_data, tmp_path,
                                                                       tiny_train_args):
    common = ("--max-steps", "3", "--lr", "3e-3", "--warmup-steps", "1", "--batch-size", "8")
    assert main(tiny_train_args("flm", tiny_data, tmp_path / "one", *common)) == 0
    assert main(tiny_train_args("flm", sharded_tiny_data, tmp_path / "shards", *common)) == 0
    a, b = state_tensors(tmp_path / "one"), state_tensors(tmp_path / "shards")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_ranks_equal_one_process_with_gradient_accumulation(sharded_tiny_data, tmp_path, tiny_train_args):
    """Two ranks, each mapping the shards and reading only its own rows, equal one process."""
    common = ("--max-steps", "3", "--lr", "3e-3", "--warmup-steps", "1", "--dropout", "0.1", "--log-every", "1")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "flm_core",
           *tiny_train_args("flm", sharded_tiny_data, ddp, "--grad-accum", "1", *common)]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert main(tiny_train_args("flm", sharded_tiny_data, single, "--grad-accum", "2", *common)) == 0
    a, b = state_tensors(ddp), state_tensors(single)
    assert a.keys() == b.keys()
    moved = False
    initial = build_network(RunConfig.load(single / "config.json").model)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)
    for name, value in initial.state_dict().items():  # training really changed the weights
        moved |= not torch.allclose(value, a["model." + name])
    assert moved
    assert len([r for r in training_log(ddp) if r["split"] == "train"]) == 3  # rank 0 alone writes logs


# ------------------------------------------------------------------ (5) NaN guard


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, tiny_train_args,
                                                                          monkeypatch):
    out = tmp_path / "run"
    assert main(tiny_train_args("flm", tiny_data, out, "--max-steps", "4", "--lr", "3e-3")) == 0
    before = snapshot(out)
    calls = []
    make_objective = train_module.make_objective

    def poisoned_objective(config, teacher, first_stage=None):
        loss_fn = make_objective(config, teacher, first_stage)

        def poisoned(network, tokens, generator):
            loss, logs = loss_fn(network, tokens, generator)
            calls.append(1)
            return (loss * float("nan") if len(calls) >= 3 else loss), logs
        return poisoned

    monkeypatch.setattr(train_module, "make_objective", poisoned_objective)
    config = RunConfig.from_dict(json.loads((out / STATE_DIR / "step_000000004" / "state.json").read_text())["config"])
    config.training.max_steps = 10
    with pytest.raises(TrainingError, match="non-finite") as info:
        train_module.train(config, tiny_data, out, resume=True)
    assert "step 6" in str(info.value) and "\n" not in str(info.value)
    assert snapshot(out) == before  # weights, EMA, optimizer state, config, card untouched
    flm_core.load(out)
    # and through the CLI: one line on stderr, exit status 2
    assert main(tiny_train_args("flm", tiny_data, out, "--resume", "--max-steps", "10")) == 2
    assert snapshot(out) == before


# ------------------------------------------------------------------ (6) FMLM distillation


def test_fmlm_student_starts_equal_to_its_teacher_and_trains(tiny_data, tmp_path, tiny_train_args, flm_checkpoint):
    out = tmp_path / "fmlm"
    args = tiny_train_args("fmlm", tiny_data, out, "--teacher", str(flm_checkpoint), "--max-steps", "3",
                           "--lr", "3e-3", "--warmup-steps", "1")
    assert main(args) == 0
    config = RunConfig.load(out / "config.json")
    assert config.kind == "fmlm" and config.model.double_time and config.objective.teacher == str(flm_checkpoint)
    student, teacher = build_student(config, torch.device("cpu"))
    student.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 16, config.model.vocab_size, generator=g)
    s, t = torch.rand(3, generator=g), torch.rand(3, generator=g)
    with torch.no_grad():
        assert torch.equal(student(x, s, t), teacher(x, s))  # delta(x, s, t) == D(x, s) before any step
        assert teacher(x, s).abs().max() > 0  # a trained (not a fresh, all-zero) teacher
    assert not any(p.requires_grad for p in teacher.parameters())
    assert student.sigma_map_prime.mlp[0].weight.abs().sum() > 0  # the second time can still learn
    records = [r for r in training_log(out) if r["split"] == "train"]
    assert len(records) == 3 and all("consistency_kl" in r and "diagonal_kl" in r for r in records)
    pipe = flm_core.load(out)
    gen = pipe.generate(2, 1, seed=0)
    assert pipe.kind == "fmlm" and gen.nfe == 1 and gen.tokens.shape == (2, 16)
    with torch.no_grad():  # the distilled weights moved away from the teacher
        assert not torch.equal(pipe.network(x, s, t), teacher(x, s))


def test_fmlm_needs_an_flm_teacher(tiny_data, tmp_path, tiny_train_args, tokenizer, make_config, capsys):
    ar_dir = tmp_path / "ar_teacher"
    config = make_config("ar", tokenizer.get_vocab_size())
    save_checkpoint(ar_dir, config, build_network(config.model), tokenizer.to_str())
    capsys.readouterr()
    assert main(tiny_train_args("fmlm", tiny_data, tmp_path / "x", "--teacher", str(ar_dir), "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FLM" in err[0]
    assert main(tiny_train_args("fmlm", tiny_data, tmp_path / "y", "--max-steps", "1")) == 2
    assert "--teacher" in capsys.readouterr().err


# ------------------------------------------------------------------ (7) warm start from a checkpoint


def test_init_from_starts_at_the_checkpoint_weights_with_a_fresh_run(tiny_data, tmp_path, tiny_train_args,
                                                                      flm_checkpoint):
    exported = tmp_path / "exported"
    assert main(["export", "--checkpoint", str(flm_checkpoint), "--out", str(exported)]) == 0  # fp16 weights
    out = tmp_path / "continued"
    assert main(tiny_train_args("flm", tiny_data, out, "--init-from", str(exported), "--max-steps", "2",
                                "--warmup-steps", "1")) == 0
    config = RunConfig.load(out / "config.json")
    assert config.training.init_from == str(exported) and config.model == RunConfig.load(exported / "config.json").model
    network, _ = build_student(config, torch.device("cpu"))
    start = load_file(str(exported / WEIGHTS_FILE))
    assert all(torch.equal(p, start[name].float()) for name, p in network.state_dict().items())
    assert [r["step"] for r in training_log(out) if r["split"] == "train"] == [1, 2]  # a new step count
    assert "initialised from" in (out / "README.md").read_text()
    shutil.rmtree(exported)  # resuming reads the run's own state, not the checkpoint it started from
    assert main(["train", "flm", "--data", str(tiny_data), "--out", str(out), "--resume", "--max-steps", "3"]) == 0
    assert [r["step"] for r in training_log(out) if r["split"] == "train"] == [1, 2, 3]


def test_a_warm_start_carries_the_stages_behind_its_weights_into_its_card(tiny_data, tmp_path, tiny_train_args,
                                                                        flm_checkpoint):
    """Stage 1 trains from scratch, stage 2 continues its export, stage 3 continues stage 2's export into
    the same folder (as scripts/continue_shipped.sh does); each card lists the stages before it, oldest
    first, as data (card.json), and the README is rendered from it."""
    first = read_card_data(flm_checkpoint)["stages"]
    assert len(first) == 1 and first[0]["init_from"] is None and first[0]["steps"] > 0
    ship = tmp_path / "ship"
    assert main(["export", "--checkpoint", str(flm_checkpoint), "--out", str(ship)]) == 0
    for stage in (2, 3):
        run = tmp_path / f"stage{stage}"
        assert main(tiny_train_args("flm", tiny_data, run, "--init-from", str(ship), "--max-steps", str(stage),
                                    "--warmup-steps", "1")) == 0
        assert main(["export", "--checkpoint", str(run), "--out", str(ship)]) == 0
    stages = read_card_data(ship)["stages"]
    assert [s["command"] for s in stages[:1]] == [first[0]["command"]]
    assert "stage2" in stages[1]["command"] and stages[1]["steps"] == 2 and "stage3" in stages[2]["command"]
    assert [s["init_from"] for s in stages] == [None, str(ship), str(ship)]
    card = (ship / "README.md").read_text()
    assert card.count("## Earlier training") == 1 and "- stage 1: " in card and "- stage 2: " in card
    assert "- stage 3" not in card and f"- command: `{stages[2]['command']}`" in card  # the card's own run is above
    shutil.rmtree(ship)  # a resumed run keeps the history it read at its start
    assert main(["train", "flm", "--data", str(tiny_data), "--out", str(tmp_path / "stage3"), "--resume",
                 "--max-steps", "4"]) == 0
    assert read_card_data(tmp_path / "stage3")["stages"][:2] == stages[:2]


def test_a_distilled_stage_names_the_run_that_made_its_teacher(tiny_data, tmp_path, tiny_train_args, flm_checkpoint):
    """The FMLM's stage records its teacher's last command, which identifies the teacher's weights after the
    teacher folder is renamed (a shipped FLM folded into another name); an FLM stage records none."""
    teacher = tmp_path / "teacher-before-renaming"
    assert main(["export", "--checkpoint", str(flm_checkpoint), "--out", str(teacher)]) == 0
    out = tmp_path / "fmlm"
    assert main(tiny_train_args("fmlm", tiny_data, out, "--teacher", str(teacher), "--max-steps", "1")) == 0
    teacher.rename(tmp_path / "flm-renamed")
    teacher_command = read_card_data(flm_checkpoint)["stages"][-1]["command"]
    assert str(flm_checkpoint) in teacher_command
    assert read_card_data(out)["stages"][-1]["teacher_trained_by"] == teacher_command
    assert f"- teacher trained by: `{teacher_command}`" in (out / "README.md").read_text()
    assert "teacher_trained_by" not in read_card_data(flm_checkpoint)["stages"][-1]


def test_init_from_a_checkpoint_of_another_kind_is_refused(tiny_data, tmp_path, tiny_train_args, flm_checkpoint,
                                                           capsys):
    capsys.readouterr()
    assert main(tiny_train_args("mdlm", tiny_data, tmp_path / "x", "--init-from", str(flm_checkpoint),
                                "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "flm" in err[0] and "mdlm" in err[0]


def test_init_from_refuses_shape_flags_and_another_tokenizer(tiny_data, tmp_path, tiny_train_args, flm_checkpoint,
                                                             capsys):
    from flm_core.tokens import train_tokenizer

    capsys.readouterr()
    assert main(tiny_train_args("flm", tiny_data, tmp_path / "x", "--init-from", str(flm_checkpoint),
                                "--hidden-size", "64", "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fixes the model's shape: drop --hidden-size" in err[0]
    other = tmp_path / "other_tokenizer"
    shutil.copytree(flm_checkpoint, other)
    texts = [f"zebra {i} quantum {i * 7} xylophone" for i in range(300)]
    (other / "tokenizer.json").write_text(train_tokenizer(texts, 300).to_str())
    assert main(tiny_train_args("flm", tiny_data, tmp_path / "y", "--init-from", str(other), "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another tokenizer" in err[0]


@pytest.mark.parametrize("vocab", [300, 280])  # another tokenizer of the same size, and of another size
def test_a_teacher_with_another_tokenizer_is_refused_before_training(tiny_data, tmp_path, tiny_train_args,
                                                                    flm_checkpoint, capsys, vocab):
    from flm_core.tokens import train_tokenizer

    other = tmp_path / "teacher"
    shutil.copytree(flm_checkpoint, other)
    texts = [f"zebra {i} quantum {i * 7} xylophone" for i in range(300)]
    (other / "tokenizer.json").write_text(train_tokenizer(texts, vocab).to_str())
    capsys.readouterr()
    out = tmp_path / "fmlm"
    assert main(tiny_train_args("fmlm", tiny_data, out, "--teacher", str(other), "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --teacher ") and "another tokenizer" in err[0]
    assert str(other) in err[0] and str(tiny_data) in err[0]
    assert not out.exists()  # refused before anything was trained or written


def test_fmlm_init_from_a_student_keeps_its_weights_not_the_teachers(tiny_data, tmp_path, tiny_train_args,
                                                                     flm_checkpoint):
    first = tmp_path / "fmlm"
    assert main(tiny_train_args("fmlm", tiny_data, first, "--teacher", str(flm_checkpoint), "--max-steps", "3",
                                "--lr", "3e-3", "--warmup-steps", "1")) == 0
    out = tmp_path / "fmlm2"
    assert main(tiny_train_args("fmlm", tiny_data, out, "--teacher", str(flm_checkpoint), "--init-from", str(first),
                                "--max-steps", "1")) == 0
    student, _ = build_student(RunConfig.load(out / "config.json"), torch.device("cpu"))
    start = load_file(str(first / WEIGHTS_FILE))
    assert all(torch.equal(p, start[name].float()) for name, p in student.state_dict().items())


# ------------------------------------------------------------------ (8) kill -9 at random moments


def test_kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run(tiny_data, tmp_path, tiny_train_args):
    """A run saved every step is SIGKILLed three times at random moments (seeded), each time
    resumed; after the last resume it finishes. Every kill leaves LATEST pointing at a complete,
    loadable state, at most the step in flight is lost, and the end state equals a run that was
    never interrupted (weights, EMA, optimizer moments, step count)."""
    import random
    import signal
    import time

    common = ["--max-steps", "40", "--lr", "3e-3", "--warmup-steps", "3", "--dropout", "0.1",
              "--save-every-minutes", "0", "--eval-every", "10"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args("flm", tiny_data, a, *common)) == 0
    command = [sys.executable, "-m", "flm_core", *tiny_train_args("flm", tiny_data, b, *common, "--resume")]
    rng = random.Random(20261127)
    latest = b / STATE_DIR / "LATEST"
    steps_at_kill = []
    for _ in range(3):
        proc = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        before = latest.read_text() if latest.exists() else None
        deadline = time.monotonic() + 120
        while (not latest.exists() or latest.read_text() == before) and proc.poll() is None:
            assert time.monotonic() < deadline, "training never saved"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside a later step or save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        proc.stderr.close()
        saved = json.loads((latest.parent / latest.read_text().strip() / "state.json").read_text())
        steps_at_kill.append(saved["step"])
        load_file(str(latest.parent / latest.read_text().strip() / "tensors.safetensors"))  # complete
    print("steps saved at the kills:", steps_at_kill)
    assert steps_at_kill == sorted(steps_at_kill) and steps_at_kill[-1] < 40, steps_at_kill
    finished = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    sa, sb = state_tensors(a), state_tensors(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert [r["step"] for r in training_log(b) if r["split"] == "train"][-1] == 40
    left = [p.name for p in (b / STATE_DIR).iterdir() if p.name != "LATEST"]
    assert left == ["step_000000040"], left  # no stale or temporary state
    assert not list(b.glob(".*.tmp"))


# ------------------------------------------------------------------ (9) self-conditioning


def test_init_from_with_self_condition_starts_as_its_checkpoint(tiny_data, tmp_path, tiny_train_args, flm_checkpoint):
    """--init-from a plain FLM with --self-condition: the checkpoint's weights and a zero projection, so the
    same samples for a seed; only the projection may be absent from the checkpoint."""
    out = tmp_path / "sc"
    assert main(tiny_train_args("flm", tiny_data, out, "--init-from", str(flm_checkpoint), "--self-condition",
                                "--max-steps", "1", "--warmup-steps", "1")) == 0
    config = RunConfig.load(out / "config.json")
    assert config.model.self_condition and config.training.init_from == str(flm_checkpoint)
    network, _ = build_student(config, torch.device("cpu"))
    assert not network.estimate_proj.weight.any() and not network.estimate_proj.bias.any()
    original = flm_core.load(flm_checkpoint)
    warm = Pipeline(config, network, original.tokenizer)
    for record in (False, True):
        assert torch.equal(warm.generate(4, 6, seed=1, record=record).tokens,
                           original.generate(4, 6, seed=1, record=record).tokens)
    weights = original.network.state_dict()
    del weights["sigma_map.mlp.0.bias"]
    with pytest.raises(TrainingError, match="sigma_map"):  # anything else missing stays an error
        train_module._load_warm_start(build_network(config.model), weights, "ckpt")
    with pytest.raises(TrainingError, match="estimate_proj"):  # a projection has no place in a plain FLM
        train_module._load_warm_start(build_network(original.config.model), network.state_dict(), "ckpt")


def test_self_conditioned_training_resumes_exactly_samples_and_teaches_an_fmlm(tiny_data, tmp_path,
                                                                                 tiny_train_args, capsys):
    common = ("--self-condition", "--lr", "3e-3", "--warmup-steps", "2", "--min-lr-ratio", "1.0", "--dropout", "0.1")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(tiny_train_args("flm", tiny_data, a, "--max-steps", "4", *common)) == 0
    assert main(tiny_train_args("flm", tiny_data, b, "--max-steps", "2", *common)) == 0
    assert main(["train", "flm", "--data", str(tiny_data), "--out", str(b), "--resume", "--max-steps", "4"]) == 0
    sa, sb = state_tensors(a), state_tensors(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert sa["model.estimate_proj.weight"].any()  # the projection trains
    assert json.loads((a / "config.json").read_text())["model"]["self_condition"] is True
    pipe = flm_core.load(a)
    gen = pipe.generate(2, 3, seed=0)
    assert pipe.sampler.self_condition and gen.nfe == 3 and gen.tokens.shape == (2, 16)
    fmlm = tmp_path / "fmlm"  # the targets are the teacher's second pass unless --no-teacher-self-condition
    for flag, second_pass in (("--teacher-self-condition", True), ("--no-teacher-self-condition", False)):
        assert main(tiny_train_args("fmlm", tiny_data, fmlm / flag, "--teacher", str(a), "--max-steps", "2", flag)) == 0
        config = flm_core.load(fmlm / flag).config
        assert not config.model.self_condition and config.objective.teacher_self_condition is second_pass
    first, second = (state_tensors(fmlm / flag) for flag in ("--no-teacher-self-condition", "--teacher-self-condition"))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # other targets, other weights
    capsys.readouterr()
    assert main(tiny_train_args("fmlm", tiny_data, tmp_path / "x", "--teacher", str(a), "--self-condition",
                                "--max-steps", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "self_condition applies to kind flm only" in err[0]


def test_training_minutes_splits_the_stages_by_device_kind():
    from flm_core.cards import training_minutes
    from flm_core.environment import hardware
    gpu = {"hardware": "NVIDIA H200 (CUDA)", "wall_minutes": 5.5}
    cpu = {"hardware": hardware("cpu"), "wall_minutes": 66.8}  # the string the trainer writes on a CPU
    assert training_minutes([gpu, dict(gpu, wall_minutes=3.9), cpu]) == "9.4 GPU-minutes and 66.8 CPU-minutes"
    assert training_minutes([cpu]) == "66.8 CPU-minutes"
    assert training_minutes([]) == ""

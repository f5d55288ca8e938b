"""`python -m flm_core`: help on every subcommand, `sample --json`, and one-line failures."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flm_core.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {"prepare-data", "train", "sample"}


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "flm_core", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def subcommands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(sub.choices)


def test_top_level_help_in_a_real_process():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m flm_core")
    for name in REQUIRED:
        assert name in proc.stdout


def test_every_subcommand_has_help(capsys):
    names = subcommands()
    assert REQUIRED <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, name
        out = capsys.readouterr().out
        assert out.startswith(f"usage: python -m flm_core {name}"), name
    for kind in ("flm", "fmlm", "mdlm", "ar"):
        with pytest.raises(SystemExit) as info:
            main(["train", kind, "--help"])
        assert info.value.code == 0


def test_sample_json_prints_exactly_one_object(flm_checkpoint, vocab_size):
    proc = run_cli("sample", "--checkpoint", str(flm_checkpoint), "--steps", "3", "--num-samples", "2", "--seed", "7",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {"kind", "checkpoint", "steps", "nfe", "seconds", "texts", "token_ids"}
    assert obj["kind"] == "flm" and obj["checkpoint"] == str(flm_checkpoint)
    assert obj["steps"] == 3 and obj["nfe"] == 3
    assert isinstance(obj["steps"], int) and isinstance(obj["nfe"], int)
    assert isinstance(obj["seconds"], float) and 0 < obj["seconds"] < 60
    assert isinstance(obj["texts"], list) and len(obj["texts"]) == 2 and all(isinstance(t, str) for t in obj["texts"])
    ids = obj["token_ids"]
    assert len(ids) == 2 and all(len(row) == 16 for row in ids)
    assert all(isinstance(i, int) and 0 <= i < vocab_size for row in ids for i in row)
    # same seed in-process: same tokens (the JSON is the generation, not a re-sampling)
    import flm_core

    assert flm_core.load(flm_checkpoint).generate(2, 3, seed=7).tokens.tolist() == ids


def test_sample_with_a_prompt_prints_it_in_every_sample(flm_checkpoint, capsys):
    assert main(["sample", "--checkpoint", str(flm_checkpoint), "--steps", "3", "--num-samples", "2",
                 "--prefix", "the", "--suffix", "end", "--json"]) in (0, None)
    texts = json.loads(capsys.readouterr().out)["texts"]
    assert all(t.startswith("\nthe") and t.endswith("end") for t in texts), texts


def _assert_one_line_error(proc_or_pair, must_contain: str):
    code, out, err = proc_or_pair
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert must_contain in lines[0], lines[0]
    assert out == ""


def test_missing_checkpoint_fails_in_one_line(tmp_path):
    missing = tmp_path / "no_such_ckpt"
    proc = run_cli("sample", "--checkpoint", str(missing), "--json")
    _assert_one_line_error((proc.returncode, proc.stdout, proc.stderr), "no_such_ckpt")


def test_zero_steps_fails_in_one_line(flm_checkpoint):
    proc = run_cli("sample", "--checkpoint", str(flm_checkpoint), "--steps", "0", "--json")
    _assert_one_line_error((proc.returncode, proc.stdout, proc.stderr), "steps")


@pytest.mark.parametrize("args,needle", [
    (["--steps", "-3"], "steps"),
    (["--num-samples", "0"], "num_samples"),
    (["--prefix", "word " * 40], "shorten the prefix"),
])
def test_bad_sampling_arguments_fail_in_one_line(flm_checkpoint, capsys, args, needle):
    code = main(["sample", "--checkpoint", str(flm_checkpoint), *args])
    captured = capsys.readouterr()
    _assert_one_line_error((code, captured.out, captured.err), needle)


def test_corrupt_checkpoint_fails_in_one_line(flm_checkpoint, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(flm_checkpoint, broken)
    (broken / "model.safetensors").write_bytes(b"\x80\x04garbage")
    code = main(["sample", "--checkpoint", str(broken)])
    captured = capsys.readouterr()
    _assert_one_line_error((code, captured.out, captured.err), "model.safetensors")


def test_train_on_a_missing_data_folder_fails_in_one_line(tmp_path, capsys):
    code = main(["train", "flm", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o"), "--preset", "tiny"])
    captured = capsys.readouterr()
    _assert_one_line_error((code, captured.out, captured.err), "nodata")
    assert not (tmp_path / "o").exists()


def test_sample_says_when_a_model_ignores_the_step_count(capsys):
    """The AR makes L - 1 calls whatever --steps says: stderr says so, stdout stays one JSON object."""
    ar = Path(__file__).resolve().parents[1] / "checkpoints" / "ar-wiki"
    assert main(["sample", "--checkpoint", str(ar), "--steps", "32", "--num-samples", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["nfe"] == 127
    assert captured.err.strip() == "note: an AR model makes 127 network calls whatever --steps says (asked 32)"


def test_sample_renoise_is_recorded_and_refused_for_discrete_models(flm_checkpoint, capsys):
    assert main(["sample", "--checkpoint", str(flm_checkpoint), "--steps", "4", "--num-samples", "2",
                 "--renoise", "0.5", "--json"]) == 0
    noisy = json.loads(capsys.readouterr().out)["token_ids"]
    assert main(["sample", "--checkpoint", str(flm_checkpoint), "--steps", "4", "--num-samples", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["token_ids"] != noisy
    ar = Path(__file__).resolve().parents[1] / "checkpoints" / "ar-wiki"
    assert main(["sample", "--checkpoint", str(ar), "--renoise", "0.5", "--num-samples", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: renoise applies to flows")

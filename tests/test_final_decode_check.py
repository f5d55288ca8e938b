"""scripts/final_decode_check.py: its argmax row is the sampler's own samples (the same scores `evaluate` gives at
that seed), and its draws change tokens."""
import json
import os
import subprocess
import sys
from pathlib import Path

from flm_core.bench import evaluate_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_argmax_row_is_what_evaluate_scores_and_draws_change_tokens(flm_checkpoint, tiny_data, tmp_path):
    ar, out = ROOT / "checkpoints" / "ar-wiki", tmp_path / "decode.json"
    args = ["--checkpoint", str(flm_checkpoint), "--data", str(tiny_data), "--evaluator", str(ar), "--steps", "3",
            "--num-samples", "4", "--seed", "1", "--temperatures", "0", "1", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "final_decode_check.py"), *args], cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    argmax, drawn = json.loads(out.read_text())["rows"]
    reference = evaluate_checkpoint(str(flm_checkpoint), str(tiny_data), steps=3, num_samples=4, seed=1,
                                    evaluator=str(ar), mauve=False)
    assert argmax["changed_share"] == 0 and argmax["gen_ppl"] == reference["gen_ppl"]
    assert argmax["word_validity"] == reference["word_validity"] and argmax["entropy"] == reference["entropy"]
    assert drawn["changed_share"] > 0

#!/usr/bin/env bash
# Distil the default corpus's FMLM further on the CPU: checkpoints/fmlm-wiki continued for MINUTES of training
# time with $TEACHER (default checkpoints/flm-wiki, self-conditioned) as its teacher and that teacher's second
# pass as targets (the best measured recipe, docs/experiments/quality.md), then the starting FMLM (A) and the
# continued one (B) sampled at 1 and 8 steps with seeds 1-3 (128 samples) and scored as in quality.md (Gen PPL by
# checkpoints/ar-wiki, entropy, MAUVE, word validity). One JSON object per line in $RUNS/eval.jsonl; the run
# resumes if interrupted. Its first run (quality.md, redistil_wiki.jsonl) started from the checkpoints of commit
# 830cf2f, before the self-conditioned pair became flm-wiki / fmlm-wiki.
#
#   scripts/redistil_wiki.sh runs/redistil
set -euo pipefail
RUNS=${1:-runs/redistil}
MINUTES=${MINUTES:-100}
DATA=${DATA:-data/wiki}
TEACHER=${TEACHER:-checkpoints/flm-wiki}
export OMP_NUM_THREADS=${THREADS:-2}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --out "$DATA"
mkdir -p "$RUNS"
python -m flm_core train fmlm --data "$DATA" --teacher "$TEACHER" --init-from checkpoints/fmlm-wiki \
  --batch-size 64 --lr 2e-4 --warmup-steps 20 --min-lr-ratio 0.1 --max-steps 320 --max-minutes "$MINUTES" \
  --eval-every 80 --save-every-minutes 5 --seed 1 --resume --out "$RUNS/fmlm" > "$RUNS/fmlm.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
flags=(--data "$DATA" --evaluator checkpoints/ar-wiki --num-samples 128)
evaluate_seeds "$RUNS/eval.jsonl" checkpoints/fmlm-wiki "1 8" "${flags[@]}"
evaluate_seeds "$RUNS/eval.jsonl" "$RUNS/fmlm" "1 8" "${flags[@]}"

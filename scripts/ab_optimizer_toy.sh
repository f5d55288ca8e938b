#!/usr/bin/env bash
# A/B of the FLM optimizer settings on the toy world, from scratch at equal steps: ours (A: lr 2e-3, AdamW beta2
# 0.98, cosine to 10%: scripts/train_toy.sh's recipe), the authors' (B: lr 3e-4, beta2 0.999, constant after the
# warmup, `--min-lr-ratio 1`), and ours with their beta2 alone (C). Same shape, data, batch (64), warmup (100),
# seed and STEPS (2000) for each; one thread each, one after the other. Then each run is sampled at 32 steps with
# seeds 1-3 (256 samples each), scored by the toy language's exact checker, one JSON line per run in
# $RUNS/eval.jsonl (docs/experiments/quality.md reads a copy; the validation cross-entropy is each run's card.json).
#
#   scripts/ab_optimizer_toy.sh runs/ab-optimizer-toy
set -euo pipefail
RUNS=${1:-runs/ab-optimizer-toy}
STEPS=${STEPS:-2000}
DATA=${DATA:-data/toy-story}
export OMP_NUM_THREADS=${THREADS:-1}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source toy:story --out "$DATA"
common=(--data "$DATA" --preset tiny --hidden-size 96 --n-blocks 3 --n-heads 3 --cond-dim 48 --dropout 0
        --batch-size 64 --warmup-steps 100 --max-steps "$STEPS" --eval-every 250 --save-every-minutes 1 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train flm "${common[@]}" --lr 2e-3 --adam-beta2 0.98 --min-lr-ratio 0.1 --out "$RUNS/flm-ours" \
  > "$RUNS/flm-ours.log" 2>&1
python -m flm_core train flm "${common[@]}" --lr 3e-4 --adam-beta2 0.999 --min-lr-ratio 1 --out "$RUNS/flm-theirs" \
  > "$RUNS/flm-theirs.log" 2>&1
python -m flm_core train flm "${common[@]}" --lr 2e-3 --adam-beta2 0.999 --min-lr-ratio 0.1 --out "$RUNS/flm-ours-beta2" \
  > "$RUNS/flm-ours-beta2.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
for run in flm-ours flm-theirs flm-ours-beta2; do
  evaluate_seeds "$RUNS/eval.jsonl" "$RUNS/$run" 32 --num-samples 256
done

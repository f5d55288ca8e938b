#!/usr/bin/env bash
# A/B of self-conditioning on the default corpus at equal CPU budget from the same weights: the shipped FLM
# (checkpoints/flm-wiki) continued for MINUTES of training time without (A) and with (B) --self-condition,
# side by side at one thread each (same data, seed, batch and learning rate), then each arm sampled at 8 and
# 32 steps with seeds 1-3 (128 samples) and scored as in docs/experiments/quality.md (Gen PPL by
# checkpoints/ar-wiki, entropy, MAUVE, word validity). One JSON object per line in $RUNS/eval.jsonl.
#
#   scripts/ab_self_condition_wiki.sh runs/ab-wiki
set -euo pipefail
RUNS=${1:-runs/ab-wiki}
MINUTES=${MINUTES:-30}
DATA=${DATA:-data/wiki}
export OMP_NUM_THREADS=1
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --out "$DATA"
common=(--data "$DATA" --init-from checkpoints/flm-wiki --batch-size 64 --lr 3e-4 --warmup-steps 50 --min-lr-ratio 1.0
        --max-steps 100000000 --max-minutes "$MINUTES" --eval-every 100 --save-every-minutes 2 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train flm "${common[@]}" --out "$RUNS/flm-plain" > "$RUNS/flm-plain.log" 2>&1 &
plain=$!
python -m flm_core train flm "${common[@]}" --self-condition --out "$RUNS/flm-selfcond" > "$RUNS/flm-selfcond.log" 2>&1 &
selfcond=$!
wait "$plain"; wait "$selfcond"

source "$(dirname "$0")/evaluate_runs.sh"
flags=(--data "$DATA" --evaluator checkpoints/ar-wiki --num-samples 128)
for steps in 8 32; do
  for seed in 1 2 3; do
    evaluate_run "$RUNS/eval.jsonl" "$RUNS/flm-plain" "$steps" "$seed" "${flags[@]}" &
    evaluate_run "$RUNS/eval.jsonl" "$RUNS/flm-selfcond" "$steps" "$seed" "${flags[@]}"
    wait
  done
done

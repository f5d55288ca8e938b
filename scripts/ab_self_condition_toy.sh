#!/usr/bin/env bash
# A/B of self-conditioning on the toy world at equal CPU budget from the same weights: the shipped toy FLM
# (checkpoints/flm-toy) continued for MINUTES of training time without (A) and with (B) --self-condition,
# same data, seed, batch and constant learning rate, one thread each, one after the other; then every arm and
# the starting point are sampled at 8, 32 and 128 steps with seeds 1-3 (256 samples each) and scored by the
# toy language's exact checker. One JSON line per run goes to $RUNS/eval.jsonl
# (docs/experiments/quality.md reads docs/experiments/self_condition_toy.jsonl, a copy).
#
#   scripts/ab_self_condition_toy.sh runs/ab          # about 2 x 25 min of training, then 27 evaluations
set -euo pipefail
RUNS=${1:-runs/ab}
MINUTES=${MINUTES:-25}
DATA=${DATA:-data/toy-story}
export OMP_NUM_THREADS=${THREADS:-1}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source toy:story --out "$DATA"
common=(--data "$DATA" --init-from checkpoints/flm-toy --batch-size 64 --lr 1e-3 --warmup-steps 100 --min-lr-ratio 1.0
        --max-steps 100000000 --max-minutes "$MINUTES" --eval-every 250 --save-every-minutes 1 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train flm "${common[@]}" --out "$RUNS/flm-toy-plain" > "$RUNS/flm-toy-plain.log" 2>&1
python -m flm_core train flm "${common[@]}" --self-condition --out "$RUNS/flm-toy-selfcond" > "$RUNS/flm-toy-selfcond.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
for checkpoint in checkpoints/flm-toy "$RUNS/flm-toy-plain" "$RUNS/flm-toy-selfcond"; do
  evaluate_seeds "$RUNS/eval.jsonl" "$checkpoint" "8 32 128" --num-samples 256
done

#!/usr/bin/env bash
# A/B of the distillation targets of a self-conditioned teacher on the toy world, at equal CPU budget from the
# same weights: the shipped toy FMLM (checkpoints/fmlm-toy) re-distilled from TEACHER (a self-conditioned toy
# FLM, e.g. `train flm --init-from checkpoints/flm-toy --self-condition`) for MINUTES of training time with the
# teacher's first pass as its targets (A: --no-teacher-self-condition, the estimate read as zeros) and with its
# second pass, which reads its own first pass (B: the default, one more teacher call per target); same data,
# seed, batch and learning rate, one thread each, one after the other. Then the start, both arms and the
# teacher are sampled with seeds 1-3 (256 samples each) and scored by the toy language's exact checker.
# One JSON line per run goes to $RUNS/eval.jsonl (docs/experiments/quality.md reads a copy of it).
#
#   TEACHER=runs/toy/flm-sc scripts/ab_teacher_self_condition_toy.sh runs/ab-teacher-toy
set -euo pipefail
RUNS=${1:-runs/ab-teacher-toy}
TEACHER=${TEACHER:?set TEACHER to a self-conditioned toy FLM checkpoint}
MINUTES=${MINUTES:-20}
DATA=${DATA:-data/toy-story}
export OMP_NUM_THREADS=${THREADS:-1}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source toy:story --out "$DATA"
common=(--data "$DATA" --teacher "$TEACHER" --init-from checkpoints/fmlm-toy --batch-size 64 --lr 5e-4
        --warmup-steps 50 --min-lr-ratio 0.1 --max-steps "${MAX_STEPS:-1500}" --max-minutes "$MINUTES"
        --eval-every 250 --save-every-minutes 1 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train fmlm "${common[@]}" --no-teacher-self-condition --out "$RUNS/fmlm-first-pass" \
  > "$RUNS/fmlm-first-pass.log" 2>&1
python -m flm_core train fmlm "${common[@]}" --out "$RUNS/fmlm-second-pass" > "$RUNS/fmlm-second-pass.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
for checkpoint in checkpoints/fmlm-toy "$RUNS/fmlm-first-pass" "$RUNS/fmlm-second-pass"; do
  evaluate_seeds "$RUNS/eval.jsonl" "$checkpoint" "1 2 4 8" --num-samples 256
done
evaluate_seeds "$RUNS/eval.jsonl" "$TEACHER" "8 32 128" --num-samples 256

#!/usr/bin/env bash
# A/B of two FMLM distillation knobs the authors use, on the toy world at equal steps from the same teacher: our
# semigroup objective as shipped (A: no loss weighting, dropout 0), with the learned loss weighting
# exp(-w(s)) loss + w(s) (B: --learnable-loss-weighting), and with dropout 0.1 in the student and its own target
# passes (C: --dropout 0.1). Each student starts from the teacher (checkpoints/flm-toy); same data, seed, batch,
# learning-rate schedule and STEPS (1600), one thread each, one after the other. Then each is sampled at 1, 2 and
# 8 steps with seeds 1-3 (256 samples each), scored by the toy language's exact checker, one JSON line per run
# in $RUNS/eval.jsonl (docs/experiments/quality.md reads a copy of it). A run that stops early (a non-finite
# loss) is evaluated from its last good export, and its log's last line says where it stopped.
#
#   scripts/ab_fmlm_knobs_toy.sh runs/ab-fmlm-knobs-toy
set -euo pipefail
RUNS=${1:-runs/ab-fmlm-knobs-toy}
TEACHER=${TEACHER:-checkpoints/flm-toy}
DATA=${DATA:-data/toy-story}
export OMP_NUM_THREADS=${THREADS:-1}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source toy:story --out "$DATA"
common=(--data "$DATA" --teacher "$TEACHER" --batch-size 64 --lr 5e-4 --warmup-steps 50 --min-lr-ratio 0.1
        --max-steps "${STEPS:-1600}" --eval-every 250 --save-every-minutes 1 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train fmlm "${common[@]}" --out "$RUNS/fmlm-plain" > "$RUNS/fmlm-plain.log" 2>&1
python -m flm_core train fmlm "${common[@]}" --learnable-loss-weighting --out "$RUNS/fmlm-loss-weighting" \
  > "$RUNS/fmlm-loss-weighting.log" 2>&1 || tail -n 1 "$RUNS/fmlm-loss-weighting.log"  # it may stop (non-finite)
python -m flm_core train fmlm "${common[@]}" --dropout 0.1 --out "$RUNS/fmlm-dropout" > "$RUNS/fmlm-dropout.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
for run in fmlm-plain fmlm-loss-weighting fmlm-dropout; do  # a stopped run: its last good export
  evaluate_seeds "$RUNS/eval.jsonl" "$RUNS/$run" "1 2 8" --num-samples 256
done

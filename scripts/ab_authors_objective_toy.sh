#!/usr/bin/env bash
# A/B of the distillation objective on the toy world, at equal CPU budget from the same teacher: our one-stage
# semigroup objective (A: `--objective semigroup`, MINUTES of training time) against the authors' two stages
# (B: `--objective residual` for MINUTES/2, then `--objective two-network --first-stage` for MINUTES/2), each
# student starting from the teacher's weights (checkpoints/flm-toy); same data, seed, batch and learning-rate
# schedule, the authors' (0, 1) shares (1/64, 1/128) in B, one thread each, one after the other. MAX_STEPS_*
# are what each run fits in its minutes at one thread here (the cosine reaches its floor); --max-minutes stops a
# slower machine at the same budget. B' repeats B's second stage with our (0, 1) share (0.1) to separate the
# objective from the share. Then the students are sampled at 1, 2, 4 and 8 steps with seeds 1-3 (256
# samples each) and scored by the toy language's exact checker, one JSON line per run in $RUNS/eval.jsonl
# (docs/experiments/quality.md reads a copy of it), then the first stage's own one jump (scripts/first_stage_one_jump.py).
#
#   scripts/ab_authors_objective_toy.sh runs/ab-authors-toy
set -euo pipefail
RUNS=${1:-runs/ab-authors-toy}
TEACHER=${TEACHER:-checkpoints/flm-toy}
MINUTES=${MINUTES:-16}
DATA=${DATA:-data/toy-story}
export OMP_NUM_THREADS=${THREADS:-1}
[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source toy:story --out "$DATA"
half=$(awk "BEGIN { print $MINUTES / 2 }")
common=(--data "$DATA" --teacher "$TEACHER" --batch-size 64 --lr 5e-4 --warmup-steps 50 --min-lr-ratio 0.1
        --eval-every 250 --save-every-minutes 1 --seed 1 --resume)
mkdir -p "$RUNS"
python -m flm_core train fmlm "${common[@]}" --objective semigroup --max-steps "${MAX_STEPS_SEMIGROUP:-1600}" \
  --max-minutes "$MINUTES" --out "$RUNS/fmlm-semigroup" > "$RUNS/fmlm-semigroup.log" 2>&1
python -m flm_core train fmlm "${common[@]}" --objective residual --max-steps "${MAX_STEPS_RESIDUAL:-1000}" \
  --max-minutes "$half" --out "$RUNS/fmlm-residual" > "$RUNS/fmlm-residual.log" 2>&1
python -m flm_core train fmlm "${common[@]}" --objective two-network --first-stage "$RUNS/fmlm-residual" \
  --max-steps "${MAX_STEPS_TWO_NETWORK:-1400}" --max-minutes "$half" --out "$RUNS/fmlm-two-network" \
  > "$RUNS/fmlm-two-network.log" 2>&1
# B', the ablation: B's second stage again from the same first stage with our (0, 1) share, 0.1 instead of 1/128
python -m flm_core train fmlm "${common[@]}" --objective two-network --first-stage "$RUNS/fmlm-residual" \
  --boundary-prob 0.1 --max-steps "${MAX_STEPS_TWO_NETWORK:-1400}" --max-minutes "$half" \
  --out "$RUNS/fmlm-two-network-boundary01" > "$RUNS/fmlm-two-network-boundary01.log" 2>&1

source "$(dirname "$0")/evaluate_runs.sh"
for checkpoint in "$RUNS/fmlm-semigroup" "$RUNS/fmlm-two-network" "$RUNS/fmlm-two-network-boundary01"; do
  evaluate_seeds "$RUNS/eval.jsonl" "$checkpoint" "1 2 4 8" --num-samples 256
done
# the first stage alone, one jump 0 -> 1 (teacher + residual, 2 calls), beside the teacher's one Euler step
python scripts/first_stage_one_jump.py --first-stage "$RUNS/fmlm-residual" --teacher "$TEACHER" >> "$RUNS/eval.jsonl"

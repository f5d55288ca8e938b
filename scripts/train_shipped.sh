#!/usr/bin/env bash
# Reproduce the shipped checkpoints from nothing: prepare the default corpus, train FLM, MDLM and AR
# side by side (same tokenizer, length, size preset and batch), distil the FLM into an FMLM, and export
# each run in half precision to $SHIP/<kind>-wiki: by default $RUNS/export, never checkpoints/ unless you ship
# on purpose with SHIP=checkpoints. Every training call passes --resume, so running the
# script again continues where an interrupted run stopped (time budgets count total training time).
#
#   scripts/train_shipped.sh                      # CPU defaults (hours; resumable across sessions)
#   PRESET=tiny BASE_MINUTES=0.3 DISTILL_MINUTES=0.2 BATCH=16 scripts/train_shipped.sh /tmp/smoke
#
# Knobs (environment): DATA, PRESET, BATCH, LR, BASE_MINUTES, DISTILL_MINUTES, SHIP, THREADS.
set -euo pipefail
RUNS=${1:-runs/shipped}
DATA=${DATA:-data/wiki}
PRESET=${PRESET:-cpu}
BATCH=${BATCH:-64}
LR=${LR:-1e-3}
BASE_MINUTES=${BASE_MINUTES:-300}
DISTILL_MINUTES=${DISTILL_MINUTES:-60}
SHIP=${SHIP:-$RUNS/export}
export OMP_NUM_THREADS=${THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}

[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --out "$DATA"
common=(--data "$DATA" --preset "$PRESET" --batch-size "$BATCH" --lr "$LR" --warmup-steps 300
        --min-lr-ratio 1.0 --max-steps 100000000 --eval-every 200 --save-every-minutes 2 --resume)

mkdir -p "$RUNS"
pids=()
for kind in flm mdlm ar; do
  python -m flm_core train "$kind" --out "$RUNS/$kind" "${common[@]}" --max-minutes "$BASE_MINUTES" \
    > "$RUNS.$kind.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
tail -n 1 "$RUNS".{flm,mdlm,ar}.log

# Distillation bootstraps its own targets: a lower learning rate keeps it from collapsing onto a
# trivially self-consistent student (seen at 1e-3 with learned loss weights: diagonal KL 0.04 -> 7).
python -m flm_core train fmlm --teacher "$RUNS/flm" --out "$RUNS/fmlm" "${common[@]}" --lr "${DISTILL_LR:-3e-4}" \
  --warmup-steps 100 --max-minutes "$DISTILL_MINUTES" > "$RUNS.fmlm.log" 2>&1
tail -n 1 "$RUNS.fmlm.log"

for kind in flm fmlm mdlm ar; do
  python -m flm_core export --checkpoint "$RUNS/$kind" --out "$SHIP/$kind-wiki"
done
echo "exported to $SHIP"

#!/usr/bin/env bash
# The toy world's four models: prepare a toy language (no files needed), train FLM, MDLM and AR one after
# the other with the same size, batch and step budget, distil the FLM into an FMLM, and export each run in
# half precision to $SHIP/<kind>-toy (by default $RUNS/export; SHIP=checkpoints ships them on purpose).
# Every training call passes --resume: running the script again continues an interrupted run.
#
#   scripts/train_toy.sh                                  # the shipped recipe (CPU, one thread per run)
#   STEPS=300 DISTILL_STEPS=200 scripts/train_toy.sh /tmp/toy-smoke
#
# Knobs (environment): SOURCE, DATA, STEPS, DISTILL_STEPS, BATCH, LR, SHIP, THREADS.
set -euo pipefail
RUNS=${1:-runs/toy}
SOURCE=${SOURCE:-toy:story}
DATA=${DATA:-data/toy-${SOURCE#toy:}}
STEPS=${STEPS:-4000}
DISTILL_STEPS=${DISTILL_STEPS:-3000}
BATCH=${BATCH:-64}
LR=${LR:-2e-3}
SHIP=${SHIP:-$RUNS/export}
export OMP_NUM_THREADS=${THREADS:-1}

[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --source "$SOURCE" --out "$DATA"
common=(--data "$DATA" --batch-size "$BATCH" --warmup-steps 100 --eval-every 250 --save-every-minutes 1 --resume)
shape=(--preset tiny --hidden-size 96 --n-blocks 3 --n-heads 3 --cond-dim 48 --dropout 0)

mkdir -p "$RUNS"
for kind in flm mdlm ar; do
  python -m flm_core train "$kind" --out "$RUNS/$kind" "${shape[@]}" "${common[@]}" --lr "$LR" \
    --max-steps "$STEPS" > "$RUNS/$kind.log" 2>&1
  tail -n 1 "$RUNS/$kind.log"
done
python -m flm_core train fmlm --teacher "$RUNS/flm" --out "$RUNS/fmlm" "${common[@]}" --lr "${DISTILL_LR:-1e-3}" \
  --max-steps "$DISTILL_STEPS" > "$RUNS/fmlm.log" 2>&1
tail -n 1 "$RUNS/fmlm.log"

for kind in flm fmlm mdlm ar; do
  python -m flm_core export --checkpoint "$RUNS/$kind" --out "$SHIP/$kind-toy"
done
echo "exported to $SHIP"

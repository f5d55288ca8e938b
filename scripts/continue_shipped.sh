#!/usr/bin/env bash
# Next stage of the shipped checkpoints: continue FLM and MDLM from their exports in $FROM with equal
# wall time side by side (warm start: fresh optimizer, short warmup, cosine decay to LR * MIN_LR_RATIO),
# then re-distil the FMLM from the continued FLM, starting from the previous FMLM, and export all three
# to $SHIP: by default $RUNS/export, never checkpoints/ unless you ship on purpose with SHIP=checkpoints.
# The FLM continues the best measured recipe: $FLM_FROM (default $FROM/flm-wiki, self-conditioned) with
# --self-condition, so the FMLM is distilled from its second pass (docs/experiments/quality.md). The FMLM
# starts from $FMLM_FROM (default $FROM/fmlm-wiki, already distilled from that teacher on the CPU).
# The AR is left as it is: it already overfits the corpus (best validation at step 800).
# The warm start reads the fp16 exports (a relative rounding of ~1e-3 on weights whose optimizer state
# starts fresh anyway); an interrupted continuation resumes from its own fp32 state in $RUNS.
#
#   BASE_MINUTES=4.2 BASE_STEPS=3400 DISTILL_MINUTES=2.3 DISTILL_STEPS=1400 scripts/continue_shipped.sh
#   PRESET=tiny ... is not needed: shapes come from the checkpoints being continued.
#
# Knobs (environment): DATA, FROM (default checkpoints), FLM_FROM, FMLM_FROM, SHIP (default $RUNS/export), BATCH, LR,
# MIN_LR_RATIO, BASE_MINUTES, BASE_STEPS (FLM; MDLM gets
# MDLM_STEPS, default 74% of it: its steps are slower, so both decay over the same minutes),
# DISTILL_LR, DISTILL_MINUTES, DISTILL_STEPS, THREADS.
set -euo pipefail
RUNS=${1:-runs/continued}
DATA=${DATA:-data/wiki}
FROM=${FROM:-checkpoints}
FLM_FROM=${FLM_FROM:-$FROM/flm-wiki}
FMLM_FROM=${FMLM_FROM:-$FROM/fmlm-wiki}
SHIP=${SHIP:-$RUNS/export}
BATCH=${BATCH:-256}
LR=${LR:-1e-3}
MIN_LR_RATIO=${MIN_LR_RATIO:-0.05}
BASE_MINUTES=${BASE_MINUTES:-240}
BASE_STEPS=${BASE_STEPS:-20000}
MDLM_STEPS=${MDLM_STEPS:-$(( BASE_STEPS * 74 / 100 ))}
DISTILL_MINUTES=${DISTILL_MINUTES:-60}
DISTILL_STEPS=${DISTILL_STEPS:-5000}
export OMP_NUM_THREADS=${THREADS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}

[ -f "$DATA/manifest.json" ] || python -m flm_core prepare-data --out "$DATA"
common=(--data "$DATA" --batch-size "$BATCH" --eval-every 200 --save-every-minutes 1 --resume)

mkdir -p "$RUNS"
python -m flm_core train flm --init-from "$FLM_FROM" --self-condition --out "$RUNS/flm" "${common[@]}" --lr "$LR" \
  --min-lr-ratio "$MIN_LR_RATIO" --warmup-steps 100 --max-steps "$BASE_STEPS" --max-minutes "$BASE_MINUTES" > "$RUNS.flm.log" 2>&1 &
flm=$!
python -m flm_core train mdlm --init-from "$FROM/mdlm-wiki" --out "$RUNS/mdlm" "${common[@]}" --lr "$LR" \
  --min-lr-ratio "$MIN_LR_RATIO" --warmup-steps 100 --max-steps "$MDLM_STEPS" --max-minutes "$BASE_MINUTES" > "$RUNS.mdlm.log" 2>&1 &
mdlm=$!
wait "$flm"; wait "$mdlm"
tail -n 1 "$RUNS".{flm,mdlm}.log

python -m flm_core train fmlm --teacher "$RUNS/flm" --init-from "$FMLM_FROM" --out "$RUNS/fmlm" "${common[@]}" \
  --lr "${DISTILL_LR:-3e-4}" --warmup-steps 50 --min-lr-ratio 0.1 --max-steps "$DISTILL_STEPS" \
  --max-minutes "$DISTILL_MINUTES" > "$RUNS.fmlm.log" 2>&1
tail -n 1 "$RUNS.fmlm.log"

for kind in flm fmlm mdlm; do
  python -m flm_core export --checkpoint "$RUNS/$kind" --out "$SHIP/$kind-wiki"
done
echo "exported to $SHIP"

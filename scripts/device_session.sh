#!/usr/bin/env bash
# One GPU call that moves the shipped models on and measures the final build on the GPU:
#   1. scripts/continue_shipped.sh (the self-conditioned FLM and the MDLM continued side by side, the FMLM
#      re-distilled from that FLM's second pass, all exported to checkpoints/ in fp16),
#   2. the three new checkpoints as one tar cut into 15 MB parts -> $OUT/ship.tar.* (the device tool
#      brings back files of at most 16 MiB), packed before anything else can fail,
#   3. bench-speed on the GPU (sampler overhead, record cost, training throughput) -> $OUT/speed.json,
#   4. training throughput of the paper's `small` model at the LM1B and OWT shapes, bf16, eager and compiled
#      -> $OUT/speed_small_{128,1024}.json (scripts/project_presets.py turns them into docs/scaling.md's table;
#      PRESET_SPEED=0 skips it). It runs last: a call that runs out of time has everything else in $OUT.
# Run from the repository root with $OUT set and data/wiki carried along (the device has no network
# to prepare it). The default budget, 4.5 + 2.4 minutes of training, comes to about 9 minutes with
# start-up, export and timing (the last such call took 483 s for 4 + 2.2): one 10-minute call.
# Back home: cat ship.tar.* | tar xf - -C checkpoints, then run `bench --update-cards` (README).
set -euo pipefail
: "${OUT:?set OUT to the folder whose files come back}"
[ -f data/wiki/manifest.json ] || { echo "data/wiki is missing: carry it along (prepare-data needs PyPI)" >&2; exit 1; }

# Some device images have torch only in a virtual environment whose python must be called through a
# wrapper (a symlink loses the environment); use it when the plain python cannot import torch.
if ! python -c "import torch" 2>/dev/null && [ -x /opt/torch/.venv/bin/python3 ]; then
  mkdir -p /tmp/bin
  printf '#!/bin/sh\nexec /opt/torch/.venv/bin/python3 "$@"\n' > /tmp/bin/python
  chmod +x /tmp/bin/python
  cp /tmp/bin/python /tmp/bin/python3
  export PATH=/tmp/bin:/opt/torch/.venv/bin:$PATH
fi
python -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'; print(torch.cuda.get_device_name())"

export BATCH=${BATCH:-256} BASE_MINUTES=${BASE_MINUTES:-4.5} BASE_STEPS=${BASE_STEPS:-3800}
export DISTILL_MINUTES=${DISTILL_MINUTES:-2.4} DISTILL_STEPS=${DISTILL_STEPS:-1500} THREADS=${THREADS:-8}
SHIP=checkpoints scripts/continue_shipped.sh runs/continued  # the device's copy of the repo: ship on purpose
cp runs/continued.{flm,mdlm,fmlm}.log "$OUT"/

tar cf - -C checkpoints flm-wiki fmlm-wiki mdlm-wiki | split -b 15M - "$OUT/ship.tar."

python -m flm_core bench-speed --device cuda \
  --checkpoints checkpoints/fmlm-wiki checkpoints/flm-wiki checkpoints/mdlm-wiki checkpoints/ar-wiki \
  --steps 1 32 --batch 64 --repeats 7 --train-kinds flm flm-dense ar --train-batch 256 --train-steps 10 \
  --out "$OUT/speed.json" || echo "bench-speed failed: the weights are in $OUT already" >&2
if [ "${PRESET_SPEED:-1}" = 1 ]; then
  for shape in "30522 128 64" "50258 1024 8"; do
    set -- $shape
    python -m flm_core bench-speed --device cuda --train-kinds flm --train-preset small --vocab-size "$1" \
      --seq-len "$2" --train-batch "$3" --train-steps 10 --train-compile --out "$OUT/speed_small_$2.json" \
      || echo "bench-speed of the small preset at L = $2 failed" >&2
  done
fi
ls -l "$OUT"

#!/usr/bin/env bash
# One GPU call that moves the shipped models on and measures the final build on the GPU:
#   1. scripts/continue_shipped.sh (FLM and MDLM continued side by side, FMLM re-distilled, all exported
#      to checkpoints/ in fp16),
#   2. bench-speed on the GPU (sampler overhead, record cost, training throughput) -> $OUT/speed.json,
#   3. the three new checkpoints as one tar cut into 15 MB parts -> $OUT/ship.tar.* (the device tool
#      brings back files of at most 16 MiB).
# Run from the repository root with $OUT set and data/wiki carried along (prepared here in 4 s if not);
# the default budget (5 + 2.5 minutes of training, ~8.5 minutes in all) fits one 10-minute call.
# Back home: cat ship.tar.* | tar xf - -C checkpoints, then run `bench --update-cards` (README).
set -euo pipefail
: "${OUT:?set OUT to the folder whose files come back}"

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

export BATCH=${BATCH:-256} BASE_MINUTES=${BASE_MINUTES:-5.0} BASE_STEPS=${BASE_STEPS:-4200}
export DISTILL_MINUTES=${DISTILL_MINUTES:-2.5} DISTILL_STEPS=${DISTILL_STEPS:-1500} THREADS=${THREADS:-8}
scripts/continue_shipped.sh runs/continued
cp runs/continued.{flm,mdlm,fmlm}.log "$OUT"/

python -m flm_core bench-speed --device cuda \
  --checkpoints checkpoints/fmlm-wiki checkpoints/flm-wiki checkpoints/mdlm-wiki checkpoints/ar-wiki \
  --steps 1 32 --batch 64 --repeats 7 --train-kinds flm flm-dense ar --train-batch 256 --train-steps 10 \
  --out "$OUT/speed.json"

tar cf - -C checkpoints flm-wiki fmlm-wiki mdlm-wiki | split -b 15M - "$OUT/ship.tar."
ls -l "$OUT"

#!/usr/bin/env bash
# Wall time of each command the README tells a newcomer to run, on this machine, one after another,
# written to docs/measurements/readme_durations.md (and each command's last output line). Data and runs go
# to a temporary folder; nothing in checkpoints/ or data/ is changed. A failing command gets its row too.
#
#   scripts/time_readme.sh            # about 10 minutes on a 2-core CPU, 6 more with the tests; TESTS=0 skips them
set -euo pipefail
OUT=${OUT:-docs/measurements/readme_durations.md}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

{
  echo "# Durations of the README's commands"
  echo
  echo "$(nproc) cores ($(python -c 'from flm_core.environment import processor_name; print(processor_name())')),"
  echo "torch $(python -c 'import torch; print(torch.__version__)'), $(date -u +%Y-%m-%dT%H:%MZ),"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg). Each row: wall time, then the last line it printed."
  echo
  echo "| command | wall time | last line |"
  echo "|---|--:|---|"
} > "$OUT"

timed() {  # timed LABEL COMMAND...: one table row
  local label=$1; shift
  local start=$SECONDS
  local last
  last=$( ("$@" 2>&1 || echo "exit status $?") | tr '\r' '\n' | grep -v '^\s*$' | tail -n 1 | cut -c1-160 | tr '|' '/') || true
  echo "| \`$label\` | $(( SECONDS - start )) s | ${last} |" >> "$OUT"
}

timed "prepare-data --out data/wiki" python -m flm_core prepare-data --out "$TMP/wiki"
timed "train flm --max-minutes 2" python -m flm_core train flm --data "$TMP/wiki" --out "$TMP/flm" --max-minutes 2
timed "sample fmlm-wiki --steps 1 --num-samples 4" python -m flm_core sample --checkpoint checkpoints/fmlm-wiki --steps 1 --num-samples 4 --json
timed "sample flm-wiki --steps 32 --num-samples 4" python -m flm_core sample --checkpoint checkpoints/flm-wiki --steps 32 --num-samples 4 --json
timed "evaluate fmlm-wiki --steps 1" python -m flm_core evaluate --checkpoint checkpoints/fmlm-wiki --data "$TMP/wiki" --evaluator checkpoints/ar-wiki --steps 1
timed "bench checkpoints/*-wiki --max-steps 32" python -m flm_core bench --checkpoints checkpoints/*-wiki --data "$TMP/wiki" --evaluator checkpoints/ar-wiki --max-steps 32 --out "$TMP/bench"
timed "bench-speed checkpoints/*-wiki" python -m flm_core bench-speed --checkpoints checkpoints/*-wiki --out "$TMP/speed.json"
if [ "${TESTS:-1}" = 1 ]; then
  timed "python -m pytest" python -m pytest
fi
cat "$OUT"

# Sourced by the A/B scripts (not run on its own): `evaluate --json` runs reduced to the figures their tables read.
#
#   evaluate_run OUT CHECKPOINT STEPS SEED [evaluate flags...]   one run, one JSON line appended to OUT
#   evaluate_seeds OUT CHECKPOINT "STEPS ..." [evaluate flags...] each step count with seeds 1, 2 and 3
FIGURES="import json, sys
d = json.load(sys.stdin)
keys = ('checkpoint', 'steps', 'seed', 'num_samples', 'gen_ppl', 'entropy', 'mauve', 'word_validity', 'val_nll',
        'toy_validity', 'toy_grammatical', 'toy_distance', 'seconds')
print(json.dumps({k: d[k] for k in keys if k in d}))"

evaluate_run() {
  local out=$1 checkpoint=$2 steps=$3 seed=$4
  shift 4
  python -m flm_core evaluate --checkpoint "$checkpoint" --steps "$steps" --seed "$seed" --json "$@" |
    python -c "$FIGURES" >> "$out"
}

evaluate_seeds() {
  local out=$1 checkpoint=$2 steps_list=$3 steps seed
  shift 3
  for steps in $steps_list; do
    for seed in 1 2 3; do
      evaluate_run "$out" "$checkpoint" "$steps" "$seed" "$@"
    done
  done
}

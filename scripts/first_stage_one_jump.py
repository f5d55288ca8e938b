"""Score the one jump 0 -> 1 of an authors'-recipe first stage (teacher + residual, two network calls) on the toy
world: a first stage is not a sampler on its own (flm_core refuses it), so this reads delta_1(eps, 0, 1) directly,
from the same eps ~ N(0, I_K) per seed as `sample`, and prints one JSON line per seed (the teacher's own one-step
Euler, D(eps, 0), beside it).

    python scripts/first_stage_one_jump.py --first-stage runs/ab-authors-toy/fmlm-residual --teacher checkpoints/flm-toy
"""
import argparse
import json

import torch

import flm_core
from flm_core import objectives
from flm_core.pipeline import load_first_stage
from flm_core.toy.evaluation import ToyReference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-stage", required=True)
    parser.add_argument("--teacher", required=True, help="the toy FLM the first stage was trained on")
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    first, residual = load_first_stage(args.first_stage)
    teacher = flm_core.load(args.teacher)
    network = teacher.network
    second_pass = network.config.self_condition and first.objective.teacher_self_condition  # the pass r was fitted on
    denoise = objectives.self_conditioned_teacher(network) if second_pass else network
    delta_1 = objectives.residual_flow_map(denoise, residual)
    reference = ToyReference.of(teacher.config.data["source"], teacher.tokenizer, args.num_samples)
    n, shape = args.num_samples, (args.num_samples, network.config.seq_len, network.config.vocab_size)
    for seed in args.seeds:
        eps = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            runs = {args.first_stage: delta_1(eps, torch.zeros(n), torch.ones(n)),
                    f"{args.teacher} (Euler, 1 step)": torch.softmax(denoise(eps, torch.zeros(n)), -1)}
        for name, delta in runs.items():
            quality = reference.quality([], delta.argmax(-1))
            print(json.dumps({"checkpoint": name, "steps": 1, "seed": seed, "num_samples": n,
                              **{k: quality[k] for k in ("entropy", "toy_validity", "toy_grammatical", "toy_distance")}}))


if __name__ == "__main__":
    main()

"""Is a temperature (or nucleus) at a flow's final decode worth a knob? (docs/experiments/quality.md)

A flow's last step lands on g = 1 with x = D = softmax(l), and the tokens are argmax D: a temperature,
softmax(l / T), leaves that argmax alone, so the only change it can make is drawing the tokens,
token ~ softmax(l / T) per position, instead of taking the argmax. This runs the real sampler once, keeps the
last network call's logits (a hook on the output layer), and scores the argmax against draws at each T with
the bench's metrics (T = 0 is the argmax: the same samples `evaluate` scores at that seed).

    python scripts/final_decode_check.py --checkpoint checkpoints/flm-wiki --steps 32 --seed 1 \
        --temperatures 0 0.5 1 --out docs/experiments/quality_final_decode_seed1.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from flm_core import load
from flm_core.bench import DataReference, _prepare_scorers, quality
from flm_core.samplers import categorical_sample
from flm_core.tokens import decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an FLM or FMLM checkpoint")
    parser.add_argument("--data", default="data/wiki")
    parser.add_argument("--evaluator", default="checkpoints/ar-wiki")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    pipe = load(args.checkpoint)
    if pipe.spec.discrete:
        raise SystemExit(f"error: {args.checkpoint} is an {pipe.spec.label}; the final decode is a flow's")
    last = {}
    pipe.network.output_layer.register_forward_hook(lambda module, inputs, out: last.update(logits=out))
    gen = pipe.generate(args.num_samples, args.steps, seed=args.seed)
    logits = last["logits"].float()  # (B, L, K): the last call, whose softmax the last step returns
    assert torch.equal(logits.argmax(-1), gen.tokens), "the hooked call is not the one the tokens come from"
    scorer, encoder = _prepare_scorers(args.evaluator, True, "cpu")
    reference = DataReference(args.data, args.num_samples, args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    rows = []
    for temperature in args.temperatures:
        tokens = gen.tokens if temperature == 0 else categorical_sample(torch.softmax(logits / temperature, -1),
                                                                        generator)  # token ~ softmax(l / T)
        texts = [decode(pipe.tokenizer, row.tolist()) for row in tokens]
        rows.append({"temperature": temperature, "changed_share": float((tokens != gen.tokens).float().mean()),
                     **quality(texts, tokens, reference, scorer, encoder), "examples": texts[:2]})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "examples"}), flush=True)
    top = torch.softmax(logits, -1).max(-1).values  # max_k D_k per position
    result = {"checkpoint": args.checkpoint, "steps": args.steps, "num_samples": args.num_samples, "seed": args.seed,
              "mean_top_probability": float(top.mean()), "share_top_below_half": float((top < 0.5).float().mean()),
              "generation_seconds": gen.seconds, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""The paper's Gen PPL tables from the authors' released checkpoints, scored as their evaluation scripts score.

`reproduce("lm1b")` samples FMLM-B-LM1B at 1, 2, 4 and 8 steps and FLM-B-LM1B at 1024 steps (the same seed
for every setting) and scores each set as the authors do (docs/recipe.md, "Reproducing the paper's table"):
- texts: the sampling tokenizer's batch decode with its special tokens kept ("[CLS] ... [SEP]");
- Gen PPL: the evaluator (gpt2-large by default) retokenizes the texts, truncated to the model's length L and
  padded with EOS; the NLL of ids[1:] given ids[:-1] (no BOS added) counts every non-EOS token and the
  first EOS; exp(sum NLL / count) over all samples, token-weighted;
- entropy: per sample, the entropy (nats) of its sampled ids' histogram, averaged over samples.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from flm_core.metrics import HFEvaluator, load_evaluator, unigram_entropy

TABLES = {  # the authors' README table: FMLM at 1/2/4/8 steps, FLM at 1024 steps
    "lm1b": (("david3684/FMLM-B-LM1B", (1, 2, 4, 8)), ("david3684/FLM-B-LM1B", (1024,))),
    "owt": (("david3684/FMLM-B-OWT", (1, 2, 4, 8)), ("david3684/FLM-B-OWT", (1024,))),
}
REPORTED = {  # (table, kind, steps) -> (Gen PPL, entropy) of the authors' README "Full results", as quoted in
    # notebooks/05 (their evaluator and sample count; not measured here)
    ("lm1b", "flm", 8): (243.36, 2.41), ("lm1b", "flm", 128): (112.54, 4.34), ("lm1b", "flm", 1024): (96.91, 4.29),
    ("lm1b", "fmlm", 1): (119.34, 4.16), ("lm1b", "fmlm", 4): (98.76, 4.21),
    ("owt", "flm", 128): (103.30, 5.58), ("owt", "flm", 1024): (62.23, 5.33),
    ("owt", "fmlm", 1): (168.30, 5.17), ("owt", "fmlm", 4): (111.31, 5.26),
}
EVALUATOR = "gpt2-large"  # configs/config.yaml:67
EVAL_BATCH = 8  # configs/config.yaml:65 (eval.perplexity_batch_size)


def authors_texts(tokenizer, tokens: torch.Tensor) -> list[str]:
    """(B, L) ids -> texts with the special tokens kept, as `tokenizer.batch_decode(samples)` writes them."""
    return tokenizer.decode_batch([row.tolist() for row in tokens], skip_special_tokens=False)


@torch.inference_mode()
def authors_nll(texts: Sequence[str], evaluator: HFEvaluator, max_length: int,
                batch_size: int = EVAL_BATCH) -> tuple[float, int]:
    """(sum of NLL, tokens counted) of the texts under the evaluator, counted as the authors count."""
    tok, model = evaluator.tokenizer, evaluator.model
    eos = tok.eos_token_id
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        ids = [tok(t, add_special_tokens=False)["input_ids"][:max_length] for t in texts[start:start + batch_size]]
        width = max(len(r) for r in ids)
        if width < 2:
            continue
        batch = torch.full((len(ids), width), eos, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            batch[i, :len(row)], mask[i, :len(row)] = torch.tensor(row, dtype=torch.long), 1
        batch, mask = batch.to(evaluator.device), mask.to(evaluator.device)
        logits = model(input_ids=batch, attention_mask=mask).logits.float()
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), batch[:, 1:], reduction="none")  # (B, W-1)
        first_eos = (batch == eos).cumsum(-1) == 1
        counted = (first_eos | (batch != eos))[:, 1:]  # every non-EOS token and the first EOS
        total += float((nll * counted).sum())
        count += int(counted.sum())
    return total, count


def reproduce(table: str = "lm1b", evaluator: str = EVALUATOR, num_samples: int = 1024, batch_size: int = 64,
              seed: int = 1, device: str = "cpu", flm_steps: Sequence[int] | None = None,
              report: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Rows {model, kind, steps, nfe, num_samples, gen_ppl, entropy, seconds, example} of one paper table.

    `flm_steps` replaces the FLM's 1024 steps (a quick look on a CPU); `report(row)` sees each row as it lands.
    """
    from flm_core.pipeline import load

    if table not in TABLES:
        raise ValueError(f"no table {table!r}: choose {' or '.join(TABLES)}")
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"--num-samples and --batch-size must be positive (got {num_samples}, {batch_size})")
    scorer = load_evaluator(evaluator, device=device)
    if not isinstance(scorer, HFEvaluator):
        raise ValueError(f"evaluator {evaluator}: the paper scores with a Hugging Face causal LM (gpt2-large), "
                         "not one of our AR checkpoints")
    rows = []
    for repo, grid in TABLES[table]:
        pipe = load(repo, device=device)
        for steps in (flm_steps or grid) if pipe.kind == "flm" else grid:
            tokens, seconds = [], 0.0
            for start in tqdm(range(0, num_samples, batch_size), desc=f"{repo} @ {steps} steps", unit="batch",
                              leave=False):
                gen = pipe.generate(min(batch_size, num_samples - start), steps, seed=seed + start)
                tokens.append(gen.tokens.cpu())
                seconds += gen.seconds
            tokens = torch.cat(tokens)
            texts = authors_texts(pipe.tokenizer, tokens)
            nll, count = authors_nll(texts, scorer, max_length=pipe.seq_len)
            row = {"model": repo, "kind": pipe.kind, "steps": steps, "nfe": gen.nfe, "num_samples": num_samples,
                   "gen_ppl": math.exp(nll / count) if count else float("nan"), "scored_tokens": count,
                   "entropy": unigram_entropy(tokens), "seconds": seconds, "example": texts[0]}
            rows.append(row)
            if report is not None:
                report(row)
    return {"table": table, "evaluator": evaluator, "seed": seed, "device": device, "rows": rows,
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S")}


def markdown(result: dict[str, Any]) -> str:
    """The table as the authors' README lays it out (model, steps, Gen PPL, entropy), beside their figures."""
    lines = [f"Gen PPL under {result['evaluator']}, {result['rows'][0]['num_samples'] if result['rows'] else 0} "
             f"samples, seed {result['seed']}, {result['device']} ({result['timestamp']}); \"reported\": the "
             "authors' README (flm_core.paper.REPORTED)", "",
             "| model | steps | Gen PPL | entropy | reported Gen PPL | reported entropy | sampling s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        ppl, entropy = REPORTED.get((result["table"], r["kind"], r["steps"]), ("-", "-"))
        lines.append(f"| {r['model']} | {r['steps']} | {r['gen_ppl']:.2f} | {r['entropy']:.3f} | {ppl} | {entropy} "
                     f"| {r['seconds']:.1f} |")
    return "\n".join(lines) + "\n"

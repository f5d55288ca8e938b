"""FLM Explorer core: train, sample and evaluate flow language models (FLM, FMLM) and baselines.

Public API:
    pipe = flm_core.load(path)                  # a checkpoint directory
    gen = pipe.generate(num_samples, steps, seed, record=False)
    gen.tokens, gen.texts, gen.seconds, gen.nfe, gen.trajectory
    pipe.logits(x, s, t=None)                   # raw network output (B, L, K)
"""
from flm_core.pipeline import Generation, Pipeline, load

__all__ = ["Generation", "Pipeline", "load"]

"""dgm_jax: deep generative models trained by maximum likelihood, in JAX/Flax.

Public API:
    load(workdir, checkpoint="best")              -> LoadedRun(.model, .params, .config, .step)
    log_prob(model, params, x, y=None)             -> [B] exact log p(x | y) in nats
    sample(model, params, rng, num_samples, y=None, temperature=1.0, method="auto") -> [N, H, W, C]
    complete(model, params, rng, x, num_given_rows, y=None)  -> x with the rows below num_given_rows sampled
    train_and_evaluate(config, workdir)            -> results dict (also results.json)
"""
from dgm_jax.api import LoadedRun, complete, load, log_prob, sample
from dgm_jax.train import train_and_evaluate

__all__ = ["LoadedRun", "complete", "load", "log_prob", "sample", "train_and_evaluate"]

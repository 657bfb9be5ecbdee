"""dgm_jax: deep generative models trained by maximum likelihood, in JAX/Flax.

Public API (imported on first use, so that ``import dgm_jax`` and building a
model do not load orbax, grain, tensorboardX or matplotlib):

    build_run(config)                              -> Run: data, model, optimizer, runner, checkpoint dir
    train_and_evaluate(config, workdir)            -> results dict (also results.json)
    load(workdir, checkpoint="best")              -> LoadedRun(.model, .params, .config, .step, ...)
    log_prob(model, params, x, y=None)             -> [B] exact log p(x | y) in nats
    sample(model, params, rng, num_samples, y=None, temperature=1.0, method="auto") -> [N, H, W, C]
    complete(model, params, rng, x, num_given_rows, y=None)  -> x with the rows below num_given_rows sampled
"""
import importlib

from dgm_jax import xla_cpu as _xla_cpu

_xla_cpu.configure()   # XLA:CPU options, before any device is used (see dgm_jax/xla_cpu.py)

_PUBLIC = {
    "LoadedRun": "dgm_jax.api", "load": "dgm_jax.api", "log_prob": "dgm_jax.api",
    "sample": "dgm_jax.sampling", "complete": "dgm_jax.sampling",
    "Run": "dgm_jax.assembly", "build_run": "dgm_jax.assembly",
    "train_and_evaluate": "dgm_jax.train",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dgm_jax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))

"""The public Python API used by evaluation scripts and notebooks.

    run = dgm_jax.load("runs/quickstart")              # .model, .params, .config, .step
    lp = dgm_jax.log_prob(run.model, run.params, x)     # [B] nats, exact
    xs = dgm_jax.sample(run.model, run.params, jax.random.key(0), 64)
    xc = dgm_jax.api.complete(run.model, run.params, jax.random.key(1), x, num_given_rows=14)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax import input_checks, likelihood, rundir
from dgm_jax.config_schema import Config
from dgm_jax.sampling import complete, sample  # noqa: F401 - re-exported


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    model: Any                 # flax.linen module
    params: Any                # evaluation parameters (the EMA when the run kept one)
    config: Config
    step: int                  # the checkpoint's step
    image_shape: tuple[int, int, int]
    num_classes: int
    workdir: Path
    num_levels: int = 2        # K values per sub-pixel (2: binary)
    likelihood: str = "bernoulli"   # the observation model (dgm_jax/observations)


def log_prob(model, params, x, y=None) -> jax.Array:
    """Exact log p(x | y) in nats, shape [B], for x [B, H, W, C] on the model's grid (0/1, or level / (K - 1)).

    y: None, int class labels [B], or condition vectors [B, D]. For a MADE
    mask ensemble this is the log of the mixture's probability.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be shaped [B, H, W, C], got {x.shape}")
    if tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"x has image shape {tuple(x.shape[1:])}, the model expects {tuple(model.image_shape)}")
    if not isinstance(x, jax.core.Tracer):     # traced: the log-likelihood itself is NaN for bad values
        model.obs.check_data(np.asarray(x), "log_prob input x")
    input_checks.check_condition(model, y, x.shape[0], "log_prob input y", params=params)
    return _jitted_log_prob(model, params, x, y)


_jitted_log_prob = jax.jit(likelihood.model_log_prob, static_argnums=0)


def load(workdir: str | Path, checkpoint: str | int = "best") -> LoadedRun:
    """Loads a run's model, evaluation parameters and config from its workdir.

    checkpoint: 'best' (best validation NLL), 'latest' or a step number. Only the
    parameters are restored (the EMA when the run kept one); no optimizer is built.
    """
    from dgm_jax import assembly, checkpointing  # noqa: WPS433 - orbax only when a run is loaded

    workdir, cfg, info = rundir.read_run(workdir)
    model = assembly.build_model_for(cfg, image_shape=info["image_shape"], num_levels=info["num_levels"],
                                     num_classes=info["num_classes"])
    if not (workdir / "checkpoints").is_dir():
        raise rundir.CheckpointError(f"No checkpoint found in {workdir / 'checkpoints'}.")
    ckpt = checkpointing.Checkpointer(workdir, keep=cfg.train.keep_checkpoints, async_save=False)
    try:
        step = rundir.resolve_checkpoint(ckpt, checkpoint)
        x = jnp.zeros((1,) + tuple(info["image_shape"]), jnp.float32)
        y = jnp.zeros((1, info["cond_dim"]), jnp.float32) if cfg.model.conditional else None
        target = jax.eval_shape(lambda: model.init(jax.random.key(0), x, y)["params"])
        params = ckpt.restore_params(step, target, "ema_params" if info.get("use_ema") else "params")
    finally:
        ckpt.close()
    return LoadedRun(model=model, params=params, config=cfg, step=step, image_shape=tuple(info["image_shape"]),
                     num_classes=info["num_classes"], workdir=workdir, num_levels=int(info["num_levels"]),
                     likelihood=info["likelihood"])

"""The public Python API used by evaluation scripts and notebooks.

    run = dgm_jax.load("runs/quickstart")              # .model, .params, .config, .step
    lp = dgm_jax.log_prob(run.model, run.params, x)     # [B] nats, exact
    xs = dgm_jax.sample(run.model, run.params, jax.random.key(0), 64)
    xc = dgm_jax.api.complete(run.model, run.params, jax.random.key(1), x, num_given_rows=14)
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from dgm_jax import checkpointing, config_schema, models, steps
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


def log_prob(model, params, x, y=None) -> jax.Array:
    """Exact log p(x | y) in nats, shape [B], for binary x [B, H, W, C].

    y: None, int class labels [B], or condition vectors [B, D]. For a MADE
    mask ensemble this is the log of the mixture's probability.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be shaped [B, H, W, C], got {x.shape}")
    if tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"x has image shape {tuple(x.shape[1:])}, the model expects {tuple(model.image_shape)}")
    if not isinstance(x, jax.core.Tracer):
        from dgm_jax.likelihood import check_binary
        check_binary(np.asarray(x), "log_prob input x")
    if getattr(model, "conditional", False) and y is None:
        raise ValueError("a conditional model needs y: int labels [B] or vectors [B, D]")
    return _jitted_log_prob(model, params, x, y)


_jitted_log_prob = jax.jit(steps.model_log_prob, static_argnums=0)


def resolve_checkpoint(ckpt: checkpointing.Checkpointer, which: str | int) -> int:
    """'best' (best validation NLL; latest if none was validated), 'latest', or a step number."""
    steps_ = ckpt.all_steps()
    if not steps_:
        raise checkpointing.CheckpointError(f"No checkpoint found in {ckpt.directory}.")
    if which == "latest":
        return steps_[-1]
    if which == "best":
        meta = ckpt.manager.restore(steps_[-1], args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        best = int(meta["record"]["best_step"])
        return best if best in steps_ else steps_[-1]
    try:
        step = int(which)
    except ValueError:
        raise ValueError(f"checkpoint must be 'best', 'latest' or a step number, got {which!r}") from None
    if step not in steps_:
        raise checkpointing.CheckpointError(f"No checkpoint at step {step} in {ckpt.directory}; "
                                            f"available: {steps_}.")
    return step


def load(workdir: str | Path, checkpoint: str | int = "best") -> LoadedRun:
    """Loads a run's model, evaluation parameters and config from its workdir."""
    workdir = Path(workdir).absolute()
    for name in ("config.json", checkpointing.RUN_INFO):
        if not (workdir / name).exists():
            raise checkpointing.CheckpointError(f"{workdir} is not a dgm_jax run directory ({name} is missing).")
    cfg = config_schema.from_config_dict(json.loads((workdir / "config.json").read_text()))
    info = json.loads((workdir / checkpointing.RUN_INFO).read_text())
    model = models.build_model(cfg.model, tuple(info["image_shape"]), info["num_classes"])
    if not (workdir / "checkpoints").is_dir():
        raise checkpointing.CheckpointError(f"No checkpoint found in {workdir / 'checkpoints'}.")
    ckpt = checkpointing.Checkpointer(workdir, keep=cfg.train.keep_checkpoints, async_save=False)
    try:
        step, params = _restore_params(ckpt, checkpoint, model, cfg, info, workdir)
    finally:
        # orbax cleans temporary directories in a background thread started by the
        # manager, which close() does not join; a script exiting right after an error
        # would see it die with a traceback at interpreter shutdown. Wait for it.
        getattr(ckpt.manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
        ckpt.close()
    return LoadedRun(model=model, params=params, config=cfg, step=step,
                     image_shape=tuple(info["image_shape"]), num_classes=info["num_classes"], workdir=workdir)


def _restore_params(ckpt: checkpointing.Checkpointer, checkpoint, model, cfg: Config, info: dict, workdir: Path):
    """(step, evaluation params) of the chosen checkpoint, checked against the model's structure."""
    step = resolve_checkpoint(ckpt, checkpoint)
    # Restore only the parameters, without building an optimizer: the target
    # is the model's own parameter structure from init.
    x = jnp.zeros((1,) + tuple(info["image_shape"]), jnp.float32)
    y = jnp.zeros((1, info["cond_dim"]), jnp.float32) if cfg.model.conditional else None
    target = jax.eval_shape(lambda: model.init(jax.random.key(0), x, y)["params"])
    field = "ema_params" if info.get("use_ema") else "params"
    try:
        restored = ckpt.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
            item={field: target}, partial_restore=True)))["state"]
        params = restored[field]
        checkpointing._check_finite_structure(params, target)
    except Exception as e:  # noqa: BLE001
        raise checkpointing.CheckpointError(
            f"The checkpoint at step {step} in {workdir} does not match the model built from its config "
            f"({cfg.model.name}): {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    return step, params

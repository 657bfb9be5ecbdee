"""The optimizer, built in one function from the config.

    tx = clip_by_global_norm(c)            (if optim.grad_clip_norm > 0)
         -> [add_decayed_weights(wd)]      (sgd / rmsprop / adam with weight_decay > 0)
         -> adam | adamw | sgd | rmsprop   (scaled by the learning-rate schedule)

Weight decay here is an optimizer transformation (decoupled, applied to
kernels only, not biases); it is not part of the loss. Penalties that belong
to the objective, loss = nll + sum_k lambda_k R_k, live in dgm_jax.penalties.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dgm_jax import kernels
from dgm_jax.config_schema import OptimConfig

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "rmsprop")


def make_schedule(cfg: OptimConfig, num_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to the peak rate, then constant or cosine decay to the end."""
    warmup = min(cfg.warmup_steps, max(num_steps - 1, 0))
    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=warmup,
            decay_steps=max(num_steps, warmup + 1), end_value=cfg.learning_rate * cfg.final_lr_fraction)
    if cfg.schedule == "constant":
        if warmup == 0:
            return optax.constant_schedule(cfg.learning_rate)
        return optax.join_schedules(
            [optax.linear_schedule(0.0, cfg.learning_rate, warmup), optax.constant_schedule(cfg.learning_rate)],
            [warmup])
    raise ValueError(f"Unknown learning-rate schedule {cfg.schedule!r}. Valid names: constant, cosine.")


def global_norm(tree) -> jax.Array:
    """sqrt(sum of squares of every leaf): optax.global_norm's value, each leaf's sum of squares
    computed by dgm_jax.kernels (on the CPU as a matrix-vector product, see kernels/cpu.py)."""
    total = jnp.zeros((), jnp.float32)
    for x in jax.tree.leaves(tree):
        total = total + kernels.sum_of_squares(x)
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """optax.clip_by_global_norm with :func:`global_norm`: updates * min(1, max_norm / ||updates||)."""
    def update(updates, state, params=None):
        del params
        scale = jnp.minimum(1.0, max_norm / global_norm(updates))
        return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates), state
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _kernels_only(params):
    """True for weight matrices / kernels (ndim > 1), False for biases and scales."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg: OptimConfig, num_steps: int) -> optax.GradientTransformation:
    if cfg.name not in OPTIMIZER_NAMES:
        raise ValueError(f"Unknown optimizer {cfg.name!r}. Valid names: {', '.join(OPTIMIZER_NAMES)}.")
    lr = make_schedule(cfg, num_steps)
    parts = []
    if cfg.grad_clip_norm > 0:
        parts.append(clip_by_global_norm(cfg.grad_clip_norm))
    if cfg.name == "adamw":
        parts.append(optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, mask=_kernels_only))
    else:
        if cfg.weight_decay > 0:
            parts.append(optax.add_decayed_weights(cfg.weight_decay, mask=_kernels_only))
        if cfg.name == "adam":
            parts.append(optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
        elif cfg.name == "sgd":
            parts.append(optax.sgd(lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov))
        else:
            parts.append(optax.rmsprop(lr, eps=cfg.eps, momentum=cfg.momentum or None))
    return optax.chain(*parts)

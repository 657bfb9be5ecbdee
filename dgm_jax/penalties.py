"""Penalties added to the negative log-likelihood, composed like optax transformations.

The training objective (dgm_jax/steps.py) is

    loss(theta) = nll(theta) + sum_k lambda_k(step) * R_k(theta; batch, outputs, rng),

with nll the mini-batch mean of -log p(x) in nats per image, so each R_k is
in the same units: "nats per image". Pieces, each small and pure:

  penalty    R(params, *, batch, outputs, observation, rng) -> scalar.
             Parameter penalties (l2, l1) read only `params`; data penalties
             (confidence) read the model's `outputs` [B, H, W, C, P] of the
             current batch and the observation model that interprets them.
  masked     restricts a parameter penalty to some leaves of the tree:
             'all', 'kernels' (ndim > 1), 'biases' (ndim == 1), 're:<regex>'
             (re.search on the leaf path 'res_conv_0/kernel'), a callable
             (path: str, leaf) -> bool, or a pytree of bools.
  schedule   the weight lambda as a function of the step: constant(w) or
             linear_warmup(w, n) (0 at step 0, w from step n on).
  combine    sums named, weighted terms; returns (weighted total, {name: R_k})
             with the UNweighted values, which steps.py logs as penalty/<name>.
  from_config(cfg.penalties, num_steps) builds all of the above from
             config_schema.PenaltyConfig entries (name, weight, mask, schedule,
             warmup_steps).

A term of weight 0 is still computed and logged: a free monitor (e.g. of the
kernels' squared norm) that does not change training.

Penalty in the loss vs. optimizer weight decay: ``l2`` here is part of the
objective, so its gradient lambda*theta passes through Adam's per-coordinate
scaling (an L2 prior, MAP estimation; with the NLL a per-image mean, lambda =
1 / (N sigma^2) for N training images and a N(0, sigma^2) prior). Decoupled
weight decay (optim.weight_decay, an optimizer transform) shrinks every kernel
by lr*wd per step regardless of its gradient history (Loshchilov & Hutter,
2019). For SGD the two coincide (lambda = wd); for Adam they do not.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

log = logging.getLogger(__name__)

# penalty(params, *, batch, outputs, observation, rng) -> scalar
Penalty = Callable[..., jax.Array]
# schedule(step) -> weight
Schedule = Callable[[jax.Array], jax.Array]


# ---------------------------------------------------------------------------
# Penalties.

def l2(params, **_) -> jax.Array:
    """Half the squared Euclidean norm, R = 1/2 sum_i theta_i^2 over all leaves.

    The 1/2 makes the gradient lambda*theta, so lambda is directly comparable
    with an SGD weight-decay coefficient (and equals 1/(N sigma^2) for a
    Gaussian prior N(0, sigma^2), N training images).
    """
    return 0.5 * sum((jnp.sum(jnp.square(p.astype(jnp.float32))) for p in jax.tree.leaves(params)),
                     jnp.zeros((), jnp.float32))


def l1(params, **_) -> jax.Array:
    """R = sum_i |theta_i| over all leaves (a Laplace prior; encourages exact zeros only with proximal steps)."""
    return sum((jnp.sum(jnp.abs(p.astype(jnp.float32))) for p in jax.tree.leaves(params)),
               jnp.zeros((), jnp.float32))


def confidence(params, *, outputs: jax.Array, observation, batch: Mapping[str, Any] | None = None,
               **_) -> jax.Array:
    """Negative entropy of the predicted conditionals (Pereyra et al., 2017), in nats per image.

        R = (1/B) sum_b sum_i sum_v p_bi(v) log p_bi(v),   p_bi = p(x_i | x_<i, y) of example b

    in [-D log K, 0] for D sub-pixels of K levels (for Bernoulli sub-pixels,
    p log p + (1 - p) log(1 - p) with p = sigmoid(logit)). Why: an
    autoregressive model trained by maximum likelihood on a small set drives
    its conditionals towards one value on the training images; on held-out
    images a wrong confident prediction costs -log p(x_i), without bound.
    Penalizing low entropy keeps the conditionals away from certainty (a
    label-smoothing-like regularizer that, unlike l2, acts on the outputs, so
    it does not depend on the parameterization). R + D log K =
    sum_i KL(p_i || uniform). Needs an observation model with a per-sub-pixel
    entropy (bernoulli, categorical).

    outputs: [B, H, W, C, P] of the training batch (the mask in use for MADE).
    batch['mask'] [B], if present, weights the examples (padding = 0).
    """
    del params
    per_example = observation.neg_entropy(outputs)
    mask = None if batch is None else batch.get("mask")
    if mask is None:
        return jnp.mean(per_example)
    mask = mask.astype(jnp.float32)
    return jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)


class _Spec(NamedTuple):
    fn: Penalty
    on_params: bool      # reads only params (masks apply); False: reads outputs/batch


_PENALTIES: dict[str, _Spec] = {
    "l2": _Spec(l2, True),
    "l1": _Spec(l1, True),
    "confidence": _Spec(confidence, False),
}
PENALTY_NAMES = tuple(_PENALTIES)


# ---------------------------------------------------------------------------
# Masks over the parameter tree.

MASK_NAMES = ("all", "kernels", "biases")
Mask = Any   # str | Callable[[str, leaf], bool] | pytree of bools


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def path_str(path) -> str:
    """'res_conv_0/kernel' for the jax.tree_util key path of a leaf."""
    return "/".join(_key_name(k) for k in path)


def mask_fn(mask: Mask) -> Callable[[Any], Any]:
    """params -> pytree of bools of the same structure (True = penalized).

    'all' | 'kernels' (ndim > 1: conv kernels, dense matrices, embeddings) |
    'biases' (ndim == 1: biases and per-channel scales) | 're:<regex>' (re.search
    on the path, e.g. 're:^res_conv_.*/kernel$') | callable (path, leaf) -> bool |
    a pytree of bools (used as is).
    """
    if callable(mask):
        return lambda params: jax.tree_util.tree_map_with_path(lambda p, x: bool(mask(path_str(p), x)), params)
    if isinstance(mask, str):
        if mask == "all":
            rule = lambda path, x: True
        elif mask == "kernels":
            rule = lambda path, x: x.ndim > 1
        elif mask == "biases":
            rule = lambda path, x: x.ndim == 1
        elif mask.startswith("re:"):
            try:
                pattern = re.compile(mask[3:])
            except re.error as e:
                raise ValueError(f"penalty mask {mask!r} is not a valid regular expression: {e}") from None
            rule = lambda path, x: pattern.search(path) is not None
        else:
            raise ValueError(f"Unknown penalty mask {mask!r}. Valid masks: {', '.join(MASK_NAMES)}, "
                             "or 're:<regex>' matched against leaf paths such as 'res_conv_0/kernel'.")
        return lambda params: jax.tree_util.tree_map_with_path(lambda p, x: rule(path_str(p), x), params)
    return lambda params: mask   # a pytree of bools


def select(params, mask: Mask) -> list:
    """The leaves of `params` that `mask` selects, in tree order (a list, itself a pytree)."""
    flags = jax.tree.leaves(mask_fn(mask)(params))
    leaves = jax.tree.leaves(params)
    if len(flags) != len(leaves):
        raise ValueError(f"penalty mask has {len(flags)} leaves, the parameters {len(leaves)}")
    return [x for x, m in zip(leaves, flags) if m]


def masked(penalty: Penalty, mask: Mask) -> Penalty:
    """The parameter penalty `penalty` applied only to the leaves `mask` selects (like optax.masked).

    A mask that selects no leaf is an error (e.g. 'biases' of a model without biases).
    """
    if isinstance(mask, str):
        mask_fn(mask)  # validate the name now, not at the first step

    def apply(params, **kwargs):
        chosen = select(params, mask)
        if not chosen:
            raise ValueError(f"penalty mask {mask!r} selects no parameter; paths are e.g. "
                             f"{[path_str(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)][:4]}")
        return penalty(chosen, **kwargs)

    return apply


# ---------------------------------------------------------------------------
# Weight schedules.

SCHEDULE_NAMES = ("constant", "linear_warmup")


def constant(weight: float) -> Schedule:
    """lambda(step) = weight."""
    return lambda step: jnp.asarray(weight, jnp.float32)


def linear_warmup(weight: float, warmup_steps: int) -> Schedule:
    """lambda(step) = weight * min(1, step / warmup_steps): 0 at step 0, the full weight from warmup_steps on."""
    if warmup_steps <= 0:
        raise ValueError(f"linear_warmup needs warmup_steps > 0, got {warmup_steps}")
    return lambda step: weight * jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)


# ---------------------------------------------------------------------------
# The combinator.

class Term(NamedTuple):
    name: str                        # logged as penalty/<name>
    weight: float | Schedule         # lambda, or a schedule of the step
    penalty: Penalty


def combine(*terms: Term, reads_outputs: bool = True) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
    """penalty_fn(params, *, batch, outputs, observation, step, rng) -> (sum_k lambda_k(step) R_k, {name_k: R_k}).

    Each term gets its own key, fold_in(rng, k). The dict holds the unweighted
    values (what steps.py logs); the total is what is added to the NLL.
    ``penalty_fn.reads_outputs`` tells the train step whether the terms need the model's
    outputs (else it may compute log p without materializing them, and passes
    outputs=None); say False only when every term reads params alone.
    """
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise ValueError(f"penalty names must be unique, got {names}")

    def penalty_fn(params, *, batch=None, outputs=None, observation=None, step=0, rng=None):
        total = jnp.zeros((), jnp.float32)
        values = {}
        for k, term in enumerate(terms):
            term_rng = None if rng is None else jax.random.fold_in(rng, k)
            value = term.penalty(params, batch=batch, outputs=outputs, observation=observation, rng=term_rng)
            weight = term.weight(step) if callable(term.weight) else jnp.asarray(term.weight, jnp.float32)
            total = total + weight * value
            values[term.name] = value
        return total, values

    penalty_fn.reads_outputs = reads_outputs
    return penalty_fn


_FIELDS = ("name", "weight", "mask", "schedule", "warmup_steps")   # config_schema.PenaltyConfig's


def _field(pc, name: str, default=None):
    if isinstance(pc, (tuple, list)):            # ("l2", 1e-4, "kernels"), as written in a config file
        pc = dict(zip(_FIELDS, pc))
    if isinstance(pc, Mapping):
        return pc.get(name, default)
    return getattr(pc, name, default)


def term_name(name: str, mask: str) -> str:
    """The logged name of a configured term: 'l2' for mask 'all', else 'l2_kernels', 'l2_re_res_conv...'."""
    if mask == "all":
        return name
    return f"{name}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', mask).strip('_')}"


def from_config(penalty_configs: Sequence[Any], num_steps: int):
    """The penalty_fn of cfg.penalties (config_schema.PenaltyConfig entries, or tuples / mappings of its fields).

    Returns penalty_fn(params, *, batch, outputs, observation, step, rng) -> (weighted total, {name: value}),
    names from :func:`term_name` (made unique with _2, _3 if two terms collide).
    Unknown names, masks or schedules, and negative weights, are ValueErrors.
    """
    terms, seen, reads_outputs = [], {}, False
    for i, pc in enumerate(penalty_configs):
        name, weight = _field(pc, "name"), _field(pc, "weight")
        mask = _field(pc, "mask", "all")
        schedule = _field(pc, "schedule", "constant")
        warmup = int(_field(pc, "warmup_steps", 0) or 0)
        where = f"config.penalties[{i}]"
        if name not in _PENALTIES:
            raise ValueError(f"{where}: unknown penalty {name!r}. Valid names: {', '.join(PENALTY_NAMES)}.")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) \
                or weight < 0:
            raise ValueError(f"{where}: the weight of {name!r} must be a finite number >= 0, got {weight!r}")
        spec = _PENALTIES[name]
        reads_outputs = reads_outputs or not spec.on_params
        if not isinstance(mask, str):
            raise ValueError(f"{where}: mask must be a string, got {mask!r}")
        if spec.on_params:
            try:
                fn = spec.fn if mask == "all" else masked(spec.fn, mask)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        elif mask != "all":
            raise ValueError(f"{where}: {name!r} depends on the model's predictions, not on a part of the "
                             f"parameters; its mask must be 'all', got {mask!r}")
        else:
            fn = spec.fn
        if schedule == "constant":
            w = float(weight)
        elif schedule == "linear_warmup":
            try:
                w = linear_warmup(float(weight), warmup)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            if warmup > num_steps:
                log.warning("%s: warmup_steps=%d exceeds train.num_steps=%d; %r never reaches its full weight.",
                            where, warmup, num_steps, name)
        else:
            raise ValueError(f"{where}: unknown schedule {schedule!r}. Valid schedules: {', '.join(SCHEDULE_NAMES)}.")
        base = term_name(name, mask)
        seen[base] = seen.get(base, 0) + 1
        terms.append(Term(base if seen[base] == 1 else f"{base}_{seen[base]}", w, fn))
    return combine(*terms, reads_outputs=reads_outputs)

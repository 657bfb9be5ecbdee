"""Pure per-device training and evaluation steps.

Each function here runs on ONE device's shard of the global batch and
communicates only through collectives over the named axis ``AXIS``; how it is
mapped over devices (jax.pmap, or jax.shard_map on a 1-D mesh) is decided
outside, in dgm_jax.parallel. Static pieces (model, optimizer, penalty) are
bound with functools.partial.

The objective is the Monte-Carlo estimate of the expected negative
log-likelihood on the mini-batch plus the configured penalties,

    loss(theta) = -(1/B) sum_b log p_theta(x_b | y_b) + sum_k lambda_k R_k(theta),

whose gradient is an unbiased estimate of the gradient of
KL(p_data || p_theta) + penalties (up to the constant data entropy). A model
with a ``training_log_prob(x, y, rng)`` method (EoNADE) is trained on that
instead of log p: an unbiased estimate of its objective (there, log p averaged
over orderings), and the logged "nll" is that estimate.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from dgm_jax import likelihood, models, optim
from dgm_jax.models.conditioning import model_condition
from dgm_jax.train_state import TrainState

AXIS = "data"
DROPOUT_STREAM = 0x64726F70      # fold_in tag of the train step's dropout key ('drop')

# penalty_fn(params, *, batch, outputs, observation, step, rng) -> (weighted total, {name: value})
PenaltyFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def loss_fn(params, batch, rng, step, *, model, penalty_fn: PenaltyFn | None = None):
    """Returns (loss, aux) for one device's batch; aux holds the logged terms."""
    x = batch["x"]
    cond = model_condition(model, batch.get("y"))
    mask_rng, penalty_rng = jax.random.split(rng)
    n_masks = models.num_train_masks(model)
    mask_index = jax.random.randint(mask_rng, (), 0, n_masks) if n_masks > 1 else 0
    # Dropout (pixelcnn_pp, pixelsnail): a model is training when its apply is given a 'dropout' rng; evaluation,
    # sampling and init never pass one. A fold_in tag of its own leaves the streams above unchanged.
    rngs = {"dropout": jax.random.fold_in(rng, DROPOUT_STREAM)}
    reads_outputs = penalty_fn is not None and getattr(penalty_fn, "reads_outputs", True)
    outputs = model.apply({"params": params}, x, cond, mask_index=mask_index, rngs=rngs) if reads_outputs else None
    if hasattr(model, "training_log_prob"):
        # An order-agnostic model (EoNADE) trains on its own unbiased estimate of the
        # ordering-averaged log p (random orderings drawn from mask_rng); log_prob, exact, is for evaluation.
        log_p = model.apply({"params": params}, x, cond, mask_rng, method="training_log_prob")
    elif outputs is not None:
        log_p = model.obs.log_prob(outputs, x)
    else:   # the model's own log p (the same values; NADE's has a one-scan gradient)
        log_p = model.apply({"params": params}, x, cond, mask_index=mask_index, method="log_prob", rngs=rngs)
    nll = -jnp.mean(log_p)
    aux = {"nll": nll}
    loss = nll
    if penalty_fn is not None:
        total, terms = penalty_fn(params, batch=batch, outputs=outputs, observation=model.obs, step=step,
                                  rng=penalty_rng)
        loss = loss + total
        aux.update({f"penalty/{k}": v for k, v in terms.items()})
        aux["penalty/total"] = total
    aux["loss"] = loss
    return loss, aux


def train_step(state: TrainState, batch: dict, *, model, tx: optax.GradientTransformation,
               schedule: optax.Schedule, ema_decay: float, penalty_fn: PenaltyFn | None = None,
               num_dims: int) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on this device's shard; gradients averaged over AXIS.

    A non-finite loss or gradient norm never reaches the parameters: the update
    is dropped (params, optimizer state and EMA stay as they were), the step
    counter still advances, and num_skipped / first_bad_step record it. The
    host decides whether that stops the run (train.nonfinite_policy).
    """
    # One key per step; identical on every device, so that random choices
    # (e.g. MADE's mask index) agree across the data-parallel replicas.
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, aux), grads = grad_fn(state.params, batch, rng, state.step, model=model, penalty_fn=penalty_fn)
    if jax.lax.axis_size(AXIS) > 1:      # (one device: nothing to average, and no all-reduce copy)
        grads = jax.lax.pmean(grads, AXIS)
        aux = jax.lax.pmean(aux, AXIS)

    grad_norm = optim.global_norm(grads)
    finite = jnp.isfinite(aux["loss"]) & jnp.isfinite(grad_norm)
    # EMA with the usual warm-up (1 + t) / (10 + t), so early averages are not
    # dominated by the random initialisation.
    decay = jnp.minimum(ema_decay, (1.0 + state.step) / (10.0 + state.step))

    def apply(operand):
        params, opt_state, ema = operand
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params) if ema_decay > 0 else params
        return params, opt_state, ema

    # The update runs only when finite (lax.cond, not a select over every parameter).
    new_params, new_opt_state, new_ema = jax.lax.cond(
        finite, apply, lambda operand: operand, (state.params, state.opt_state, state.ema_params))
    new_state = state.replace(
        step=state.step + 1, params=new_params, opt_state=new_opt_state, ema_params=new_ema,
        num_skipped=state.num_skipped + jnp.where(finite, 0, 1).astype(jnp.int32),
        first_bad_step=jnp.where((state.first_bad_step < 0) & ~finite, state.step, state.first_bad_step),
    )
    metrics = dict(aux)
    metrics["bits_per_dim"] = likelihood.bits_per_dim(aux["nll"], num_dims)
    metrics["grad_norm"] = grad_norm
    # (The parameter norm is logged too, but read by the host at logging steps only,
    # Runner.param_norm: a pass over every parameter each step cost MADE's step 5%.)
    metrics["learning_rate"] = schedule(state.step)
    metrics["finite"] = finite.astype(jnp.float32)
    return new_state, metrics


def train_steps(state: TrainState, batches: dict, **kwargs) -> tuple[TrainState, dict[str, jax.Array]]:
    """k optimizer steps in one device call: lax.scan of train_step over batches' leading axis [k, b, ...].

    Metrics are averaged over the k steps (the counters are the last values).
    """
    if jax.tree.leaves(batches)[0].shape[0] == 1:
        # One step: call it directly. (XLA:CPU runs convolutions inside a
        # while loop ~20x slower than outside one, so k = 1 must not scan.)
        state, metrics = train_step(state, jax.tree.map(lambda b: b[0], batches), **kwargs)
        return state, metrics
    state, metrics = jax.lax.scan(lambda s, b: train_step(s, b, **kwargs), state, batches)
    return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)


def eval_step(params, batch: dict, *, model) -> jax.Array:
    """Per-example log p(x | y) in nats for this device's batch, [b].

    Padding examples (batch['mask'] == 0) are scored too; the host drops them.
    """
    return likelihood.model_log_prob(model, params, batch["x"], batch.get("y"))

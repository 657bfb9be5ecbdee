"""The training state: everything a resumed run needs, as one pytree."""
from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    step: jax.Array            # int32 scalar: optimizer steps taken (applied or skipped)
    params: Any                # model parameters, float32
    opt_state: Any             # optax state
    ema_params: Any            # Polyak average of params (equal to params when EMA is off)
    rng: jax.Array             # root key of the run (raw uint32 key data; folded with step inside the step)
    num_skipped: jax.Array     # int32: updates dropped because loss or gradient was non-finite
    first_bad_step: jax.Array  # int32: first step with a non-finite update, -1 if none


def create(params, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    """The state at step 0 (the optimizer's initial state, EMA = params), built by ONE compiled
    program: op by op, every leaf's optimizer state would be a separate dispatch and compile."""
    return jax.jit(functools.partial(_create, tx))(params, rng)


def _create(tx: optax.GradientTransformation, params, rng: jax.Array) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        ema_params=jax.tree.map(jnp.copy, params),
        rng=jax.random.key_data(rng) if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng,
        num_skipped=jnp.zeros((), jnp.int32),
        first_bad_step=jnp.full((), -1, jnp.int32),
    )


def eval_params(state: TrainState, use_ema: bool):
    """The parameters used for evaluation and sampling."""
    return state.ema_params if use_ema else state.params

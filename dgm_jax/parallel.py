"""Data parallelism, kept apart from the per-device step.

The step functions in dgm_jax.steps are written for one device with a named
axis (``steps.AXIS``). A ``Runner`` maps them over all devices in one of two
ways, chosen by ``config.train.parallelism``:

* ``pmap``: state replicated with a leading device axis; host batches shaped
  [B, ...] are reshaped to [n_devices, B / n_devices, ...].
* ``shard_map``: one global jax.Array per leaf on a 1-D mesh ("data");
  state replicated (PartitionSpec()), batches split along their batch axis.

Both compute the same thing (tests/test_parallel.py checks the update is
equal), and both donate the state buffers of the train step.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dgm_jax import steps


def check_batch_divides(batch_size: int, num_devices: int, what: str = "train.batch_size") -> None:
    if batch_size % num_devices:
        raise ValueError(f"config.{what}={batch_size} does not divide over the {num_devices} devices; "
                         f"use a multiple of {num_devices}.")


class PmapRunner:
    """jax.pmap over the local devices."""

    def __init__(self, train_fn: Callable, eval_fn: Callable, devices=None):
        self.devices = list(devices or jax.local_devices())
        self.n = len(self.devices)
        # pmap consumes arrays whose leading axis is laid out over the devices.
        self._stacked = NamedSharding(Mesh(np.array(self.devices), (steps.AXIS,)), P(steps.AXIS))
        self._train = jax.pmap(train_fn, axis_name=steps.AXIS, devices=self.devices, donate_argnums=0)
        self._eval = jax.pmap(eval_fn, axis_name=steps.AXIS, devices=self.devices)

    def put_state(self, state):
        return jax.device_put(
            jax.tree.map(lambda x: np.broadcast_to(np.asarray(x)[None], (self.n,) + np.shape(x)), state),
            self._stacked)

    def get_state(self, state):
        """Host copy of the (replicated) state, device 0's."""
        return jax.device_get(jax.tree.map(lambda x: x[0], state))

    def put_batch(self, batch: dict, batch_axis: int = 0):
        """Host batch with batch axis `batch_axis` -> per-device shards on a new leading axis."""
        def split(x):
            x = np.asarray(x)
            b = x.shape[batch_axis]
            check_batch_divides(b, self.n, "batch size")
            x = x.reshape(x.shape[:batch_axis] + (self.n, b // self.n) + x.shape[batch_axis + 1:])
            x = np.moveaxis(x, batch_axis, 0)
            return jax.device_put(x, self._stacked)
        return jax.tree.map(split, batch)

    def train(self, state, batch):
        state, metrics = self._train(state, batch)
        return state, jax.tree.map(lambda m: m[0], metrics)

    def eval(self, params_replicated, batch) -> jax.Array:
        """Per-example values in the original batch order, [B]."""
        out = self._eval(params_replicated, batch)
        return out.reshape(-1)

    def params_for_eval(self, state, use_ema: bool):
        return state.ema_params if use_ema else state.params


class ShardMapRunner:
    """jax.shard_map over a 1-D mesh of the local devices."""

    def __init__(self, train_fn: Callable, eval_fn: Callable, devices=None):
        self.devices = list(devices or jax.local_devices())
        self.n = len(self.devices)
        self.mesh = Mesh(np.array(self.devices), (steps.AXIS,))
        self._replicated = NamedSharding(self.mesh, P())
        # Train batches are [k, B, ...] (k steps per dispatch): split axis 1.
        train = jax.shard_map(train_fn, mesh=self.mesh, in_specs=(P(), P(None, steps.AXIS)),
                              out_specs=(P(), P()), check_vma=False)
        self._train = jax.jit(train, donate_argnums=0)
        self._eval = jax.jit(jax.shard_map(eval_fn, mesh=self.mesh, in_specs=(P(), P(steps.AXIS)),
                                           out_specs=P(steps.AXIS), check_vma=False))

    def put_state(self, state):
        return jax.device_put(state, self._replicated)

    def get_state(self, state):
        return jax.device_get(state)

    def put_batch(self, batch: dict, batch_axis: int = 0):
        spec = P(*([None] * batch_axis + [steps.AXIS]))
        sharding = NamedSharding(self.mesh, spec)

        def put(x):
            check_batch_divides(np.shape(x)[batch_axis], self.n, "batch size")
            return jax.device_put(np.asarray(x), sharding)
        return jax.tree.map(put, batch)

    def train(self, state, batch):
        return self._train(state, batch)

    def eval(self, params, batch) -> jax.Array:
        return self._eval(params, batch)

    def params_for_eval(self, state, use_ema: bool):
        return state.ema_params if use_ema else state.params


RUNNERS = {"pmap": PmapRunner, "shard_map": ShardMapRunner}


def make_runner(parallelism: str, *, model, tx, schedule, ema_decay: float, penalty_fn, num_dims: int,
                devices=None):
    """Binds the static parts of the steps and maps them over the devices."""
    if parallelism not in RUNNERS:
        raise ValueError(f"Unknown parallelism {parallelism!r}. Valid names: {', '.join(RUNNERS)}.")
    train_fn = functools.partial(steps.train_steps, model=model, tx=tx, schedule=schedule,
                                 ema_decay=ema_decay, penalty_fn=penalty_fn, num_dims=num_dims)
    eval_fn = functools.partial(steps.eval_step, model=model)
    return RUNNERS[parallelism](train_fn, eval_fn, devices=devices)

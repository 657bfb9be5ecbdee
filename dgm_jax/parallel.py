"""Data parallelism, kept apart from the per-device step.

The step functions in dgm_jax.steps are written for one device with a named
axis (``steps.AXIS``). A ``Runner`` maps them over all devices in one of two
ways, chosen by ``config.train.parallelism``:

* ``pmap``: state replicated with a leading device axis; host batches shaped
  [B, ...] are reshaped to [n_devices, B / n_devices, ...].
* ``shard_map``: one global jax.Array per leaf on a 1-D mesh ("data") of
  every device of every process; state replicated (PartitionSpec()), batches
  split along their batch axis.

Both compute the same thing (tests/test_parallel.py checks the update is
equal), and both donate the state buffers of the train step.

Multi-process runs (dgm_jax.distributed) use ``shard_map``: the mesh holds the
devices of all processes, so the gradient mean spans all of them. Each process
hands ``put_batch(..., process_local=True)`` its own slice of the global
training batch (jax.make_array_from_process_local_data; the global batch is
the concatenation over processes in process order); evaluation batches are
global, the same on every process. The state is replicated on every device,
so ``get_state`` reads the copy on this process's first device, and the
per-example scores of ``eval`` come back replicated (an all-gather of B
numbers). ``pmap`` maps over the devices of one process only and refuses a
multi-process job.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dgm_jax import optim, steps


def _settles(devices) -> bool:
    """Whether a dispatch must finish before the next is queued: several CPU devices of one process.

    XLA:CPU runs every device's share of a step on one thread pool (as many threads as cores)
    and a collective (the gradient mean, the gathered scores) waits until every device's
    share has reached it. With many dispatches queued ahead, the pool's threads can all be
    holding shares that wait on the same collective while the missing share waits for a
    thread: a deadlock, seen with 2 CPU devices on 2 cores after 250 queued NADE steps. So
    on several CPU devices each dispatch settles before the next one starts (accelerators
    run each device on its own stream and keep the asynchronous queue).
    """
    return len(devices) > 1 and devices[0].platform == "cpu"


def _settled(settle: bool, out):
    """out, waited for when settle (see _settles)."""
    return jax.block_until_ready(out) if settle else out


def check_batch_divides(batch_size: int, num_devices: int, what: str = "train.batch_size") -> None:
    if batch_size % num_devices:
        raise ValueError(f"config.{what}={batch_size} does not divide over the {num_devices} devices; "
                         f"use a multiple of {num_devices}.")


class PmapRunner:
    """jax.pmap over the local devices."""

    model = None      # the model of the steps, set by make_runner

    def __init__(self, train_fn: Callable, eval_fn: Callable, devices=None):
        if jax.process_count() > 1:
            raise ValueError(f"config.train.parallelism='pmap' maps over the devices of one process, but this "
                             f"job has {jax.process_count()} processes; use --config.train.parallelism=shard_map "
                             "for multi-process training.")
        self.devices = list(devices or jax.local_devices())
        self.n = len(self.devices)
        self._settle = _settles(self.devices)
        # pmap consumes arrays whose leading axis is laid out over the devices.
        self._stacked = NamedSharding(Mesh(np.array(self.devices), (steps.AXIS,)), P(steps.AXIS))
        self._train = None if train_fn is None else \
            jax.pmap(train_fn, axis_name=steps.AXIS, devices=self.devices, donate_argnums=0)
        self._eval = jax.pmap(eval_fn, axis_name=steps.AXIS, devices=self.devices)

    def put_state(self, state):
        return jax.device_put(
            jax.tree.map(lambda x: np.broadcast_to(np.asarray(x)[None], (self.n,) + np.shape(x)), state),
            self._stacked)

    def get_state(self, state):
        """Host copy of the (replicated) state, device 0's: that device's buffer of each leaf is
        fetched, then indexed on the host (x[0] on the device would compile a slice per leaf shape)."""
        def first(x):
            return next(s.data for s in x.addressable_shards if s.index[0].start in (0, None))
        return jax.tree.map(lambda x: np.asarray(x)[0, ...], jax.device_get(jax.tree.map(first, state)))

    def get_scalars(self, state, names: tuple[str, ...]) -> dict:
        """Host ints of a few scalar fields of the state (device 0's), without fetching the rest."""
        return {k: int(v) for k, v in jax.device_get({k: getattr(state, k)[0] for k in names}).items()}

    def put_batch(self, batch: dict, batch_axis: int = 0, process_local: bool = False):
        """Host batch with batch axis `batch_axis` -> per-device shards on a new leading axis.

        (One process: its batch is the global batch either way.)
        """
        del process_local
        def split(x):
            x = np.asarray(x)
            b = x.shape[batch_axis]
            check_batch_divides(b, self.n, "batch size")
            x = x.reshape(x.shape[:batch_axis] + (self.n, b // self.n) + x.shape[batch_axis + 1:])
            x = np.moveaxis(x, batch_axis, 0)
            return jax.device_put(x, self._stacked)
        return jax.tree.map(split, batch)

    def compile_train(self, state, batch):
        """The train dispatch compiled ahead of time for these arguments (benchmarks: cost_analysis())."""
        return self._train.lower(state, batch).compile()

    def train(self, state, batch):
        """(new state, metrics) with the metrics still on the devices, one copy per device:
        read them with host_metrics (selecting device 0 here would cost one dispatch per
        metric per step)."""
        return _settled(self._settle, self._train(state, batch))

    def host_metrics(self, metrics) -> dict[str, float]:
        """The metrics of a train dispatch as host floats (device 0's; every device holds the same)."""
        return {k: float(np.asarray(v)[0]) for k, v in jax.device_get(metrics).items()}

    def param_norm(self, state) -> float:
        """||params|| (global L2 norm) of the current state, device 0's copy, as a host float."""
        return float(_stacked_norm(state.params))

    def eval(self, params_replicated, batch) -> jax.Array:
        """Per-example values in the original batch order, [B]."""
        out = _settled(self._settle, self._eval(params_replicated, batch))
        return out.reshape(-1)

    def params_for_eval(self, state, use_ema: bool):
        return state.ema_params if use_ema else state.params


class ShardMapRunner:
    """jax.shard_map over a 1-D mesh of all devices (of every process)."""

    model = None      # the model of the steps, set by make_runner

    def __init__(self, train_fn: Callable, eval_fn: Callable, devices=None):
        # Process-major order, so that the global batch is the process-local
        # batches concatenated in process order.
        self.devices = list(devices or sorted(jax.devices(), key=lambda d: (d.process_index, d.id)))
        self.n = len(self.devices)
        self._settle = jax.process_count() == 1 and _settles(self.devices)
        self.mesh = Mesh(np.array(self.devices), (steps.AXIS,))
        self._replicated = NamedSharding(self.mesh, P())
        # Train batches are [k, B, ...] (k steps per dispatch): split axis 1.
        self._train = None if train_fn is None else jax.jit(
            jax.shard_map(train_fn, mesh=self.mesh, in_specs=(P(), P(None, steps.AXIS)),
                          out_specs=(P(), P()), check_vma=False), donate_argnums=0)
        # Scores come back replicated, so that every process can read all of them.
        self._eval = jax.jit(jax.shard_map(eval_fn, mesh=self.mesh, in_specs=(P(), P(steps.AXIS)),
                                           out_specs=P(steps.AXIS), check_vma=False),
                             out_shardings=self._replicated)

    def put_state(self, state):
        """Host pytree (the same on every process) -> replicated global arrays."""
        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, self._replicated, lambda index: x[index])
        return jax.tree.map(put, state)

    def get_state(self, state):
        """Host copy of the replicated state (this process's first copy)."""
        return jax.device_get(_local(state))

    def get_scalars(self, state, names: tuple[str, ...]) -> dict:
        """Host ints of a few scalar fields of the state, without fetching the rest."""
        return {k: int(v) for k, v in jax.device_get({k: _local(getattr(state, k)) for k in names}).items()}

    def put_batch(self, batch: dict, batch_axis: int = 0, process_local: bool = False):
        """Host batch -> global arrays split along `batch_axis` over the mesh.

        process_local=False: `batch` is the global batch, the same on every
        process (evaluation). True: it is this process's slice of the global
        batch, whose size is the sum over processes (training).
        """
        spec = P(*([None] * batch_axis + [steps.AXIS]))
        sharding = NamedSharding(self.mesh, spec)
        procs = jax.process_count() if process_local else 1

        def put(x):
            x = np.asarray(x)
            shape = x.shape[:batch_axis] + (x.shape[batch_axis] * procs,) + x.shape[batch_axis + 1:]
            check_batch_divides(shape[batch_axis], self.n, "batch size")
            if process_local:
                return jax.make_array_from_process_local_data(sharding, x, shape)
            return jax.make_array_from_callback(shape, sharding, lambda index: x[index])
        return jax.tree.map(put, batch)

    def compile_train(self, state, batch):
        """The train dispatch compiled ahead of time for these arguments (benchmarks: cost_analysis())."""
        return self._train.lower(state, batch).compile()

    def train(self, state, batch):
        """(new state, metrics) with the metrics still on the devices (read them with host_metrics)."""
        return _settled(self._settle, self._train(state, batch))

    def host_metrics(self, metrics) -> dict[str, float]:
        """The metrics of a train dispatch as host floats (this process's copy)."""
        return {k: float(v) for k, v in jax.device_get(_local(metrics)).items()}

    def param_norm(self, state) -> float:
        """||params|| (global L2 norm) of the current state, this process's copy, as a host float."""
        return float(_norm(_local(state.params)))

    def eval(self, params, batch) -> jax.Array:
        """Per-example values of the global batch in order, [B], readable on every process."""
        return _local(_settled(self._settle, self._eval(params, batch)))

    def params_for_eval(self, state, use_ema: bool):
        return state.ema_params if use_ema else state.params


_norm = jax.jit(optim.global_norm)
_stacked_norm = jax.jit(lambda params: optim.global_norm(jax.tree.map(lambda x: x[0], params)))


def _local(tree):
    """Replicated global arrays -> this process's first copy (plain single-device arrays)."""
    return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


RUNNERS = {"pmap": PmapRunner, "shard_map": ShardMapRunner}


def make_runner(parallelism: str, *, model, tx=None, schedule=None, ema_decay: float = 0.0, penalty_fn=None,
                num_dims: int = 0, devices=None):
    """Binds the static parts of the steps and maps them over the devices.

    With tx=None the runner only evaluates (checkpoint scoring scripts).
    """
    if parallelism not in RUNNERS:
        raise ValueError(f"Unknown parallelism {parallelism!r}. Valid names: {', '.join(RUNNERS)}.")
    train_fn = None if tx is None else functools.partial(steps.train_steps, model=model, tx=tx, schedule=schedule,
                                 ema_decay=ema_decay, penalty_fn=penalty_fn, num_dims=num_dims)
    eval_fn = functools.partial(steps.eval_step, model=model)
    runner = RUNNERS[parallelism](train_fn, eval_fn, devices=devices)
    runner.model = model      # what the host checks of evaluation inputs read (dgm_jax/input_checks.py)
    return runner

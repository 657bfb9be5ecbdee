"""Multi-process runs: joining the job, and agreeing on pre-emption.

One process per host (or per GPU, or per SLURM task) runs the same
``launch.py`` command. :func:`initialize` joins them into one JAX job with
``jax.distributed.initialize`` *before* any device is touched; afterwards
``jax.devices()`` lists the devices of every process, the data-parallel step
(``train.parallelism='shard_map'``) spans all of them, each process reads its
own shard of the training data, and process 0 alone writes logs, plots and
results (checkpoints are written by orbax from all processes together).

Where the processes come from:
  * explicit: ``--coordinator_address=host0:1234 --num_processes=N --process_id=i``
    (all three), e.g. on a plain set of machines or several local processes;
  * detected: ``jax.distributed.initialize()`` with no arguments reads SLURM
    (``srun``), Open MPI (``mpirun``), Cloud TPU pod slices and GKE. With
    ``mode='auto'`` (the default) this is done when the environment shows more
    than one process (SLURM_NTASKS > 1, OMPI_COMM_WORLD_SIZE > 1, several TPU
    workers); ``mode='on'`` always does it, ``mode='off'`` never.
On CPU the cross-process collectives go through gloo.

Pre-emption (:class:`PreemptionWatcher`): a scheduler sends SIGTERM some
seconds before it kills a job. The training loop asks ``watcher.should_stop(i)``
after every dispatch; when it answers True the run saves a checkpoint at the
current step and stops (``train.Preempted``; ``launch.py`` exits with
:data:`PREEMPTED_EXIT_CODE`), and the same command resumes it. All processes
must stop at the same step, or the collectives of the one that goes on would
hang: with several processes the answer comes from JAX's pre-emption service
(``multihost_utils.reached_preemption_sync_point``: the coordination service
catches SIGTERM on any process and all processes agree on the next dispatch
as the sync point). In a single process a Python SIGTERM handler sets a flag.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

import jax

log = logging.getLogger(__name__)

# sysexits.h EX_TEMPFAIL: "temporary failure; the user is invited to retry".
PREEMPTED_EXIT_CODE = 75
MODES = ("auto", "on", "off")


def _env_int(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        return 0


def cluster_process_count() -> int:
    """Processes the environment announces (SLURM, Open MPI, Cloud TPU), 1 if none."""
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES") or os.environ.get("TPU_PROCESS_ADDRESSES") or ""
    return max(1, _env_int("SLURM_NTASKS"), _env_int("OMPI_COMM_WORLD_SIZE"),
               len([h for h in hosts.split(",") if h]))


def initialize(mode: str = "auto", coordinator_address: str = "", num_processes: int = 0,
               process_id: int = -1) -> bool:
    """Joins a multi-process JAX job when asked or detected; returns whether it did.

    Must run before anything touches the devices (jax.devices(), any array).
    coordinator_address / num_processes / process_id: all three or none
    (defaults ''/0/-1 mean unset).
    """
    if mode not in MODES:
        raise ValueError(f"distributed mode {mode!r} is not one of {', '.join(MODES)}")
    explicit = {"coordinator_address": coordinator_address or None,
                "num_processes": num_processes if num_processes > 0 else None,
                "process_id": process_id if process_id >= 0 else None}
    given = [k for k, v in explicit.items() if v is not None]
    if given and len(given) < 3:
        missing = sorted(set(explicit) - set(given))
        raise ValueError(f"--{given[0]} was given without --{', --'.join(missing)}: a multi-process run "
                         "needs --coordinator_address=HOST:PORT, --num_processes=N and --process_id=I "
                         "(or none of them, to detect SLURM / Open MPI / Cloud TPU).")
    if mode == "off" and given:
        raise ValueError("--distributed=off contradicts --coordinator_address/--num_processes/--process_id")
    if mode == "off" or (mode == "auto" and not given and cluster_process_count() <= 1):
        return False
    # gloo is JAX's default CPU collective backend; set it explicitly so that a
    # CPU-only job (tests, debugging) can all-reduce across processes.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if given:
        jax.distributed.initialize(**explicit)
    else:
        jax.distributed.initialize()   # SLURM / Open MPI / Cloud TPU / GKE fill in the rest
    log.info("Joined a JAX job as process %d of %d (%d local of %d devices).", jax.process_index(),
             jax.process_count(), jax.local_device_count(), jax.device_count())
    return True


def _preemption_service_available() -> bool:
    from jax._src import distributed as _dist  # the only handle on the pre-emption sync manager
    state = _dist.global_state
    return state.client is not None and state.preemption_sync_manager is not None


class PreemptionWatcher:
    """Tells the training loop when to checkpoint and stop on SIGTERM (see the module docstring).

    Use as a context manager around the loop; ``should_stop(i)`` must be called
    by every process with the same dispatch counter i = 0, 1, 2, ... .
    """

    def __init__(self):
        self._flag = threading.Event()
        self._previous = None
        self._service = jax.process_count() > 1 and _preemption_service_available()
        if jax.process_count() > 1 and not self._service:
            log.warning("JAX's pre-emption service is off (jax_enable_preemption_service); with several "
                        "processes a SIGTERM is only honoured when every process receives it.")

    def _handler(self, signum, frame):  # noqa: ARG002
        if not self._flag.is_set():
            log.warning("SIGTERM received: saving a checkpoint at the next step, then stopping.")
        self._flag.set()

    def __enter__(self) -> "PreemptionWatcher":
        # With the service on, JAX's coordination runtime owns SIGTERM; a Python
        # handler would take the signal away from it.
        if not self._service and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def request(self) -> None:
        """What SIGTERM does in a single process (for callers and tests)."""
        self._flag.set()

    def should_stop(self, dispatch_index: int) -> bool:
        if self._service:
            from jax.experimental import multihost_utils
            return bool(multihost_utils.reached_preemption_sync_point(dispatch_index))
        if jax.process_count() > 1:
            # Every process received the signal (e.g. the scheduler signals all
            # tasks); agree on it with one tiny all-gather per dispatch.
            from jax.experimental import multihost_utils
            import numpy as np
            flags = multihost_utils.process_allgather(np.asarray(self._flag.is_set(), np.int32))
            return bool(np.any(flags))
        return self._flag.is_set()

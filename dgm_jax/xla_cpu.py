"""XLA:CPU settings that dgm_jax's models run faster with, applied before JAX starts its backend.

Two settings, both for the CPU backend only (GPU and TPU runs ignore them):

* ``--xla_cpu_experimental_ynn_fusion_type=`` (no YNNPACK fusion types), appended to
  ``XLA_FLAGS`` by :func:`configure` unless the user set it (or ``DGM_JAX_KEEP_XLA_FLAGS=1``).
  XLA's YNNPACK fusions took convolutions and matrix products away from XLA's own
  multi-threaded kernels: with them off the gated PixelCNN train step ran ~20% faster at
  7 x 64 and the PixelCNN's ~35% faster on a 2-core AMD EPYC (Zen 4), jaxlib 0.10.2, and
  NADE's train step 2.6x faster on a 2-core Intel Xeon (experiments/benchmark.py); results
  agree to float32 rounding. XLA reads the variable once, when the first computation starts
  the backend; ``import dgm_jax`` calls :func:`configure`.

* How many CPU devices a run computes on (``config.train.cpu_devices``, applied by
  :func:`run_devices` when a run is built). JAX's default is ONE CPU device whose
  operations XLA splits over the cores. That pays off for large operations (convolutions,
  big matrix products) but not for a model made of many small ones: NADE's train step is a
  scan over 98 blocks of ~30 operations on [8, B, 500] arrays each, and one device ran it no
  faster on 2 cores than on 1. With one device per core and the batch split over them
  (data parallelism, dgm_jax/parallel.py), each core runs its half of the batch on its own:
  1.9x the images/s of NADE's step on 2 cores (experiments/benchmark.py, nade config). The
  gated PixelCNN, whose convolutions XLA already splits well, was ~8% slower that way, so
  the choice is per config. Results do not depend on it beyond float32 rounding (the
  gradient mean over devices sums in another order; tests/test_parallel.py).
"""
from __future__ import annotations

import logging
import os

FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=",)
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
log = logging.getLogger(__name__)


def configure() -> None:
    if os.environ.get("DGM_JAX_KEEP_XLA_FLAGS"):
        return
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in FLAGS if f.split("=")[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current] + missing).strip()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_device_count(count: int) -> int:
    """config.train.cpu_devices as a number of devices: -1 -> the cores available, else count (0: JAX's)."""
    return available_cores() if count < 0 else count


def request_cpu_devices(count: int) -> bool:
    """Asks JAX to expose cpu_device_count(count) CPU devices; 0 leaves JAX's default alone.

    Only possible before JAX's first computation: returns whether the setting was made. An
    explicit ``--xla_force_host_platform_device_count`` in XLA_FLAGS (tests, multi-device
    experiments) takes precedence and is left as it is.
    """
    want = cpu_device_count(count)
    if want <= 0 or _DEVICE_COUNT_FLAG in os.environ.get("XLA_FLAGS", ""):
        return False
    import jax
    try:
        jax.config.update("jax_num_cpu_devices", want)
        return True
    except RuntimeError:          # the backend has started: its devices stay as they are
        return False


def run_devices(count: int):
    """The devices a run with config.train.cpu_devices = count computes on: None (every device
    JAX has) for count 0, on an accelerator, or in a multi-process job; else the first
    cpu_device_count(count) CPU devices, asking JAX for them first if it has not started.

    A process may hold more CPU devices than one run uses (the paper table asks for one per
    core and runs its FVSBN row on one of them): XLA's thread pool is the process's, so a
    run on one of two CPU devices still splits its large operations over both cores. When
    there are fewer devices than asked for (the backend started earlier with fewer), the run
    uses those there are and a warning says so.
    """
    want = cpu_device_count(count)
    if want <= 0:
        return None
    request_cpu_devices(count)
    import jax
    if jax.default_backend() != "cpu" or jax.process_count() > 1:
        return None
    devices = jax.local_devices()
    if len(devices) < want:
        log.warning("config.train.cpu_devices asks for %d CPU devices but JAX has %d in this process (it "
                    "started earlier, or XLA_FLAGS fixes the count); the run uses %d. Set it before the first "
                    "JAX computation (launch.py does) or run in a fresh process.", want, len(devices),
                    len(devices))
    return devices[:want]

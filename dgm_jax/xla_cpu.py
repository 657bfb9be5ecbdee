"""XLA:CPU options that dgm_jax's models run faster with, applied before JAX starts its backend.

Measured on a 2-core AMD EPYC (Zen 4) with jaxlib 0.10.2 (experiments/bench_vs_peer.py and
experiments/profile_step.py): turning off XLA's YNNPACK fusions
(``--xla_cpu_experimental_ynn_fusion_type=``, i.e. no fusion types) lets convolutions and
matrix products take XLA's own multi-threaded kernels, which run the gated PixelCNN train step
~20% faster at 7 x 64 and the PixelCNN's ~35% faster; results agree to float32 rounding.

:func:`configure` appends the option to ``XLA_FLAGS`` unless the user set it (or set
``DGM_JAX_KEEP_XLA_FLAGS=1``). XLA reads the variable once, when the first JAX computation
starts the backend; ``import dgm_jax`` calls it, so it takes effect when dgm_jax is imported
before anything runs on a device (launch.py and the scripts do so). It only concerns the CPU
backend; GPU and TPU runs ignore it.
"""
from __future__ import annotations

import os

FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=",)


def configure() -> None:
    if os.environ.get("DGM_JAX_KEEP_XLA_FLAGS"):
        return
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in FLAGS if f.split("=")[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current] + missing).strip()

"""How the models' basic operations are computed, per backend: the one place for backend tuning.

The model files say what a layer computes (a bias added, a per-position product, a convolution,
a sigmoid); this package decides how. Every operation has two forms with the same maths:

    plain.py   the textbook form (y + b, jnp.dot, lax.conv_general_dilated, jax.nn.sigmoid):
               what GPUs and TPUs run, and the reference of the tests
    cpu.py     XLA:CPU forms that keep the work on its fast multi-threaded paths (each says what
               it avoids and what it measured)

The form is chosen when a function is traced, by the backend JAX computes on: "cpu" on the CPU,
"plain" anywhere else. DGM_JAX_KERNELS=plain|cpu forces one (ablations, tests); it is read at
trace time, so it applies to functions traced after it is set. The forms agree to float32
rounding (tests/test_kernels.py says, per operation, where they are bitwise equal).

    add_bias(y, bias)           y [B, ..., F] + bias [F] or [B, F] (one per example)
    dense(x, kernel)            x [..., in] @ kernel [in, out]
    conv2d(x, kernel, padding)  stride-1 NHWC x HWIO convolution, padding ((top, bottom), (left, right))
    sigmoid(x)                  1 / (1 + e^-x)
    sum_of_squares(x)           sum(x ** 2) in float32 (norms of gradients)
"""
from __future__ import annotations

import os

import jax

from dgm_jax.kernels import cpu, plain

FORMS = {"cpu": cpu, "plain": plain}
ENV = "DGM_JAX_KERNELS"


def form() -> str:
    """The form traced now: $DGM_JAX_KERNELS if set, else "cpu" on the CPU backend, else "plain"."""
    choice = os.environ.get(ENV, "")
    if choice:
        if choice not in FORMS:
            raise ValueError(f"{ENV}={choice!r} is not a kernel form; valid: {', '.join(sorted(FORMS))} "
                             f"(unset: chosen by the backend)")
        return choice
    return "cpu" if jax.default_backend() == "cpu" else "plain"


def add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    return FORMS[form()].add_bias(y, bias)


def dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return FORMS[form()].dense(x, kernel)


def conv2d(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
    return FORMS[form()].conv2d(x, kernel, padding)


def sigmoid(x: jax.Array) -> jax.Array:
    return FORMS[form()].sigmoid(x)


def sum_of_squares(x: jax.Array) -> jax.Array:
    return FORMS[form()].sum_of_squares(x)

"""The textbook forms of the kernels (dgm_jax/kernels/__init__.py): what each operation computes,
written the way any backend's compiler expects it. Used off the CPU, and the reference the CPU
forms are tested against (tests/test_kernels.py)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    """y [B, ..., F] + bias, bias [F] (shared) or [B, F] (one per example)."""
    bias = bias.astype(y.dtype)
    if bias.ndim == 1:
        return y + bias
    return y + bias.reshape((bias.shape[0],) + (1,) * (y.ndim - 2) + (bias.shape[1],))


def dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x [..., in] @ kernel [in, out] -> [..., out]."""
    return jnp.dot(x, kernel)


def conv2d(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
    """Stride-1 cross-correlation of x [B, H, W, in] with kernel [kh, kw, in, out], explicit padding
    ((top, bottom), (left, right)): out[b, r, c] = sum_ij x_pad[b, r + i, c + j] @ kernel[i, j]."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), tuple(map(tuple, padding)),
                                        dimension_numbers=DIMENSIONS)


def sigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(x)


def sum_of_squares(x: jax.Array) -> jax.Array:
    """sum(x ** 2) over every entry, in float32."""
    x = jnp.ravel(x).astype(jnp.float32)
    return jnp.sum(x * x)

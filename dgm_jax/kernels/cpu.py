"""XLA:CPU forms of the kernels (dgm_jax/kernels/__init__.py): the same maths as plain.py, in the
shapes that XLA's CPU backend runs on its fast, multi-threaded paths. Each form says what it
avoids and what it measured; tests/test_kernels.py checks each against plain.py.

* add_bias: the broadcast is a rank-1 product, ones [N, 1] x bias [1, F] (each entry 1 * bias_f,
  exactly the same numbers as y + bias). Its gradient with respect to the bias becomes the
  product ones^T x dL/dy, a matrix-vector product, where the sum over positions of y + bias is a
  column reduction of [B, H, W, F] that XLA:CPU runs slowly (the reduce-windows of its
  tree-reduction rewrite): the gated PixelCNN's train step ran 1.28x faster at 5 x 32 and 7 x 64
  with this form on a 2-core Intel Xeon (experiments/benchmark.py, batch 64).
* dense: ONE 2-D matrix product over all positions. A 1x1 convolution or a Dense layer on
  [B, H, W, in] computes the same numbers, but XLA:CPU runs the 2-D form and, above all, its
  weight gradient x^T g (a plain [in, N] x [N, out] product) several times faster than the 4-D
  forms, whose weight gradients go through transposes of the activations
  (experiments/profile_step.py).
* conv2d: XLA's own convolution, as plain.py. Measured against it on a 2-core Intel Xeon (the
  gated stacks' 2x3 and 1x2 kernels at 32-128 maps, batch 64, 28x28; while another training
  run shared the cores, so ratios only): the weight gradient as a sum over the taps of shifted
  x^T g products ran 2x slower for 2x3 kernels and about even for 1x2; im2col forms of the
  forward pass and of the weight gradient 2-4x slower; XLA:CPU's oneDNN options
  (--xla_cpu_use_onednn, --xla_cpu_experimental_onednn_custom_call) and --xla_cpu_use_xnnpack
  no faster. The convolution's weight gradient costs about twice its forward pass.
* sigmoid: the polynomial form of dgm_jax/kernels/sigmoid.py (XLA:CPU's own is an exp and a divide).
* sum_of_squares: (x * x) viewed as [n / 256, 256] times a vector of ones, then a short sum: one
  pass, where XLA:CPU turns sum(x ** 2) (and x . x, which it rewrites into it) into a slow tree
  reduction (for MADE's 6.9M parameters 3.5 ms instead of 6.7 ms a norm, 2-core Intel Xeon).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from dgm_jax.kernels import plain
from dgm_jax.kernels.sigmoid import sigmoid  # noqa: F401  (the polynomial sigmoid is this module's form)


def add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    bias = bias.astype(y.dtype)
    if bias.ndim == 1:
        n = y.size // y.shape[-1]
        return y + jnp.dot(jnp.ones((n, 1), y.dtype), bias[None, :]).reshape(y.shape)
    b, n = y.shape[0], y.size // (y.shape[0] * y.shape[-1])
    spread = jnp.einsum("bnk,bkf->bnf", jnp.ones((b, n, 1), y.dtype), bias[:, None, :])
    return y + spread.reshape(y.shape)


def dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    lead = x.shape[:-1]
    return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(lead + (kernel.shape[-1],))


def conv2d(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
    return plain.conv2d(x, kernel, padding)


def sum_of_squares(x: jax.Array) -> jax.Array:
    x = jnp.ravel(x).astype(jnp.float32)
    width = 256 if x.size >= 256 else max(x.size, 1)
    sq = jnp.pad(x * x, (0, (-x.size) % width)).reshape(-1, width)
    return jnp.sum(sq @ jnp.ones((width,), jnp.float32))

"""dgm_jax.kernels.sigmoid: the polynomial float32 sigmoid against the exact (float64) one,
over the whole float32 range, its derivative in both AD modes, and the fallback dtypes."""
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.kernels.sigmoid import exp2, sigmoid


def _exact(x):
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def test_sigmoid_matches_exact_everywhere():
    # A dense grid where sigma bends, every power of two out to float32's limits, and ties
    # of the range reduction (t = n + 1/2 exactly, where round-to-even decides n).
    grid = np.linspace(-40, 40, 400_001, dtype=np.float32)
    powers = np.float32(2.0) ** np.arange(-30, 127, dtype=np.float32)
    ties = (np.arange(-120, 120, dtype=np.float32) + 0.5) / np.float32(1.4426950408889634)
    x = np.concatenate([grid, powers, -powers, ties, [0.0, np.finfo(np.float32).max, -np.finfo(np.float32).max]])
    got = np.asarray(jax.jit(sigmoid)(jnp.asarray(x, jnp.float32)), np.float64)
    assert got.dtype == np.float64 and np.all(np.isfinite(got))
    assert np.max(np.abs(got - _exact(x))) < 1.2e-7
    assert np.all((got >= 0) & (got <= 1))


def test_exp2_relative_error():
    t = np.linspace(-126, 126, 1_000_001, dtype=np.float32)
    got = np.asarray(jax.jit(exp2)(jnp.asarray(t)), np.float64)
    assert np.max(np.abs(got / np.exp2(t.astype(np.float64)) - 1)) < 3e-7


def test_derivative_in_both_modes():
    x = jnp.linspace(-12, 12, 97, dtype=jnp.float32)
    s = _exact(x)
    want = s * (1 - s)
    rev = jax.vmap(jax.grad(sigmoid))(x)
    fwd = jax.jvp(sigmoid, (x,), (jnp.ones_like(x),))[1]
    np.testing.assert_allclose(np.asarray(rev), want, atol=2e-7)
    np.testing.assert_allclose(np.asarray(fwd), want, atol=2e-7)


def test_other_dtypes_use_jax_nn():
    x = jnp.linspace(-5, 5, 11, dtype=jnp.bfloat16)
    assert sigmoid(x).dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(sigmoid(x), np.float32), np.asarray(jax.nn.sigmoid(x), np.float32))

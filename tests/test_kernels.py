"""dgm_jax.kernels: every CPU form against the plain (textbook) form, values and gradients, and the
choice of form by backend and by $DGM_JAX_KERNELS."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dgm_jax import kernels
from dgm_jax.kernels import cpu, plain


def _normal(seed, shape):
    # drawn on the host: jax.random.normal would compile a program per shape
    return jax.device_put(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _value_and_grads(fn, *args):
    """fn(*args), and the gradient of <fn(*args), g> with respect to every argument (g fixed)."""
    out = jax.jit(fn)(*args)
    g = _normal(99, out.shape)
    return out, jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a) * g), argnums=tuple(range(len(args)))))(*args)


@pytest.mark.parametrize("bias_shape", [(6,), (3, 6)])
def test_add_bias_is_bitwise_the_broadcast_sum_and_its_gradient_the_sum_over_positions(bias_shape):
    y, bias = _normal(0, (3, 5, 4, 6)), _normal(1, bias_shape)
    want, want_grads = _value_and_grads(plain.add_bias, y, bias)
    got, got_grads = _value_and_grads(cpu.add_bias, y, bias)
    np.testing.assert_array_equal(got, want)                            # 1 * b_f: exact
    np.testing.assert_array_equal(got_grads[0], want_grads[0])
    # The bias gradient sums over positions in another order: float32 rounding.
    np.testing.assert_allclose(got_grads[1], want_grads[1], rtol=1e-5, atol=1e-5)
    expect = want_grads[0].sum(axis=(1, 2)) if len(bias_shape) == 2 else want_grads[0].sum(axis=(0, 1, 2))
    np.testing.assert_allclose(want_grads[1], expect, rtol=1e-5, atol=1e-5)


def test_dense_matches_the_plain_product_in_value_and_gradients():
    x, k = _normal(0, (2, 5, 3, 7)), _normal(1, (7, 4))
    want, want_grads = _value_and_grads(plain.dense, x, k)
    got, got_grads = _value_and_grads(cpu.dense, x, k)
    assert got.shape == (2, 5, 3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for a, b in zip(got_grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(want, np.einsum("bhwi,io->bhwo", x, k), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_shape,padding", [((2, 3, 4, 6), ((1, 0), (1, 1))), ((1, 2, 4, 6), ((0, 0), (1, 0))),
                                                  ((3, 3, 3, 5), ((1, 1), (1, 1)))])
def test_conv2d_is_the_shifted_sum_of_tap_products(kernel_shape, padding):
    x, k = _normal(0, (2, 6, 5, kernel_shape[2])), _normal(1, kernel_shape)
    got, got_grads = _value_and_grads(lambda x, k: cpu.conv2d(x, k, padding), x, k)
    want, want_grads = _value_and_grads(lambda x, k: plain.conv2d(x, k, padding), x, k)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # The definition, tap by tap, in float64.
    kh, kw = kernel_shape[:2]
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), padding[0], padding[1], (0, 0)))
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    ref = sum(xp[:, i:i + ho, j:j + wo] @ np.asarray(k, np.float64)[i, j] for i in range(kh) for j in range(kw))
    np.testing.assert_allclose(want, ref, rtol=1e-5, atol=1e-5)


def test_sigmoid_and_sum_of_squares_match_the_plain_forms():
    x = _normal(0, (4, 300)) * 8.0
    np.testing.assert_allclose(jax.jit(cpu.sigmoid)(x), jax.jit(plain.sigmoid)(x), rtol=2e-7, atol=2e-7)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda v: jnp.sum(cpu.sigmoid(v))))(x),
                               jax.jit(jax.grad(lambda v: jnp.sum(plain.sigmoid(v))))(x), rtol=1e-5, atol=2e-7)
    for shape in [(), (3,), (255,), (257,), (40, 33)]:
        v = _normal(2, shape)
        np.testing.assert_allclose(jax.jit(cpu.sum_of_squares)(v), np.sum(np.asarray(v, np.float64) ** 2), rtol=1e-5)
        np.testing.assert_allclose(jax.jit(plain.sum_of_squares)(v), np.sum(np.asarray(v, np.float64) ** 2),
                                   rtol=1e-5)


def test_form_follows_the_backend_and_the_environment(monkeypatch):
    monkeypatch.delenv(kernels.ENV, raising=False)
    assert kernels.form() == ("cpu" if jax.default_backend() == "cpu" else "plain")
    y, b = _normal(0, (2, 3, 3, 4)), _normal(1, (4,))
    calls = []
    for name in ("cpu", "plain"):
        monkeypatch.setenv(kernels.ENV, name)
        monkeypatch.setattr(kernels.FORMS[name], "add_bias", lambda y, b, name=name: calls.append(name) or y + b)
        kernels.add_bias(y, b)
    assert calls == ["cpu", "plain"]
    monkeypatch.setenv(kernels.ENV, "gpu")
    with pytest.raises(ValueError, match="DGM_JAX_KERNELS='gpu' is not a kernel form; valid: cpu, plain"):
        kernels.form()

"""The log-likelihood: hand computations and numerically delicate cases."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dgm_jax import likelihood
from dgm_jax.observations.bernoulli import Bernoulli


@jax.jit                  # one compile per shape (op by op, each of its ops would compile per shape)
def bernoulli_log_prob(logits, x):
    """[B] log p(x) of binary x [B, H, W, C] under Bernoulli sub-pixels with logits [B, H, W, C]."""
    return Bernoulli(num_channels=x.shape[-1]).log_prob(logits[..., None], x)


def test_matches_hand_computation():
    # Two pixels: p(x1=1) = sigmoid(0) = 1/2, p(x2=1) = sigmoid(log 3) = 3/4.
    logits = jnp.array([0.0, math.log(3.0)]).reshape(1, 1, 2, 1)
    cases = {(1, 1): math.log(0.5 * 0.75), (1, 0): math.log(0.5 * 0.25), (0, 0): math.log(0.5 * 0.25)}
    for bits, expected in cases.items():
        x = jnp.array(bits, jnp.float32).reshape(1, 1, 2, 1)
        assert float(bernoulli_log_prob(logits, x)[0]) == pytest.approx(expected, rel=1e-6)


def test_per_image_sum_and_shape():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    x = rng.integers(0, 2, size=(3, 2, 2, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(np.where(x == 1, np.log(p), np.log(1 - p)), axis=(1, 2, 3))
    out = bernoulli_log_prob(jnp.asarray(logits), jnp.asarray(x))
    assert out.shape == (3,)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5)


def test_extreme_logits_stay_finite_and_exact():
    # log(sigmoid(-200)) underflows to -inf; log_sigmoid gives -200 exactly.
    logits = jnp.array([-200.0, 200.0]).reshape(1, 1, 2, 1)
    x = jnp.array([1.0, 0.0]).reshape(1, 1, 2, 1)
    out = float(bernoulli_log_prob(logits, x)[0])
    assert out == pytest.approx(-400.0, rel=1e-6)
    naive = jnp.sum(jnp.log(jax.nn.sigmoid(logits)) * x + jnp.log(1 - jax.nn.sigmoid(logits)) * (1 - x))
    assert not np.isfinite(float(naive))  # the pitfall the explicit function avoids
    grad = jax.grad(lambda l: bernoulli_log_prob(l, x).sum())(logits)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_bits_per_dim_conversion():
    assert likelihood.bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)


def test_log_mean_exp_is_mixture():
    a = jnp.log(jnp.array([[0.2], [0.6]]))
    assert float(likelihood.log_mean_exp(a, axis=0)[0]) == pytest.approx(math.log(0.4), rel=1e-6)


def test_check_data_names_values():
    with pytest.raises(ValueError, match=r"my set: .* pixel values 0/1, found 0.5"):
        Bernoulli().check_data(np.array([0, 0.5, 1.0]), "my set")


@settings(max_examples=5, deadline=None)   # each new shape compiles: a few cover the property
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 2)),
       scale=st.floats(0.01, 60.0), seed=st.integers(0, 2**16))
def test_property_probabilities_normalize_per_pixel(shape, scale, seed):
    """For any logits, p(x_i=1) + p(x_i=0) = 1 pixel by pixel, and log p <= 0."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape).astype(np.float32) * scale
    ones, zeros = np.ones(shape, np.float32), np.zeros(shape, np.float32)
    lp1 = bernoulli_log_prob(logits, ones)
    lp0 = bernoulli_log_prob(logits, zeros)
    assert np.all(np.asarray(lp1) <= 1e-6) and np.all(np.asarray(lp0) <= 1e-6)
    # With one pixel per image the two must sum (in probability) to one.
    single = logits.reshape(-1, 1, 1, 1)
    p = np.exp(np.asarray(bernoulli_log_prob(single, np.ones_like(single)), np.float64)) + \
        np.exp(np.asarray(bernoulli_log_prob(single, np.zeros_like(single)), np.float64))
    np.testing.assert_allclose(p, 1.0, rtol=1e-5)

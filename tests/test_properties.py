"""Property-based tests (hypothesis) of the likelihood and the masked convolutions.

Random shapes, kernel sizes, channel splits and values, each checked against
an independent reference: numpy float64 for the likelihood, the masking rule
written out position by position for the convolution.
"""
import math

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from dgm_jax import likelihood
from dgm_jax.models.masked_conv import MaskedConv2D, channel_groups, conv_mask
from dgm_jax.observations.bernoulli import Bernoulli

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
# One compilation per shape (eager dispatch would compile every primitive separately).
# Bernoulli sub-pixels: logits [B, H, W, C] are the P = 1 outputs [B, H, W, C, 1].
log_prob = jax.jit(lambda logits, x: Bernoulli(num_channels=x.shape[-1]).log_prob(logits[..., None], x))
log_mean_exp = jax.jit(likelihood.log_mean_exp, static_argnames="axis")


def _log_sigmoid_ref(l: np.ndarray) -> np.ndarray:
    """log sigma(l) = -log(1 + e^-l), float64, stable for any sign."""
    return -np.logaddexp(0.0, -l)


@settings(max_examples=15, **SETTINGS)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)),
       scale=st.sampled_from([0.1, 3.0, 30.0, 300.0]), p_one=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_bernoulli_log_prob_matches_float64_reference(shape, scale, p_one, seed):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * scale).astype(np.float32)
    x = (rng.random(shape) < p_one).astype(np.float32)
    got = np.asarray(log_prob(logits, x))     # host arrays straight in: no per-shape transfer program
    l64 = logits.astype(np.float64)
    ref = (x * _log_sigmoid_ref(l64) + (1 - x) * _log_sigmoid_ref(-l64)).reshape(shape[0], -1).sum(-1)
    assert got.shape == (shape[0],) and got.dtype == np.float32
    assert np.all(np.isfinite(got)) and np.all(got <= 0)
    # float32 terms summed: relative error ~1e-6 of the total magnitude.
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * (1 + np.abs(ref).max()))


@settings(max_examples=10, **SETTINGS)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
       seed=st.integers(0, 2**31 - 1))
def test_uniform_model_costs_exactly_one_bit_per_dimension(shape, seed):
    x = (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float32)
    nll = -np.asarray(log_prob(np.zeros(shape, np.float32), x))
    d = int(np.prod(shape[1:]))
    np.testing.assert_allclose(nll, d * math.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(float(likelihood.bits_per_dim(nll.mean(), d)), 1.0, rtol=1e-6)


@settings(max_examples=15, **SETTINGS)
@given(k=st.integers(1, 8), b=st.integers(1, 3), spread=st.sampled_from([1.0, 50.0, 3000.0]),
       seed=st.integers(0, 2**31 - 1))
def test_log_mean_exp_matches_float64_reference(k, b, spread, seed):
    """log (1/K sum_k e^a_k) for log-likelihoods far below 0 (where exp underflows)."""
    a = (-np.random.default_rng(seed).random((k, b)) * spread - 500.0).astype(np.float32)
    got = np.asarray(log_mean_exp(a, axis=0))
    a64 = a.astype(np.float64)
    m = a64.max(0)
    ref = m + np.log(np.exp(a64 - m).sum(0)) - math.log(k)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-3)
    assert np.all(got <= a.max(0) + 1e-3) and np.all(got >= a.max(0) - math.log(k) - 1e-3)


@st.composite
def conv_cases(draw):
    c = draw(st.integers(1, 3))                           # data channels
    return dict(kh=draw(st.sampled_from([1, 3, 5, 7])), kw=draw(st.sampled_from([1, 3, 5, 7])),
                c=c, cin=draw(st.integers(c, 3 * c)), cout=draw(st.integers(c, 3 * c)),
                mask_type=draw(st.sampled_from(["A", "B"])),
                h=draw(st.integers(1, 6)), w=draw(st.integers(1, 6)), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=18, **SETTINGS)
@given(case=conv_cases())
def test_masked_conv_depends_exactly_on_the_masked_past(case):
    """d y[r, c, o] / d x[r', c', i] equals the masked kernel tap (zero for every future position and,
    at the centre, for channel groups the mask type forbids), for random kernel sizes and channel splits."""
    kh, kw, cin, cout, c = case["kh"], case["kw"], case["cin"], case["cout"], case["c"]
    h, w = case["h"], case["w"]
    mask = conv_mask((kh, kw), cin, cout, case["mask_type"], c)

    # The rule, tap by tap: rows above, or left on the same row, or the centre by channel group.
    g_in, g_out = channel_groups(cin, c), channel_groups(cout, c)
    for i in range(kh):
        for j in range(kw):
            dr, dc = i - kh // 2, j - kw // 2
            if dr < 0 or (dr == 0 and dc < 0):
                expect = np.ones((cin, cout))
            elif dr == 0 and dc == 0:
                rel = np.less if case["mask_type"] == "A" else np.less_equal
                expect = rel(g_in[:, None], g_out[None, :]).astype(float)
            else:
                expect = np.zeros((cin, cout))
            np.testing.assert_array_equal(mask[i, j], expect, err_msg=f"tap ({dr}, {dc})")

    layer = MaskedConv2D(features=cout, kernel_size=(kh, kw), mask_type=case["mask_type"], num_data_channels=c)
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((1, h, w, cin)).astype(np.float32)
    kernel = rng.standard_normal((kh, kw, cin, cout)).astype(np.float32)   # no zero taps by chance
    params = {"kernel": kernel, "bias": rng.standard_normal(cout).astype(np.float32)}
    r, col, o = int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(cout))
    grad_fn = jax.jit(jax.grad(lambda p, v: layer.apply({"params": p}, v)[0, r, col, o], argnums=1))
    grad = np.asarray(grad_fn(params, x))[0]

    expect = np.zeros((h, w, cin), np.float32)
    masked = np.asarray(kernel) * mask
    for i in range(kh):
        for j in range(kw):
            rr, cc = r + i - kh // 2, col + j - kw // 2
            if 0 <= rr < h and 0 <= cc < w:
                expect[rr, cc] = masked[i, j, :, o]
    np.testing.assert_allclose(grad, expect, rtol=1e-6, atol=1e-6)
    # Causality in raster order: nothing after (r, col) is read.
    later = np.zeros((h, w), bool)
    later[r, col + 1:] = True
    later[r + 1:] = True
    assert not grad[later].any()

"""Observation models on their own: each is a normalized distribution over a pixel's K^C values
for ANY network outputs, its sampler draws from exactly that distribution, and its numerics hold
at the edges (the discretized logistic's end bins, tiny and huge scales)."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from dgm_jax import observations
from dgm_jax.observations.logistic_mixture import DiscretizedLogisticMixture

CASES = [  # (name, options, K levels, C sub-pixels)
    ("bernoulli", {}, 2, 1),
    ("bernoulli", {}, 2, 3),
    ("categorical", {}, 4, 1),
    ("categorical", {}, 4, 3),
    ("categorical", {}, 17, 1),
    ("discretized_logistic_mixture", {"num_mixtures": 1}, 4, 1),
    ("discretized_logistic_mixture", {"num_mixtures": 3}, 4, 3),
    ("discretized_logistic_mixture", {"num_mixtures": 2}, 256, 1),
]
IDS = [f"{n}-K{k}-C{c}" + (f"-M{o['num_mixtures']}" if o else "") for n, o, k, c in CASES]


def build(name, options, k, c):
    spec = observations.REGISTRY[name]
    return spec.build(spec.config(**options), num_levels=k, num_channels=c)


def all_pixels(k, c):
    """Every value of one pixel: [K^C, 1, 1, C] in level / (K - 1), raster order over channels."""
    levels = np.array(list(itertools.product(range(k), repeat=c)), np.float32)
    return (levels / (k - 1)).reshape(-1, 1, 1, c)


def random_outputs(obs, seed, n=1, scale=2.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(
        (n, 1, 1, obs.num_channels, obs.params_per_subpixel)), jnp.float32)


@pytest.mark.parametrize("name,options,k,c", CASES, ids=IDS)
def test_pixel_distribution_sums_to_one_by_enumeration(name, options, k, c):
    """sum over all K^C values of p(x_pixel | outputs) = 1, for several random outputs and scales."""
    obs = build(name, options, k, c)
    if k ** c > 70_000:
        pytest.skip("too many values to enumerate")
    x = all_pixels(k, c)
    lp = jax.jit(obs.log_prob_per_pixel)
    for seed, scale in [(0, 0.5), (1, 3.0), (2, 12.0)]:
        out = jnp.broadcast_to(random_outputs(obs, seed, scale=scale), (x.shape[0],) + random_outputs(obs, 0).shape[1:])
        p = np.exp(np.asarray(lp(out, jnp.asarray(x)), np.float64)).sum()
        assert p == pytest.approx(1.0, abs=2e-5), (seed, scale, p)


def test_discretized_logistic_256_levels_edges_and_scales():
    """All 256 bins sum to 1 with the edge bins open to +-infinity, for means far outside [-1, 1]
    and scales from e^-7 (the floor) to e^3; every bin stays finite in log space."""
    obs = DiscretizedLogisticMixture(num_levels=256, num_channels=1, num_mixtures=1)
    x = jnp.asarray(all_pixels(256, 1))
    lp = jax.jit(obs.log_prob_per_pixel)
    for mu in (-3.0, -1.0, -0.3, 0.0, 0.5, 1.0, 4.0):
        for log_s in (-9.0, -7.0, -4.0, 0.0, 3.0):
            out = jnp.broadcast_to(jnp.array([0.0, mu, log_s], jnp.float32), (256, 1, 1, 1, 3))
            logp = np.asarray(lp(out, x), np.float64)
            assert np.all(np.isfinite(logp)) or log_s <= -7, (mu, log_s)
            assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-5), (mu, log_s)
    # A mean far below -1 puts (nearly) all mass in the open lower edge bin, not outside the grid.
    out = jnp.broadcast_to(jnp.array([0.0, -5.0, -2.0], jnp.float32), (256, 1, 1, 1, 3))
    assert float(np.exp(np.asarray(lp(out, x))[0, 0, 0])) > 0.999


def test_discretized_logistic_middle_bin_is_exact_for_tiny_scales():
    """At small scale a middle bin's log-probability is log(F(a) - F(b)) computed without
    cancellation: compared with float64 for a bin 10 scales away from the mean."""
    obs = DiscretizedLogisticMixture(num_levels=256, num_channels=1, num_mixtures=1)
    log_s, mu = -6.0, 0.0
    level = 140
    y = 2 * level / 255 - 1
    out = jnp.array([0.0, mu, log_s], jnp.float32).reshape(1, 1, 1, 1, 3)
    got = float(obs.log_prob_per_pixel(out, jnp.full((1, 1, 1, 1), level / 255, jnp.float32))[0, 0, 0])
    s, h = math.exp(log_s), 1 / 255
    ref = math.log(stats.logistic.sf((y - h - mu) / s) - stats.logistic.sf((y + h - mu) / s))
    assert got == pytest.approx(ref, rel=1e-4)


def test_discretized_logistic_green_depends_linearly_on_red():
    """Inside a pixel the mean of G is mu_G + a * y_R (y = 2x - 1): moving R moves G's mode."""
    obs = DiscretizedLogisticMixture(num_levels=256, num_channels=2, num_mixtures=1)
    # Per sub-pixel [pi | mu | log s | a]; G: mu 0, log s -4, a = tanh(big) = 1.
    out = np.zeros((1, 1, 1, 2, 4), np.float32)
    out[..., 0, :] = [0.0, 0.0, -4.0, 0.0]
    out[..., 1, :] = [0.0, 0.0, -4.0, 20.0]
    lp = jax.jit(obs.log_prob_per_pixel)
    for red in (30, 128, 220):
        greens = np.arange(256)
        x = np.stack([np.full(256, red), greens], -1).reshape(256, 1, 1, 2).astype(np.float32) / 255
        logp = np.asarray(lp(jnp.broadcast_to(jnp.asarray(out), (256, 1, 1, 2, 4)), jnp.asarray(x)))[:, 0, 0]
        assert abs(int(np.argmax(logp)) - red) <= 1, red


@pytest.mark.parametrize("name,options,k,c", [c_ for c_ in CASES if c_[2] ** c_[3] <= 64],
                         ids=[i for c_, i in zip(CASES, IDS) if c_[2] ** c_[3] <= 64])
def test_samples_follow_log_prob_chi_square(name, options, k, c):
    """Drawing the pixel sub-pixel by sub-pixel with obs.sample gives the frequencies exp(log_prob)."""
    obs = build(name, options, k, c)
    n = 40_000
    out1 = random_outputs(obs, 5, scale=1.5)[:, 0, 0]                        # [1, C, P]
    out = jnp.broadcast_to(out1, (n,) + out1.shape[1:])
    u = jax.random.uniform(jax.random.key(0), (n, c, obs.num_uniforms))

    @jax.jit
    def draw(out, u):
        x = jnp.zeros((n, c), jnp.float32)
        for ch in range(c):
            x = x.at[:, ch].set(obs.sample(out, x, ch, u, 1.0))
        return x

    x = np.asarray(draw(out, u))
    codes = np.round(x * (k - 1)).astype(int) @ (k ** np.arange(c)[::-1])
    observed = np.bincount(codes, minlength=k ** c)
    probs = np.exp(np.asarray(obs.log_prob_per_pixel(
        jnp.broadcast_to(out1[:, None, None], (k ** c, 1, 1, c, obs.params_per_subpixel)),
        jnp.asarray(all_pixels(k, c))), np.float64)).reshape(-1)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    probs = probs / probs.sum()
    keep = probs * n >= 5                                          # chi-square needs expected counts >= 5
    expected, got = probs[keep] * n, observed[keep]
    if (~keep).any():                                              # the rare values pooled into one cell
        expected, got = np.append(expected, probs[~keep].sum() * n), np.append(got, observed[~keep].sum())
    _, pval = stats.chisquare(got, expected * got.sum() / expected.sum())
    assert pval > 1e-3, (pval, got, expected)


def test_temperature_sharpens_the_categorical():
    """T < 1 draws the mode more often than T = 1; the draws stay on the grid."""
    obs = build("categorical", {}, 4, 1)
    out = jnp.broadcast_to(jnp.array([0.0, 1.0, 0.5, -1.0]), (20_000, 1, 4))
    u = jax.random.uniform(jax.random.key(1), (20_000, 1, 1))
    hot = np.asarray(obs.sample(out, jnp.zeros((20_000, 1)), 0, u, 1.0))
    cold = np.asarray(obs.sample(out, jnp.zeros((20_000, 1)), 0, u, 0.3))
    assert set(np.unique(np.round(cold * 3))) <= {0, 1, 2, 3}
    assert np.mean(np.isclose(cold, 1 / 3)) > np.mean(np.isclose(hot, 1 / 3)) + 0.2


def test_registry_and_errors_name_the_problem():
    assert set(observations.REGISTRY) == {"bernoulli", "categorical", "discretized_logistic_mixture"}
    assert observations.resolve_name("auto", 2) == "bernoulli"
    assert observations.resolve_name("auto", 256) == "categorical"
    with pytest.raises(ValueError, match="bernoulli likelihood needs binary data"):
        observations.build("bernoulli", num_levels=256, num_channels=1)
    with pytest.raises(ValueError, match="Unknown likelihood 'gauss'"):
        observations.build("gauss", num_levels=256, num_channels=1)
    with pytest.raises(ValueError, match=r"needs pixel values level / 3 .* found 0.5"):
        observations.build("categorical", num_levels=4, num_channels=1).check_data(np.array([0.0, 0.5]), "x")
    with pytest.raises(ValueError, match=r"pixel values 0/1, found 0.5"):
        observations.build("bernoulli", num_levels=2, num_channels=1).check_data(np.array([0.0, 0.5]), "x")
    with pytest.raises(ValueError, match="num_mixtures >= 1"):
        DiscretizedLogisticMixture(num_levels=256, num_channels=1, num_mixtures=0)

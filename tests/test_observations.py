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
    # The pixel's 6 numbers [pi | mu_R | log s_R | mu_G | log s_G | a_GR] over the two groups of P = 3;
    # G: mu 0, log s -4, a = tanh(big) = 1.
    assert obs.params_per_subpixel == 3
    out = np.array([0.0, 0.0, -4.0, 0.0, -4.0, 20.0], np.float32).reshape(1, 1, 1, 2, 3)
    lp = jax.jit(obs.log_prob_per_pixel)
    for red in (30, 128, 220):
        greens = np.arange(256)
        x = np.stack([np.full(256, red), greens], -1).reshape(256, 1, 1, 2).astype(np.float32) / 255
        logp = np.asarray(lp(jnp.broadcast_to(jnp.asarray(out), (256, 1, 1, 2, 3)), jnp.asarray(x)))[:, 0, 0]
        assert abs(int(np.argmax(logp)) - red) <= 1, red


# ----------------------------------------------------------------------------- logistic mixture: extremes

EXTREME_MU = (-1e6, -1e5, -3.0, -0.4, 0.0, 0.3, 1.0, 7.0, 1e5, 1e6)
EXTREME_LOG_S = (-20.0, -6.5, -3.0, 0.0, 4.0, 20.0, 60.0, 82.0, 88.0, 100.0)
EXTREME_LEVELS = (0, 1, 127, 254, 255)


def _mp_bin(level, mean, log_s, k=256):
    """Exact log P(level) of one discretized logistic (90 digits): mean, log_s as mpf."""
    import mpmath as mp
    s = mp.exp(max(log_s, mp.mpf(-7)))
    y, h = 2 * mp.mpf(level) / (k - 1) - 1, mp.mpf(1) / (k - 1)
    a, b = (y + h - mean) / s, (y - h - mean) / s
    if y > mean:        # right of the mean: the difference of the two survival functions, no cancellation
        a, b = -b, -a
        level = k - 1 - level
    cdf = lambda t: 1 / (1 + mp.exp(-t))                                     # noqa: E731
    upper = cdf(a) if level < k - 1 else mp.mpf(1)
    lower = cdf(b) if level > 0 else mp.mpf(0)
    return mp.log(upper - lower)


def _pixel_outputs(obs, pi, mu, log_s, raw_a):
    """The flat layout [pi | mu_0 | log s_0 | mu_1 | log s_1 | a_10 | ...] of one pixel -> [1, 1, 1, C, P].
    pi [M]; mu, log_s [C, M]; raw_a [C, C-1, M] (pre-tanh, only j < k read)."""
    c, m = obs.num_channels, obs.num_mixtures
    parts = [np.asarray(pi, np.float32)]
    for k in range(c):
        parts += [mu[k], log_s[k]] + [raw_a[k][j] for j in range(k)]
    flat = np.concatenate([np.asarray(q, np.float32).reshape(-1) for q in parts])
    flat = np.pad(flat, (0, c * obs.params_per_subpixel - flat.size))
    return jnp.asarray(flat.reshape(1, 1, 1, c, obs.params_per_subpixel))


def _assert_close(got, ref, inv_s, what, rel=2e-6):
    """float32 accuracy: `rel` of the value, plus one float32 rounding of a bin edge (|edge| <= 1, so
    6e-8) moved by 1/s: a mean next to an edge is ill-conditioned in float32 (mu - edge cancels). For a
    gradient (rel > 2e-6) also 1e-30 absolute: 1/s = e^-88 is below float32's normal range (1.2e-38),
    flushed to 0, so a derivative proportional to it (here < 1e-30) comes out as 0."""
    assert np.isfinite(got) and np.isfinite(ref), what
    slack = 2e-7 * inv_s * (1 + abs(ref) * (rel != 2e-6)) + (1e-30 if rel != 2e-6 else 0.0)
    assert abs(got - ref) <= rel * abs(ref) + slack, (what, got, ref)


def test_discretized_logistic_is_finite_and_exact_at_extreme_outputs_grey():
    """Grey: for |mu| up to 1e6, log s from -20 (floored at -7) to 100 and levels 0, 1, 127, 254, 255,
    log p is finite and equals 90-digit arithmetic on the same float32 inputs; its gradient with
    respect to every output is finite and matches the exact derivative. (The identity F(a) - F(b)
    computed as a difference cancels to 0 when |mu| ~ 1e5 or log s > ~82, and jnp.where
    differentiated the unused branch, which gave NaN gradients even at levels 0 and 255.)"""
    import mpmath as mp
    mp.mp.dps = 90
    obs = DiscretizedLogisticMixture(num_levels=256, num_channels=1, num_mixtures=1)
    mus, log_ss, levels = np.meshgrid(EXTREME_MU, EXTREME_LOG_S, EXTREME_LEVELS, indexing="ij")
    mus, log_ss, levels = (a.reshape(-1) for a in (mus, log_ss, levels))
    n = mus.size
    out = jnp.asarray(np.stack([np.zeros(n), mus, log_ss], -1).reshape(n, 1, 1, 1, 3), jnp.float32)
    x = jnp.asarray((levels / 255).reshape(n, 1, 1, 1), jnp.float32)
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(lambda o, x: obs.log_prob(o[None], x[None])[0])))
    logp, grad = (np.asarray(a, np.float64) for a in value_and_grad(out, x))
    assert np.all(np.isfinite(logp)) and np.all(np.isfinite(grad))
    for i in range(n):
        level, mu, ls = int(levels[i]), mp.mpf(float(np.float32(mus[i]))), mp.mpf(float(log_ss[i]))
        f = lambda mean, log_s: _mp_bin(level, mean, log_s)                   # noqa: E731
        what, inv_s = (level, float(mus[i]), float(log_ss[i])), math.exp(-max(float(ls), -7.0))
        _assert_close(logp[i], float(f(mu, ls)), inv_s, what)
        d_mu = float(mp.diff(lambda t: f(t, ls), mu))
        d_ls = float(mp.diff(lambda t: f(mu, t), ls)) if ls > -7 else 0.0     # floored: no gradient
        assert grad[i, 0, 0, 0, 0] == 0.0                                    # one component: pi has no effect
        _assert_close(grad[i, 0, 0, 0, 1], d_mu, inv_s, what + ("d/d mu",), rel=1e-4)
        _assert_close(grad[i, 0, 0, 0, 2], d_ls, inv_s, what + ("d/d log s",), rel=1e-4)


def test_discretized_logistic_is_finite_and_exact_at_extreme_outputs_rgb():
    """RGB, M = 2 (P = 7: 20 numbers per pixel, 1 unused): pixels with levels 0, 1, 127, 254, 255 at the
    extreme means and scales of the grey test, the G and B means coupled to R and G: log p equals the
    exact mixture of 90-digit arithmetic and its gradient is finite everywhere."""
    import mpmath as mp
    mp.mp.dps = 90
    obs = DiscretizedLogisticMixture(num_levels=256, num_channels=3, num_mixtures=2)
    pixels = [(0, 1, 127), (254, 255, 0), (127, 254, 1), (255, 0, 255)]
    rng = np.random.default_rng(3)
    grad_fn = jax.jit(jax.value_and_grad(lambda o, x: obs.log_prob(o, x)[0]))
    for mu0 in EXTREME_MU[::3] + (1e6,):
        for ls0 in EXTREME_LOG_S[::2] + (100.0,):
            pi = rng.normal(size=2).astype(np.float32)
            mu = (mu0 * np.array([[1.0, -0.5], [0.25, 1.0], [-1.0, 0.5]]) + rng.normal(size=(3, 2))).astype(np.float32)
            log_s = (ls0 + rng.normal(size=(3, 2))).astype(np.float32)
            raw_a = rng.normal(size=(3, 2, 2)).astype(np.float32)
            out = _pixel_outputs(obs, pi, mu, log_s, raw_a)
            for pixel in pixels:
                x = jnp.asarray(np.array(pixel, np.float32).reshape(1, 1, 1, 3) / 255)
                got, grad = grad_fn(out, x)
                assert np.isfinite(float(got)) and np.all(np.isfinite(np.asarray(grad))), (mu0, ls0, pixel)
                y = [mp.mpf(float(np.float32(2) * (np.float32(v) / np.float32(255)) - np.float32(1)))
                     for v in pixel]
                log_pi = [mp.mpf(float(v)) for v in pi]
                lse = mp.log(sum(mp.exp(v) for v in log_pi))
                terms = []
                for m in range(2):
                    t = log_pi[m] - lse
                    for k in range(3):
                        mean = mp.mpf(float(mu[k, m])) + sum(mp.tanh(mp.mpf(float(raw_a[k, j, m]))) * y[j]
                                                             for j in range(k))
                        t += _mp_bin(pixel[k], mean, mp.mpf(float(log_s[k, m])))
                    terms.append(t)
                ref = float(mp.log(sum(mp.exp(t) for t in terms)))
                _assert_close(float(got), ref, math.exp(-max(float(log_s.min()), -7.0)), (mu0, ls0, pixel))


@pytest.mark.parametrize("c,m", [(2, 1), (3, 2), (3, 3), (3, 5), (4, 1)])
def test_discretized_logistic_outputs_have_pixelcnnpp_count_and_causal_groups(c, m):
    """P = ceil(M (1 + 2C + C(C-1)/2) / C) (RGB: 10M numbers per pixel, not 15M). By Jacobian of the
    parameters read from the outputs: the mixture logits and sub-pixel 0's mean and scale come from
    output group 0 only, sub-pixel k's mean, scale and coefficients from groups <= k (so a network
    whose group k sees sub-pixels < k only stays autoregressive); every output below the count is
    read, the padding after it (fewer than C numbers) by nothing. The K^C probabilities sum to 1."""
    k_levels = 4
    obs = DiscretizedLogisticMixture(num_levels=k_levels, num_channels=c, num_mixtures=m)
    count = m * (1 + 2 * c + c * (c - 1) // 2)
    p = obs.params_per_subpixel
    assert p == -(-count // c) and 0 <= c * p - count < c
    out = random_outputs(obs, 7, scale=1.5)[0, 0, 0]                                  # [C, P]
    logit_pi, mu, log_s, coef = (np.asarray(j).reshape(j.shape[:-2] + (c * p,)) != 0
                                 for j in jax.jit(jax.jacobian(obs._split))(out))      # reads [..., C * P]
    group = np.arange(c * p) // p
    assert not logit_pi[:, group > 0].any()
    for k in range(c):
        for name, reads in (("mu", mu[k]), ("log s", log_s[k]), ("a", coef[k, :k])):
            assert not reads[..., group > k].any(), f"{name} of sub-pixel {k} reads output group > {k}"
    read = logit_pi.any(0) | mu.any((0, 1)) | log_s.any((0, 1)) | coef.any((0, 1, 2))
    assert read[:count].all() and not read[count:].any()
    x = jnp.asarray(all_pixels(k_levels, c))
    probs = jnp.exp(jax.jit(obs.log_prob_per_pixel)(jnp.broadcast_to(out, (x.shape[0], 1, 1, c, p)), x))
    assert float(np.asarray(probs, np.float64).sum()) == pytest.approx(1.0, abs=1e-5)


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
    probs = np.exp(np.asarray(jax.jit(obs.log_prob_per_pixel)(
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


def test_old_rgb_logistic_mixture_runs_are_refused_with_the_reason(tmp_path):
    """run_info.json records the likelihood's output layout: a workdir of the old RGB layout (no tag,
    M (3 + C - 1) per sub-pixel) is refused on resume and on load, saying why; grey runs, whose
    layout did not change, and other likelihoods still resume."""
    import json
    import types

    from dgm_jax import config_schema, rundir

    def info(channels, likelihood="discretized_logistic_mixture"):
        cfg = config_schema.from_config_dict({"model": {"name": "pixelcnn", "likelihood": likelihood}})
        ds = types.SimpleNamespace(image_shape=(4, 4, channels), num_levels=256, num_classes=0, cond_dim=0)
        return cfg, rundir.run_info(cfg, ds, likelihood)

    for channels, likelihood, refused in ((3, "discretized_logistic_mixture", True),
                                          (1, "discretized_logistic_mixture", False), (3, "categorical", False)):
        cfg, new = info(channels, likelihood)
        old = {k: v for k, v in new.items() if k != "output_layout"}         # as written before the tag
        workdir = tmp_path / f"{likelihood}{channels}"
        workdir.mkdir()
        rundir.write_json_atomic(workdir / rundir.RUN_INFO, old)
        rundir.write_json_atomic(workdir / rundir.CONFIG, config_schema.to_dict(cfg))
        if refused:
            assert new["output_layout"]
            for check in (lambda: rundir.check_run_identity(workdir, new), lambda: rundir.read_run(workdir)):
                with pytest.raises(rundir.CheckpointError, match=r"PixelCNN\+\+'s 10M numbers.*new --workdir"):
                    check()
        else:
            rundir.check_run_identity(workdir, new)
            assert rundir.read_run(workdir)[2]["output_layout"] == ""
        assert json.loads((workdir / rundir.RUN_INFO).read_text()) == old

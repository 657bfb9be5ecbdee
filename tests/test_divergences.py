"""Exact KL and entropy, and the Monte-Carlo estimators: unbiased, error bars that cover, variance 1/n."""
import math

import numpy as np
import pytest
import scipy.stats

from dgm_jax import divergences as dv


def _random_log_probs(rng, k, zeros=0):
    p = rng.dirichlet(np.ones(k))
    p[:zeros] = 0.0
    p /= p.sum()
    with np.errstate(divide="ignore"):
        return np.log(p)


def test_kl_of_identical_distributions_is_zero():
    rng = np.random.default_rng(0)
    for k, zeros in ((2, 0), (10, 3), (1000, 100)):
        lp = _random_log_probs(rng, k, zeros)
        assert dv.kl_divergence(lp, lp) == 0.0


def test_kl_is_nonnegative_asymmetric_and_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(2, 50))
        lp, lq = _random_log_probs(rng, k), _random_log_probs(rng, k)
        kl = dv.kl_divergence(lp, lq)
        assert kl > 0
        np.testing.assert_allclose(kl, scipy.stats.entropy(np.exp(lp), np.exp(lq)), rtol=1e-10, atol=1e-14)
    lp, lq = np.log([0.9, 0.1]), np.log([0.5, 0.5])
    assert dv.kl_divergence(lp, lq) != pytest.approx(dv.kl_divergence(lq, lp))


def test_kl_by_hand():
    # KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 ln(0.5/0.25) + 1/2 ln(0.5/0.75) = 1/2 ln(4/3)
    assert dv.kl_divergence(np.log([0.5, 0.5]), np.log([0.25, 0.75])) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-12)
    # Bernoulli(3/4) against a fair coin: ln 2 - H(3/4).
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert dv.kl_divergence(np.log([0.25, 0.75]), np.log([0.5, 0.5])) == pytest.approx(math.log(2) - h, rel=1e-12)
    assert dv.entropy(np.log([0.25, 0.75])) == pytest.approx(h, rel=1e-12)


def test_zero_probability_states():
    with np.errstate(divide="ignore"):
        p = np.log([0.0, 0.5, 0.5])
        q = np.log([0.5, 0.25, 0.25])
        q_missing = np.log([0.5, 0.5, 0.0])
    assert dv.kl_divergence(p, q) == pytest.approx(math.log(2), rel=1e-12)   # 0 log 0 = 0; 2 x 1/2 ln 2
    assert dv.kl_divergence(p, q_missing) == math.inf                       # p > 0 where q = 0
    assert dv.kl_divergence(q_missing, p) == math.inf
    assert dv.kl_divergence(p, p) == 0.0
    assert dv.entropy(p) == pytest.approx(math.log(2), rel=1e-12)
    assert dv.entropy(np.log([1.0])) == 0.0
    assert dv.log_normalizer(p) == pytest.approx(0.0, abs=1e-15)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="same states"):
        dv.kl_divergence(np.log([0.5, 0.5]), np.log([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        dv.entropy(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"\[n\]"):
        dv.kl_monte_carlo(np.zeros(3), np.zeros(4))


def test_sampler_frequencies_match_p():
    rng = np.random.default_rng(2)
    lp = _random_log_probs(rng, 20, zeros=4)
    idx = dv.sample_states(lp, 200_000, rng)
    assert not np.isin(idx, np.arange(4)).any()            # zero-probability states never drawn
    counts = np.bincount(idx, minlength=20)[4:]
    _, pvalue = scipy.stats.chisquare(counts, 200_000 * np.exp(lp[4:]))
    assert pvalue > 1e-3


def test_mc_kl_error_bar_covers_the_exact_value():
    """Over 1,000 seeded trials of n = 200 samples, +-1 and +-1.96 stderr cover the exact KL in
    ~68.3% and ~95% of trials (binomial sd 1.5% and 0.7%; we allow ~3.5 sd)."""
    rng = np.random.default_rng(3)
    lp, lq = _random_log_probs(rng, 12), _random_log_probs(rng, 12)
    exact = dv.kl_divergence(lp, lq)
    trials, n = 1000, 200
    idx = dv.sample_states(lp, trials * n, rng).reshape(trials, n)
    est = [dv.kl_monte_carlo(lp[i], lq[i]) for i in idx]
    values = np.array([e.value for e in est])
    errs = np.array([e.stderr for e in est])
    assert all(e.n == n for e in est)
    z = np.abs(values - exact) / errs
    assert abs(np.mean(z < 1.0) - 0.683) < 0.05
    assert abs(np.mean(z < 1.96) - 0.95) < 0.025
    # Unbiased: the mean of 1,000 estimates is within 4 of its standard errors of the truth.
    _, var = dv.mean_and_variance(lp, lp - lq)
    assert abs(values.mean() - exact) < 4 * math.sqrt(var / n / trials)


def test_log_likelihood_estimator_is_unbiased_with_variance_one_over_n():
    """l_hat = mean log q(x_i), x_i ~ p, over 2,000 resampled data sets per n: E = l, Var = Var_p[log q] / n."""
    rng = np.random.default_rng(4)
    lp, lq = _random_log_probs(rng, 500, zeros=50), _random_log_probs(rng, 500)
    l_true, var1 = dv.mean_and_variance(lp, lq)
    assert l_true == pytest.approx(-dv.entropy(lp) - dv.kl_divergence(lp, lq), rel=1e-10)
    trials, sizes, variances = 2000, (10, 100, 1000), []
    for n in sizes:
        l_hat = dv.resampled_means(lp, lq, n, trials, rng)
        assert abs(l_hat.mean() - l_true) < 4 * math.sqrt(var1 / n / trials)        # unbiased
        variances.append(l_hat.var(ddof=1))
        # Sample variance of 2,000 near-Gaussian values: relative sd ~ sqrt(2/1999) = 3%.
        assert variances[-1] / (var1 / n) == pytest.approx(1.0, abs=0.15)
    slope = np.polyfit(np.log(sizes), np.log(variances), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)
    # One data set's own error bar estimates the same spread.
    est = dv.log_likelihood_estimate(lq[dv.sample_states(lp, 1000, rng)])
    assert est.stderr == pytest.approx(math.sqrt(var1 / 1000), rel=0.15)

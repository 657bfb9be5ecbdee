"""Divergences between discrete distributions, and the estimators maximum likelihood relies on.

Everything here is host-side numpy in float64, in nats. A discrete
distribution over K states is given by its log-probability vector
``log_p`` [K] (``-inf`` for a state of probability zero), e.g. the 2^D
images of a synthetic data set enumerated by :mod:`dgm_jax.data.synthetic`.

Exact quantities (sums over the K states, with the convention 0 log 0 = 0):

    H(p)        = -sum_x p(x) log p(x)
    KL(p || q)  =  sum_{x: p(x) > 0} p(x) [log p(x) - log q(x)]
                =  +inf if some x has p(x) > 0 and q(x) = 0.

Estimators from n samples x_1..x_n ~ p (i.i.d.), each returned as an
:class:`Estimate` (value, standard error, n):

    l_hat  = (1/n) sum_i log q(x_i)                    E[l_hat]  = l = E_p[log q]
    KL_hat = (1/n) sum_i [log p(x_i) - log q(x_i)]     E[KL_hat] = KL(p || q)

Both are sample means, hence unbiased with variance Var_p[f(x)] / n; the
standard error is the sample standard deviation / sqrt(n), so the interval
value +- z * stderr covers the truth in about the Gaussian fraction of trials
for large n (the central limit theorem). :func:`mean_and_variance` gives the
exact l and Var_p[f] of a known p, and :func:`resampled_means` draws the
estimator many times, which is how tests/test_divergences.py and
experiments/known_truth.py show the 1/n law.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Estimate(NamedTuple):
    """A Monte-Carlo estimate: value, its standard error, and the sample size n."""
    value: float
    stderr: float
    n: int


def _as_log_probs(log_p, name: str) -> np.ndarray:
    a = np.asarray(log_p, np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty log-probability vector [K], got shape {a.shape}")
    if np.isnan(a).any() or (a == np.inf).any():
        raise ValueError(f"{name} has NaN or +inf entries")
    return a


def log_normalizer(log_p) -> float:
    """log sum_x exp(log_p[x]) (0 for a normalized distribution), computed stably."""
    a = _as_log_probs(log_p, "log_p")
    m = a.max()
    if m == -np.inf:
        return -math.inf
    return float(m + np.log(np.sum(np.exp(a - m))))


def entropy(log_p) -> float:
    """H(p) = -sum p log p in nats for log_p [K] (states with p = 0 contribute 0)."""
    a = _as_log_probs(log_p, "log_p")
    support = a > -np.inf
    return float(-np.sum(np.exp(a[support]) * a[support]))


def kl_divergence(log_p, log_q) -> float:
    """Exact KL(p || q) in nats for log-probability vectors [K] over the same states.

    States with p = 0 contribute 0 (whatever q); a state with p > 0 and
    q = 0 makes the result +inf. The terms are summed in float64; a result
    that rounds below zero (p == q up to rounding) is returned as 0.
    """
    a, b = _as_log_probs(log_p, "log_p"), _as_log_probs(log_q, "log_q")
    if a.shape != b.shape:
        raise ValueError(f"log_p {a.shape} and log_q {b.shape} must be over the same states")
    support = a > -np.inf
    if (b[support] == -np.inf).any():
        return math.inf
    kl = float(np.sum(np.exp(a[support]) * (a[support] - b[support])))
    return max(kl, 0.0)


def mean_estimate(values) -> Estimate:
    """The sample mean of values [n] with its standard error std(ddof=1) / sqrt(n) (nan if n < 2)."""
    v = np.asarray(values, np.float64).reshape(-1)
    n = int(v.size)
    if n == 0:
        raise ValueError("no samples")
    stderr = float(np.std(v, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(float(np.mean(v)), stderr, n)


def log_likelihood_estimate(log_q_samples) -> Estimate:
    """l_hat = (1/n) sum_i log q(x_i) from log q(x_i) [n] of samples x_i ~ p (unbiased for E_p[log q])."""
    return mean_estimate(log_q_samples)


def kl_monte_carlo(log_p_samples, log_q_samples) -> Estimate:
    """KL_hat(p || q) = mean of log p(x_i) - log q(x_i) over samples x_i ~ p, with its standard error.

    Args:
      log_p_samples, log_q_samples: [n] log-probabilities of the same n samples
        of p under p and under q.
    Unbiased; the individual terms may be negative, so a small KL can be
    estimated below zero. Pairing the samples (a control variate) makes the
    error bar much smaller than that of the cross-entropy alone when q is near p.
    """
    lp, lq = np.asarray(log_p_samples, np.float64), np.asarray(log_q_samples, np.float64)
    if lp.shape != lq.shape or lp.ndim != 1:
        raise ValueError(f"log_p_samples {lp.shape} and log_q_samples {lq.shape} must both be [n]")
    return mean_estimate(lp - lq)


def mean_and_variance(log_p, values) -> tuple[float, float]:
    """(E_p[f], Var_p[f]) exactly, for f given on every state: values [K], log_p [K].

    E.g. values = log q gives l = E_p[log q] and the variance of one term of
    l_hat, so Var[l_hat] = Var_p[log q] / n. States with p = 0 are ignored
    (their value may be -inf).
    """
    a = _as_log_probs(log_p, "log_p")
    f = np.asarray(values, np.float64)
    support = a > -np.inf
    p, f = np.exp(a[support]), f[support]
    p = p / p.sum()
    mean = float(np.sum(p * f))
    return mean, float(np.sum(p * (f - mean) ** 2))


def sample_states(log_p, num: int, rng: np.random.Generator) -> np.ndarray:
    """num i.i.d. state indices int64 [num] drawn from p (inverse CDF; exact up to float64 rounding)."""
    a = _as_log_probs(log_p, "log_p")
    cdf = np.cumsum(np.exp(a - a.max()))
    u = rng.random(num) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), a.size - 1)


def resampled_means(log_p, values, n: int, num_trials: int, rng: np.random.Generator,
                    chunk: int = 2_000_000) -> np.ndarray:
    """The estimator (1/n) sum_i values[x_i], x_i ~ p, drawn num_trials times: float64 [num_trials].

    With values = log q this is l_hat over num_trials independent data sets of
    size n (drawn in chunks of about `chunk` samples to bound memory).
    """
    f = np.asarray(values, np.float64)
    out = np.empty(num_trials, np.float64)
    per_chunk = max(1, chunk // n)
    for start in range(0, num_trials, per_chunk):
        t = min(per_chunk, num_trials - start)
        idx = sample_states(log_p, t * n, rng).reshape(t, n)
        out[start:start + t] = f[idx].mean(axis=1)
    return out

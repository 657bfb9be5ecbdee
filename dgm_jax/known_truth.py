"""What an NLL means when p_data is known: the exact distance to the truth.

On a synthetic set (:mod:`dgm_jax.data.synthetic`) every image can be
enumerated, so for model parameters theta we compute exactly

    cross-entropy  CE = -sum_x p_data(x) log p_theta(x)  = H(p_data) + KL(p_data || p_theta)
    exact_kl       KL(p_data || p_theta)                 (>= 0, 0 iff p_theta = p_data)

The NLL of a split is (1/n) sum_i -log p_theta(x_i) over its n samples of
p_data: an unbiased estimate of CE (the parameters never saw validation or
test), with standard error nll_stderr. Hence

    nll_minus_entropy = NLL - H(p_data)

is an unbiased estimate of the KL with the same error bar: an NLL of 10.2
nats on data of entropy 9.9 means "0.3 +- stderr nats from the truth", and
the best any model can reach is NLL = H (KL = 0). The error bar is mostly the
sampling noise of -log p_data(x_i) itself, which the paired estimate
(1/n) sum_i [log p_data(x_i) - log p_theta(x_i)] cancels: given the split's
images and their model log-probabilities, :func:`exact_metrics` reports it
too (``kl_paired``), with a much smaller error bar when p_theta is near p_data.

``dgm_jax.train._Run.evaluate`` merges :func:`exact_metrics` into every
validation and test record of a run on a set with a ``truth``.
"""
from __future__ import annotations

import numpy as np

from dgm_jax import divergences, evaluation


def model_log_probs(runner, params_dev, truth, batch_size: int) -> np.ndarray:
    """log p_theta of every enumerated image, float64 [2^D], in the order of truth.images."""
    return evaluation.split_log_probs(runner, params_dev, truth.images, None, batch_size)


def metrics_from_log_probs(data_log_probs: np.ndarray, model_log_probs_: np.ndarray, *, nll: float,
                           nll_stderr: float, entropy: float | None = None) -> dict:
    """The exact report from log p_data [K] and log p_theta [K] over all K images (pure numpy).

    Returns floats (nats/image): exact_kl, exact_cross_entropy (= H + KL, what
    an NLL estimates), data_entropy, nll_minus_entropy and its stderr (= the
    NLL's), and model_log_mass = log sum_x p_theta(x) (0 for a normalized
    model; a check of the model, not of the data).
    """
    h = divergences.entropy(data_log_probs) if entropy is None else float(entropy)
    kl = divergences.kl_divergence(data_log_probs, model_log_probs_)
    return {"exact_kl": kl, "exact_cross_entropy": h + kl, "data_entropy": h,
            "nll_minus_entropy": float(nll) - h, "nll_minus_entropy_stderr": float(nll_stderr),
            "model_log_mass": divergences.log_normalizer(model_log_probs_)}


def exact_metrics(runner, params_dev, truth, batch_size: int, *, nll: float, nll_stderr: float,
                  split_images: np.ndarray | None = None, split_log_probs: np.ndarray | None = None) -> dict:
    """Exact KL(p_data || p_theta) by enumeration, next to the split's NLL.

    Args:
      runner, params_dev: a dgm_jax.parallel runner and parameters on its devices.
      truth: the data set's KnownDistribution (images [2^D, H, W, 1], log_probs [2^D], entropy).
      batch_size: evaluation batch (a multiple of the device count).
      nll, nll_stderr: the split's NLL (nats/image) and its standard error.
      split_images, split_log_probs: optional, the split's images [n, H, W, 1]
        and their log p_theta [n]; when both are given the paired estimate
        kl_paired, kl_paired_stderr is added.
    Returns:
      a dict of floats, see :func:`metrics_from_log_probs`.
    """
    lq = model_log_probs(runner, params_dev, truth, batch_size)
    out = metrics_from_log_probs(truth.log_probs, lq, nll=nll, nll_stderr=nll_stderr, entropy=truth.entropy)
    if split_images is not None and split_log_probs is not None:
        est = divergences.kl_monte_carlo(truth.log_prob(split_images), split_log_probs)
        out.update(kl_paired=est.value, kl_paired_stderr=est.stderr)
    return out


def describe(metrics: dict) -> str:
    """One line: 'NLL 10.200 +- 0.030 = H 9.900 + 0.300 +- 0.030 nats from the truth (exact KL 0.297)'."""
    nll = metrics["nll_minus_entropy"] + metrics["data_entropy"]
    return (f"NLL {nll:.3f} ± {metrics['nll_minus_entropy_stderr']:.3f} = H {metrics['data_entropy']:.3f} + "
            f"{metrics['nll_minus_entropy']:.3f} ± {metrics['nll_minus_entropy_stderr']:.3f} nats from the truth "
            f"(exact KL {metrics['exact_kl']:.3f})")

"""Scoring a whole split: every image counted once, none dropped to fill a batch.

The NLL of a split is the sample mean of -log p(x) over its n images; its
Monte-Carlo standard error is the sample standard deviation / sqrt(n).
"""
from __future__ import annotations

import math

import jax
import numpy as np

from dgm_jax import likelihood
from dgm_jax.data import eval_batches


def split_log_probs(runner, params, images: np.ndarray, labels, batch_size: int,
                    progress: bool = False) -> np.ndarray:
    """log p(x | y) in nats for every image of a split, in order, float64 [N].

    `params` are on the devices in the runner's layout.
    """
    out = []
    batches = eval_batches(images, labels, batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, total=-(-len(images) // batch_size), desc="eval", leave=False)
    for batch in batches:
        mask = np.asarray(batch.pop("mask")) > 0
        log_p = np.asarray(jax.device_get(runner.eval(params, runner.put_batch(batch))), np.float64)
        out.append(log_p[mask])
    result = np.concatenate(out) if out else np.zeros((0,), np.float64)
    if result.shape[0] != len(images):
        raise AssertionError(f"scored {result.shape[0]} of {len(images)} images")
    return result


def summarize(log_probs: np.ndarray, num_dims: int) -> dict:
    """nll (nats/image), its standard error, bits/dim and n."""
    n = int(log_probs.shape[0])
    nll = float(-np.mean(log_probs))
    stderr = float(np.std(log_probs, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"nll": nll, "nll_stderr": stderr, "bits_per_dim": float(likelihood.bits_per_dim(nll, num_dims)),
            "num_examples": n}

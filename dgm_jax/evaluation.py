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


def evaluate_checkpoint(workdir, split: str = "test", checkpoint: str | int = "best", *,
                        batch_size: int | None = None, parallelism: str | None = None,
                        progress: bool = False) -> dict:
    """Exact NLL of a saved run's checkpoint over every image of `split`.

    Loads the run's own config and checkpoint (dgm_jax.load), its data with the
    fixed evaluation binarization (ds.eval_images), checks that config.json,
    run_info.json, the data and the parameters agree, and scores the split on all
    local devices. For a conditional model each image is scored given its true
    label: nll_nats = mean -log p(x | y_true).

    Returns nll_nats, nll_stderr (sample std / sqrt(n)), bits_per_dim,
    num_examples, split, step, checkpoint and a description of the run.
    Raises checkpointing.CheckpointError (no checkpoint, or one that does not
    match the model) or ValueError (unknown split) with a readable message.
    """
    from dgm_jax import api, checkpointing, data, parallel
    from dgm_jax import train  # noqa: WPS433 - train imports this module

    run = api.load(workdir, checkpoint)
    cfg = run.config
    ds = data.load_dataset(cfg.data, seed=cfg.seed)
    if split not in ds.images:
        raise ValueError(f"split {split!r} does not exist in data set {ds.name!r}; "
                         f"available: {', '.join(ds.images)}")
    try:
        checkpointing.check_run_identity(run.workdir, train.run_info(cfg, ds))
    except checkpointing.CheckpointError as e:
        raise checkpointing.CheckpointError(
            f"config.json, run_info.json and the data of {run.workdir} disagree, so the checkpoint cannot be "
            f"matched to a model: {e}") from None
    runner = parallel.make_runner(parallelism or cfg.train.parallelism, model=run.model)
    bs = batch_size or cfg.train.eval_batch_size
    bs = -(-bs // runner.n) * runner.n                          # a multiple of the device count
    labels = ds.labels.get(split)
    log_p = split_log_probs(runner, runner.put_state(run.params), ds.eval_images(split), labels, bs,
                            progress=progress)
    s = summarize(log_p, int(np.prod(run.image_shape)))
    out = {"nll_nats": s["nll"], "nll_stderr": s["nll_stderr"], "bits_per_dim": s["bits_per_dim"],
           "num_examples": s["num_examples"], "split": split, "step": int(run.step), "checkpoint": str(checkpoint),
           "workdir": str(run.workdir), "model": cfg.model.name, "data": cfg.data.name,
           "binarization": cfg.data.binarization, "conditional": bool(cfg.model.conditional),
           "likelihood": "p(x)", "params": "ema" if cfg.optim.ema_decay > 0 else "params",
           "num_devices": runner.n, "parallelism": parallelism or cfg.train.parallelism}
    if cfg.model.conditional:
        kind = "true label" if labels is not None and labels.ndim == 1 else "true condition vector"
        out["likelihood"] = f"p(x | y = {kind})"
        out["nll_given_true_label_nats"] = s["nll"]
        out["nll_given_true_label_stderr"] = s["nll_stderr"]
    return out

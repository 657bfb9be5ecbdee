"""Throughput of a config's train step, evaluation and sampling on whatever devices JAX sees.

:func:`run_benchmark` (used by experiments/benchmark.py and experiments/bench_vs_peer.py)
measures, with random batches on the data's grid and of the config's image shape (no data
loading in the timed region, so the figures are the model's, not the input pipeline's):

* compile time of the train step (ahead-of-time lower + compile);
* train step time (median, p10, p90, std over `steps` dispatches after `warmup`) and images/s;
* evaluation images/s (the log-likelihood of a full eval batch);
* sampling images/s for the naive and the fast method (where the model has one);
* peak device memory (device.memory_stats(); None on CPU, where the peak host RSS is given);
* model FLOPs per train step from XLA's cost analysis, achieved FLOP/s, and the fraction of
  the device's dense peak where the device is known.
"""
from __future__ import annotations

import resource
import time

# Dense peak FLOP/s by device kind and compute dtype (vendor data sheets;
# float32 matmuls/convolutions on NVIDIA GPUs run on TF32 tensor cores by default).
PEAK_FLOPS = {
    "H100": {"bfloat16": 989e12, "float32": 494e12},
    "H200": {"bfloat16": 989e12, "float32": 494e12},
    "A100": {"bfloat16": 312e12, "float32": 156e12},
    "TPU v4": {"bfloat16": 275e12, "float32": 275e12},
    "TPU v5 lite": {"bfloat16": 197e12, "float32": 197e12},
    "TPU v5p": {"bfloat16": 459e12, "float32": 459e12},
}


def peak_flops(device_kind: str, dtype: str):
    for key, peaks in PEAK_FLOPS.items():
        if key.lower() in device_kind.lower():
            return peaks[dtype]
    return None


def _timed(fn, *args):
    import jax
    t = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return time.perf_counter() - t, out


def run_benchmark(config, steps: int = 20, warmup: int = 3, sampling: bool = True, sample_count: int = 0) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dgm_jax import assembly, config_schema, sampling as sampling_lib

    run = assembly.build_run(config, with_penalties=False)   # the bare maximum-likelihood step
    cfg, ds, model, runner = run.cfg, run.ds, run.model, run.runner
    n_dev = runner.n
    rng = np.random.default_rng(0)
    k, b = cfg.train.steps_per_dispatch, cfg.train.batch_size
    levels = ds.num_levels
    # Random images on the data's grid (0/1, or level / (K - 1)): the step's cost does not depend on them.
    x = (rng.integers(0, levels, size=(k, b) + tuple(ds.image_shape)) / (levels - 1)).astype(np.float32)
    batch = {"x": x}
    if cfg.model.conditional:
        batch["y"] = rng.integers(0, max(ds.num_classes, 1), size=(k, b)).astype(np.int32) \
            if ds.num_classes else rng.random((k, b, ds.cond_dim)).astype(np.float32)
    host_state = run.init_state()
    params = host_state.params
    state = runner.put_state(host_state)
    dev_batch = runner.put_batch(batch, batch_axis=1)

    t = time.perf_counter()
    compiled = runner.compile_train(state, dev_batch)
    compile_s = time.perf_counter() - t
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops_per_dispatch = float(cost.get("flops", 0.0)) if cost else 0.0
    # pmap's cost analysis is per device; the total is n_dev times that.
    total_flops = flops_per_dispatch * (n_dev if cfg.train.parallelism == "pmap" else 1)

    for _ in range(warmup):
        state, m = runner.train(state, dev_batch)
    jax.block_until_ready(state)          # (with warmup = 0 the first timed step includes its compile)
    times = []
    for _ in range(steps):
        dt, (state, m) = _timed(runner.train, state, dev_batch)
        times.append(dt)
    times = np.array(times)
    step_s = float(np.median(times))

    eval_batch = runner.put_batch({k_: v[0] for k_, v in batch.items()} if cfg.train.eval_batch_size == b else
                                  {k_: np.resize(v[0], (cfg.train.eval_batch_size,) + v.shape[2:])
                                   for k_, v in batch.items()})
    params_dev = runner.params_for_eval(state, cfg.optim.ema_decay > 0)
    _timed(runner.eval, params_dev, eval_batch)
    eval_times = [_timed(runner.eval, params_dev, eval_batch)[0] for _ in range(max(3, steps // 4))]
    eval_ips = cfg.train.eval_batch_size / float(np.median(eval_times))

    dev = jax.devices()[0]
    result = {
        "config": cfg.model.name, "model": config_schema.to_dict(cfg)["model"], "likelihood": run.likelihood,
        "device_kind": dev.device_kind, "platform": dev.platform, "num_devices": n_dev,
        "parallelism": cfg.train.parallelism, "batch_size": b, "steps_per_dispatch": k,
        "dtype": cfg.model.dtype, "num_params": int(sum(np.size(p) for p in jax.tree.leaves(params))),
        "compile_s": compile_s,
        "train_step_s_median": step_s / k, "train_step_s_p10": float(np.percentile(times, 10)) / k,
        "train_step_s_p90": float(np.percentile(times, 90)) / k, "train_step_s_std": float(np.std(times)) / k,
        "train_images_per_s": b * k / step_s,
        "eval_images_per_s": eval_ips,
        "flops_per_train_step": total_flops / k if total_flops else None,
        "achieved_flops_per_s": total_flops / step_s if total_flops else None,
    }
    peak = peak_flops(dev.device_kind, cfg.model.dtype)
    result["peak_flops_per_s"] = peak * n_dev if peak else None
    result["flop_utilization"] = (result["achieved_flops_per_s"] / result["peak_flops_per_s"]
                                  if peak and total_flops else None)

    if sampling:
        n = sample_count or max(4, n_dev)
        p_host = jax.device_get(runner.get_state(state)).params
        y = (jnp.arange(n) % max(ds.num_classes, 1)) if cfg.model.conditional and ds.num_classes else \
            (jnp.zeros((n, ds.cond_dim)) if cfg.model.conditional else None)
        for method in ("naive", "fast"):
            if method == "fast" and not sampling_lib.has_fast_method(model):
                result["sample_images_per_s_fast"] = None
                continue
            run = lambda key: sampling_lib.sample(model, p_host, key, n, y=y, method=method)
            _timed(run, jax.random.key(0))                  # compile
            dt, _ = _timed(run, jax.random.key(1))
            result[f"sample_images_per_s_{method}"] = n / dt
        if result.get("sample_images_per_s_fast"):
            result["sample_speedup_fast_over_naive"] = (result["sample_images_per_s_fast"]
                                                        / result["sample_images_per_s_naive"])

    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    result["peak_device_memory_bytes"] = int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats \
        else None
    result["peak_host_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result

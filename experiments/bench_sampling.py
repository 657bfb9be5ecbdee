"""Times the samplers of one config's model: naive against fast, after compilation.

    python experiments/bench_sampling.py --config=experiments/configs/gated_pixelcnn.py --num_samples=4

The parameters are a random initialisation (no data or checkpoint needed; the
cost does not depend on their values), scaled by --param_scale so that the
samples are not all zeros. Both methods are compiled ahead of time and then
run --repeats times; the script prints the seconds per call of each, the
ratio naive / fast, and whether the two drew the same samples for the same
key (they must: they compute the same logits).
"""
import json
import sys
import time
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for dgm_jax

config_flags.DEFINE_config_file("config", "experiments/configs/gated_pixelcnn.py",
                                "Experiment config whose model is timed.", lock_config=True)
flags.DEFINE_integer("num_samples", 4, "Samples per call.")
flags.DEFINE_integer("repeats", 1, "Timed calls per method (the best is reported).")
flags.DEFINE_list("image_shape", [], "H,W,C (default: the data set's, read from its loader).")
flags.DEFINE_integer("num_classes", 10, "Classes for a conditional model.")
flags.DEFINE_float("param_scale", 1.0, "Multiplies the random initial parameters.")
flags.DEFINE_list("methods", ["naive", "fast"], "Methods to time.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")
FLAGS = flags.FLAGS


def _image_shape(cfg):
    if FLAGS.image_shape:
        return tuple(int(v) for v in FLAGS.image_shape)
    from dgm_jax import data
    return tuple(data.load_dataset(cfg.data).image_shape)


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dgm_jax import config_schema, models, sampling

    cfg = config_schema.from_config_dict(FLAGS.config)
    shape = _image_shape(cfg)
    model = models.build_model(cfg.model, shape, FLAGS.num_classes)
    y0 = jnp.zeros((1, FLAGS.num_classes)) if cfg.model.conditional else None
    params = model.init(jax.random.key(0), jnp.zeros((1,) + shape), y0)["params"]
    params = jax.tree.map(lambda p: p * FLAGS.param_scale, params)
    y = np.arange(FLAGS.num_samples) % FLAGS.num_classes if cfg.model.conditional else None
    x0 = np.zeros((FLAGS.num_samples,) + shape, np.float32)
    print(f"{cfg.model.name} {shape}: {models.count_params(params):,} parameters, {FLAGS.num_samples} samples, "
          f"{jax.device_count()} x {jax.devices()[0].device_kind}; fast = {sampling.fast_method_name(model)}")
    figures, samples = {}, {}
    for method in FLAGS.methods:
        fn, args, n = sampling.prepare(model, params, jax.random.key(1), x0, 0, y, 1.0, method)
        t = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - t
        best = float("inf")
        for _ in range(FLAGS.repeats):
            t = time.perf_counter()
            out = jax.block_until_ready(compiled(*args))
            best = min(best, time.perf_counter() - t)
        samples[method] = np.asarray(out[:n])
        figures[method] = {"seconds": best, "compile_seconds": compile_s,
                           "seconds_per_sample": best / FLAGS.num_samples}
        print(f"{method:>6}: {best:9.3f} s per call ({best / FLAGS.num_samples:.3f} s/sample), "
              f"compiled in {compile_s:.1f} s; mean pixel {samples[method].mean():.3f}", flush=True)
    if {"naive", "fast"} <= set(figures):
        figures["ratio_naive_over_fast"] = figures["naive"]["seconds"] / figures["fast"]["seconds"]
        figures["same_samples"] = bool(np.array_equal(samples["naive"], samples["fast"]))
        print(f"naive / fast = {figures['ratio_naive_over_fast']:.1f}x; "
              f"same samples: {figures['same_samples']}")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"model": cfg.model.name, "image_shape": shape, "num_samples": FLAGS.num_samples,
                       "device": str(jax.devices()[0].device_kind), **figures}, f, indent=2)


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)

"""Times NADE training steps and forward passes on this machine: the library's model, and
optionally the original cumsum implementation (kept in tests/test_nade.py
as _ReferenceNADE) in the same process, interleaved, for a before/after comparison.

    python experiments/bench_nade.py --num_hidden=500 --batch_size=100 --steps=20
    python experiments/bench_nade.py --noreference          # the library's model only

A training step is jit(value_and_grad of the mean NLL -model.obs.log_prob(outputs, x).mean(),
then an optax.adam(1e-3) update), on random binary images of --image_shape; the forward pass
is jit(model.apply). After --warmup calls, each implementation is timed --steps times per
round, for --rounds rounds that alternate between the implementations (so both see the same
background load); the figures are the median (and best) seconds per call over all timed
calls, and images/s = batch_size / median. Also printed: XLA's FLOP count of each compiled
function (cost_analysis; XLA counts a while-loop body once, so for the scanned implementation
it is one block's cost plus the non-loop work, not the total), and the load average before
and after, since timings on a shared machine are noisy.
"""
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root, for dgm_jax

flags.DEFINE_integer("num_hidden", 500, "H: NADE hidden units.")
flags.DEFINE_integer("batch_size", 100, "Images per step.")
flags.DEFINE_integer("steps", 20, "Timed calls per implementation per round.")
flags.DEFINE_integer("rounds", 3, "Rounds, alternating between the implementations.")
flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.")
flags.DEFINE_list("image_shape", ["28", "28", "1"], "H,W,C of the (binary) images.")
flags.DEFINE_bool("reference", True, "Also time the original cumsum implementation (before/after).")
flags.DEFINE_bool("forward", True, "Also time the forward pass alone.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")
FLAGS = flags.FLAGS


def _reference_class():
    path = REPO / "tests" / "test_nade.py"
    spec = importlib.util.spec_from_file_location("_nade_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._ReferenceNADE


def _flops(compiled):
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp
    import optax

    from dgm_jax import config_schema, models

    shape = tuple(int(v) for v in FLAGS.image_shape)
    cfg = config_schema.model_config("nade", num_hidden=FLAGS.num_hidden)
    model = models.build_model(cfg, shape)
    impls = {"blocked (library)": model}
    if FLAGS.reference:
        ref_cls = _reference_class()
        impls["cumsum (reference)"] = ref_cls(image_shape=model.image_shape, observation=model.observation,
                                              num_classes=model.num_classes, conditional=model.conditional,
                                              dtype=model.dtype, num_hidden=model.num_hidden)

    x = jax.random.bernoulli(jax.random.key(1), 0.5, (FLAGS.batch_size,) + shape).astype(jnp.float32)
    params = model.init(jax.random.key(0), x[:1])["params"]
    opt = optax.adam(1e-3)
    d = x[0].size
    print(f"NADE H={FLAGS.num_hidden}, images {shape} (D={d}), batch {FLAGS.batch_size}, "
          f"{models.count_params(params):,} parameters; {jax.device_count()} x {jax.devices()[0].device_kind}, "
          f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()}")

    calls = {}
    for name, module in impls.items():
        def loss(p, x, module=module):
            return -module.obs.log_prob(module.apply({"params": p}, x), x).mean()

        def step(p, s, x, loss=loss):
            value, grads = jax.value_and_grad(loss)(p, x)
            updates, s = opt.update(grads, s, p)
            return optax.apply_updates(p, updates), s, value

        state = {"p": params, "s": opt.init(params)}
        train = jax.jit(step).lower(state["p"], state["s"], x).compile()

        def run_train(train=train, state=state):
            state["p"], state["s"], value = train(state["p"], state["s"], x)
            return value

        calls[(name, "train step")] = (run_train, _flops(train))
        if FLAGS.forward:
            fwd = jax.jit(lambda p, x, module=module: module.apply({"params": p}, x)).lower(params, x).compile()
            calls[(name, "forward")] = ((lambda fwd=fwd: fwd(params, x)), _flops(fwd))

    for fn, _ in calls.values():
        for _ in range(FLAGS.warmup):
            jax.block_until_ready(fn())
    times = {key: [] for key in calls}
    for _ in range(FLAGS.rounds):
        for key, (fn, _) in calls.items():
            for _ in range(FLAGS.steps):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                times[key].append(time.perf_counter() - t0)

    figures = {}
    for (name, what), ts in times.items():
        med, best = statistics.median(ts), min(ts)
        flops = calls[(name, what)][1]
        figures[f"{name} / {what}"] = {"median_s": med, "best_s": best, "images_per_s": FLAGS.batch_size / med,
                                       "images_per_s_best": FLAGS.batch_size / best, "xla_flops": flops,
                                       "calls": len(ts)}
        print(f"{name:20s} {what:11s} median {med * 1e3:8.1f} ms  best {best * 1e3:8.1f} ms  "
              f"-> {FLAGS.batch_size / med:7.0f} images/s (best {FLAGS.batch_size / best:7.0f})  "
              f"XLA flops {flops:.3g}")
    if FLAGS.reference:
        for what in ("train step", "forward") if FLAGS.forward else ("train step",):
            new = figures[f"blocked (library) / {what}"]["median_s"]
            old = figures[f"cumsum (reference) / {what}"]["median_s"]
            print(f"speed-up, {what}: {old / new:.1f}x (medians)")
    print(f"load average after: {os.getloadavg()}  (timings on a shared machine are noisy)")
    if FLAGS.output:
        Path(FLAGS.output).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)

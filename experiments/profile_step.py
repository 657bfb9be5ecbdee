"""Where a config's train step spends its time: per-op totals from a jax.profiler trace.

    python experiments/profile_step.py --config=experiments/configs/gated_pixelcnn.py \
        --config.model.num_layers=5 --config.model.num_features=32 --steps=3 [--top=30]

Runs a few train steps of the config on random batches under ``jax.profiler.trace``
(with a Perfetto trace), then sums the duration of every XLA op over the traced steps and
prints the largest, each with its HLO shape and the source op it came from (forward or
backward, layer, primitive) from the compiled program's metadata. Times are thread time:
ops running concurrently on the two cores both count. This is how the CPU bottlenecks of
the convolutional models were found (the 4-D 1x1 products' weight gradients, the gates);
see dgm_jax/kernels/cpu.py and dgm_jax/xla_cpu.py. Before the per-op list it prints the step's
time by kind: convolutions and matrix products split into forward, input gradient and weight
gradient, and the fusions, reductions and copies of the forward and backward passes.
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from dgm_jax import cli_config  # noqa: E402

cli_config.define_config_file("config", None, "Experiment config file (--config.model.name switches its model).")
flags.DEFINE_integer("steps", 3, "Traced train steps.")
flags.DEFINE_integer("top", 30, "Ops to print.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import jax
    import numpy as np

    from dgm_jax import assembly

    run = assembly.build_run(FLAGS.config, with_penalties=False)
    r, ds, cfg = run.runner, run.ds, run.cfg
    rng = np.random.default_rng(0)
    b = cfg.train.batch_size
    x = (rng.integers(0, ds.num_levels, (1, b) + tuple(ds.image_shape)) / (ds.num_levels - 1)).astype(np.float32)
    batch = {"x": x}
    if cfg.model.conditional:
        batch["y"] = rng.integers(0, max(ds.num_classes, 1), (1, b)).astype(np.int32)
    state = r.put_state(run.init_state())
    dev_batch = r.put_batch(batch, batch_axis=1)
    for _ in range(3):
        state, m = r.train(state, dev_batch)
    jax.block_until_ready(m)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir, create_perfetto_trace=True):
            for _ in range(FLAGS.steps):
                state, m = r.train(state, dev_batch)
            jax.block_until_ready(m)
        wall = (time.perf_counter() - t) / FLAGS.steps
        trace = sorted(glob.glob(f"{logdir}/**/perfetto_trace.json.gz", recursive=True))[-1]
        events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e and not e["name"].startswith(("$", "Thunk")):
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
    meta = {}
    for line in r.compile_train(state, dev_batch).as_text().splitlines():
        found = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) .*?op_name=\"([^\"]+)\"", line)
        if found:
            meta[found.group(1)] = (found.group(2), found.group(3))
    print(f"{cfg.model.name}: {wall * 1e3:.1f} ms per traced step (wall, with tracing overhead)")
    hlo = r.compile_train(state, dev_batch).as_text()
    shapes = {name: _out_shape(line) for name, line in _hlo_lines(hlo)}
    core = _fused_cores(hlo)         # op -> "convolution" / "dot" when it is (or fuses) one
    kernels = {tuple(leaf.shape) for leaf in jax.tree.leaves(run.init_params())}
    by_kind = collections.Counter()
    for name, us in total.items():
        if name in shapes:           # XLA ops of the step (not the host's dispatch events)
            by_kind[_kind(core.get(name, name), shapes[name], meta.get(name, ("", ""))[1], kernels)] += us
    busy = sum(by_kind.values())
    print(f"by kind (thread time per step; {busy / FLAGS.steps / 1e3:.1f} ms in all ops):")
    for kind, us in by_kind.most_common():
        print(f"  {kind:34s} {us / FLAGS.steps / 1e3:8.2f} ms  {us / busy:6.1%}")
    print(f"{'ms/step':>8}  {'calls':>5}  {'op':30s} {'shape':30s} source")
    for name, us in total.most_common(FLAGS.top):
        shape, source = meta.get(name, ("", ""))
        kind = "bwd" if "transpose(" in source else ("fwd" if source else "")
        print(f"{us / FLAGS.steps / 1e3:8.2f}  {count[name] // FLAGS.steps:5d}  {name[:30]:30s} {shape[:30]:30s} "
              f"{kind} {source[-80:]}")


def _hlo_lines(text: str):
    for line in text.splitlines():
        found = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (.*)", line)
        if found:
            yield found.group(1), found.group(2)


def _fused_cores(text: str) -> dict[str, str]:
    """{op name: 'convolution' | 'dot'} for the ops that are, or are fusions containing, a
    convolution or a matrix product (XLA:CPU fuses them with their elementwise neighbours)."""
    inside, current, out = {}, None, {}
    for line in text.splitlines():
        head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if head:
            current = head.group(1)
        elif current and re.search(r"= \S+ convolution\(", line):
            inside.setdefault(current, "convolution")
        elif current and re.search(r"= \S+ dot\(", line):
            inside.setdefault(current, "dot")
    for name, rhs in _hlo_lines(text):
        called = re.search(r"calls=%?([\w.\-]+)", rhs)
        if " convolution(" in rhs:
            out[name] = "convolution"
        elif " dot(" in rhs:
            out[name] = "dot"
        elif called and called.group(1) in inside:
            out[name] = inside[called.group(1)]
    return out


def _out_shape(rhs: str) -> tuple[int, ...] | None:
    found = re.match(r"f32\[([\d,]*)\]", rhs)
    return tuple(int(d) for d in found.group(1).split(",") if d) if found else None


def _kind(name: str, shape, source: str, kernels: set) -> str:
    """An op's kind: convolutions split into forward, weight gradient (a backward result shaped like
    a parameter) and input gradient (any other backward result); matrix products likewise; the
    rest by XLA's op name."""
    backward = "transpose(" in source
    if name in ("convolution", "dot") or name.startswith(("convolution.", "dot.")):
        what = "convolution" if name.startswith("convolution") else "matrix product (dot)"
        # A kernel-shaped result, or XLA:CPU's canonical weight-gradient layout [in, kh, kw, out]
        # (the input features as the batch); some of these ops carry no source metadata.
        as_kernel = shape and len(shape) == 4 and (shape[1], shape[2], shape[0], shape[3]) in kernels
        if shape in kernels or as_kernel:
            return f"{what}, weight gradient"
        return f"{what}, input gradient" if backward else f"{what}, forward"
    side = "backward" if backward else "forward"
    if "fusion" in name or name.startswith("wrapped_"):
        return f"fused elementwise ({side})"
    for prefix in ("reduce", "copy", "transpose", "pad", "slice", "concatenate", "broadcast"):
        if name.startswith(prefix):
            return f"{prefix} ({side})"
    return f"other ({side})"


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    flags.mark_flags_as_required(["config"])
    app.run(main)

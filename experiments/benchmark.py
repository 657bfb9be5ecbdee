"""Throughput benchmark of any config on whatever devices JAX sees.

    python experiments/benchmark.py --config=experiments/configs/gated_pixelcnn.py --steps=50 --output=bench.json

Prints (and with --output writes) the JSON of dgm_jax.benchmarking.run_benchmark: compile
time, train step time and images/s, evaluation images/s, naive and fast sampling images/s,
peak memory, and XLA's FLOPs per step with the achieved FLOP/s (and the fraction of the
device's dense peak where the device is known). See that module for what each figure is.

It is a benchmark, not a test: tests/test_benchmark.py only checks that it
runs on a tiny config and writes the JSON.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from dgm_jax import cli_config  # noqa: E402

cli_config.define_config_file("config", None, "Experiment config file (--config.model.name switches its model).")
flags.DEFINE_integer("steps", 20, "Timed train dispatches.")
flags.DEFINE_integer("warmup", 3, "Untimed dispatches after compilation.")
flags.DEFINE_integer("sample_count", 0, "Images per sampling measurement (0 = one per device, min 4).")
flags.DEFINE_bool("sampling", True, "Measure sampling (naive can be slow for deep models on CPU).")
flags.DEFINE_string("output", "", "Write the figures to this JSON file.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from dgm_jax.benchmarking import run_benchmark

    result = run_benchmark(FLAGS.config, steps=FLAGS.steps, warmup=FLAGS.warmup, sampling=FLAGS.sampling,
                           sample_count=FLAGS.sample_count)
    text = json.dumps(result, indent=2)
    print(text)
    if FLAGS.output:
        Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.output).write_text(text + "\n")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    flags.mark_flags_as_required(["config"])
    app.run(main)

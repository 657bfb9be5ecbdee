"""Every model's train step and evaluation on this machine, as one markdown table.

    python experiments/bench_table.py [--steps=5] [--output=runs/bench_table.json]

Rows: each model's own config (experiments/configs/<model>.py, the statically binarized
MNIST sizes) and the quickstart (the class-conditional gated PixelCNN on mnist5k).
Columns from dgm_jax.benchmarking.run_benchmark: parameters, batch, train images/s, XLA's
FLOPs per train step and the achieved GFLOP/s, evaluation images/s, and the train / eval
time per image. No sampling (see experiments/benchmark.py and bench_sampling.py). Each row runs
experiments/benchmark.py in a fresh process, so that its config's train.cpu_devices takes
effect (the count of CPU devices is fixed when JAX starts). Run it on a quiet machine and name
the machine with the figures.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]

flags.DEFINE_integer("steps", 5, "Timed train steps per row.")
flags.DEFINE_list("configs", ["bernoulli", "fvsbn", "nade", "made", "pixelcnn", "gated_pixelcnn", "quickstart"],
                  "Config files under experiments/configs/.")
flags.DEFINE_string("output", "", "Also write the rows as JSON here.")
FLAGS = flags.FLAGS


def _benchmark(name: str) -> dict:
    """benchmark.py on experiments/configs/<name>.py in a fresh process; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, str(ROOT / "experiments" / "benchmark.py"),
               f"--config={ROOT / 'experiments' / 'configs' / name}.py", f"--steps={FLAGS.steps}", "--warmup=2",
               "--nosampling", f"--output={out}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode or not out.is_file():
            raise SystemExit(f"benchmark of {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def main(argv):
    del argv
    rows = []
    for name in FLAGS.configs:
        r = _benchmark(name)
        sizes = {k: v for k, v in r["model"].items() if k not in ("name", "dtype", "likelihood", "conditional")}
        rows.append({"config": name, "model": r["config"], "conditional": r["model"]["conditional"],
                     "sizes": sizes, "num_params": r["num_params"], "batch": r["batch_size"],
                     "num_devices": r.get("num_devices", 1),
                     "train_images_per_s": r["train_images_per_s"], "eval_images_per_s": r["eval_images_per_s"],
                     "gflop_per_step": (r["flops_per_train_step"] or 0) / 1e9,
                     "gflops": (r["achieved_flops_per_s"] or 0) / 1e9, "device": r["device_kind"]})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{rows[0]['device']} ({platform.processor() or platform.machine()}), "
          f"{FLAGS.steps} timed steps per row\n")
    print("| config | model | sizes | parameters | batch | devices | train images/s | GFLOP/step (XLA) | GFLOP/s | "
          "eval images/s | train / eval time per image |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items()) or "—"
        model = r["model"] + (" (conditional)" if r["conditional"] else "")
        print(f"| {r['config']} | {model} | {sizes} | {r['num_params']:,} | {r['batch']} | {r['num_devices']} | "
              f"{r['train_images_per_s']:,.0f} | {r['gflop_per_step']:.2f} | {r['gflops']:.1f} | "
              f"{r['eval_images_per_s']:,.0f} | {r['eval_images_per_s'] / r['train_images_per_s']:.2f} |")
    if FLAGS.output:
        Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.output).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    app.run(main)

"""dgm_jax's gated_pixelcnn train step against a PyTorch peer's, on this CPU, in the same run.

    python experiments/bench_vs_peer.py --peer_python=/path/to/torch-venv/bin/python \
        --peer_src=/path/to/pytorch-generative [--sizes=5x32,7x64] [--rounds=2]

For each size L x F (L gated layers after the first, F features, head 32, batch
64 of 28x28 binary images) it alternates --rounds times between dgm_jax
(dgm_jax.benchmarking.run_benchmark on the gated_pixelcnn config, no
sampling) and the peer (experiments/bench_peer.py in the peer's interpreter),
so that both see the same machine state, and prints a markdown table with the
best round of each: parameters, images/s, the ratio, and dgm_jax's XLA FLOP/s.
Run it on a quiet machine; the figures are only as good as that.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

flags.DEFINE_string("peer_python", None, "Python of the virtual environment that has torch.")
flags.DEFINE_string("peer_src", None, "Checkout of EugenHotaj/pytorch-generative (outside this repository).")
flags.DEFINE_list("sizes", ["5x32", "7x64"], "L x F sizes.")
flags.DEFINE_integer("rounds", 2, "Alternations per size (the best round of each side is reported).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement.")
flags.DEFINE_string("output", "", "Also write the rows as JSON here.")
FLAGS = flags.FLAGS
HERE = Path(__file__).resolve().parent


def ours(layers: int, feats: int) -> dict:
    from dgm_jax import benchmarking
    from experiments.configs import gated_pixelcnn
    config = gated_pixelcnn.get_config()
    config.model.num_layers, config.model.num_features, config.model.head_features = layers, feats, 32
    config.train.batch_size = 64
    config.optim.ema_decay = 0.0          # the peer keeps no EMA
    return benchmarking.run_benchmark(config, steps=FLAGS.steps, warmup=3, sampling=False)


def peer(layers: int, feats: int) -> dict:
    out = subprocess.run([FLAGS.peer_python, str(HERE / "bench_peer.py"), f"--peer_src={FLAGS.peer_src}",
                          f"--layers={layers}", f"--features={feats}", "--head=32", "--batch=64",
                          f"--steps={FLAGS.steps}"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    rows = []
    for size in FLAGS.sizes:
        layers, feats = (int(v) for v in size.split("x"))
        best_ours, best_peer = None, None
        for _ in range(FLAGS.rounds):
            p, o = peer(layers, feats), ours(layers, feats)
            if best_peer is None or p["train_images_per_s"] > best_peer["train_images_per_s"]:
                best_peer = p
            if best_ours is None or o["train_images_per_s"] > best_ours["train_images_per_s"]:
                best_ours = o
        rows.append({"size": size, "peer_params": best_peer["num_params"], "ours_params": best_ours["num_params"],
                     "peer_images_per_s": best_peer["train_images_per_s"],
                     "ours_images_per_s": best_ours["train_images_per_s"],
                     "ours_eval_images_per_s": best_ours["eval_images_per_s"],
                     "ours_gflops": best_ours["achieved_flops_per_s"] / 1e9,
                     "torch": best_peer["torch"], "torch_threads": best_peer["threads"]})
    print("| layers x features | parameters (peer / dgm_jax) | peer images/s | dgm_jax images/s | ratio | "
          "dgm_jax GFLOP/s (XLA count) | dgm_jax train / eval time per image |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['peer_params']:,} / {r['ours_params']:,} | {r['peer_images_per_s']:.1f} | "
              f"{r['ours_images_per_s']:.1f} | {r['ours_images_per_s'] / r['peer_images_per_s']:.2f}x | "
              f"{r['ours_gflops']:.1f} | {r['ours_eval_images_per_s'] / r['ours_images_per_s']:.2f} |")
    print(f"(torch {rows[0]['torch']}, {rows[0]['torch_threads']} threads)")
    if FLAGS.output:
        Path(FLAGS.output).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    flags.mark_flags_as_required(["peer_python", "peer_src"])
    app.run(main)

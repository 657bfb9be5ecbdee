"""dgm_jax's gated_pixelcnn or pixelsnail train step against a PyTorch peer's, on this CPU, in the same run.

    python experiments/bench_vs_peer.py --peer_python=/path/to/torch-venv/bin/python \
        --peer_src=/path/to/pytorch-generative [--sizes=5x32,7x64] [--rounds=2]
    python experiments/bench_vs_peer.py --model=pixelsnail --peer_python=... --peer_src=... \
        [--sizes=8x2x64] [--rounds=2]

gated_pixelcnn: for each size L x F (L gated layers after the first, F features,
head 32, batch 64 of 28x28 binary images). pixelsnail: for each size B x R x F
(B blocks of R residual layers and one attention, F features, batch 32 of
28x28 binary images), one attention head of F/2 value and F/16 key channels on
both sides, the ratios of the peer's own MNIST model (8 x 2 x 64: value 32,
key 4). It alternates --rounds times between dgm_jax
(dgm_jax.benchmarking.run_benchmark on the model's config, no EMA, no gradient
clipping, no sampling) and the peer (experiments/bench_peer.py in the peer's
interpreter), so that both see the same machine state, and prints a markdown
table with the best round of each: parameters of both, train and eval images/s and
their ratios, dgm_jax's XLA FLOP/s and its fraction of the rate of a large matrix
product here (XLA's 2048 x 2048 float32 product, measured in the same run). The
gated stacks store their kernels without masked taps (only layer 0's centre tap,
1 x 2F entries, is masked), so XLA's FLOP count is the useful count to within 0.01%. Run it on a quiet machine; the figures are only as good as that.
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
flags.DEFINE_enum("model", "gated_pixelcnn", ["gated_pixelcnn", "pixelsnail"], "dgm_jax's model (and the peer's).")
flags.DEFINE_list("sizes", None, "gated_pixelcnn: L x F sizes (default 5x32,7x64); pixelsnail: B x R x F "
                  "(default 8x2x64).")
flags.DEFINE_integer("batch", 0, "Images per step (0: 64 for gated_pixelcnn, 32 for pixelsnail).")
flags.DEFINE_integer("rounds", 2, "Alternations per size (the best round of each side is reported).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement.")
flags.DEFINE_string("output", "", "Also write the rows as JSON here.")
FLAGS = flags.FLAGS
HERE = Path(__file__).resolve().parent


DEFAULT_SIZES = {"gated_pixelcnn": ["5x32", "7x64"], "pixelsnail": ["8x2x64"]}
DEFAULT_BATCH = {"gated_pixelcnn": 64, "pixelsnail": 32}


def attention_sizes(feats: int) -> tuple[int, int]:
    """(key, value) channels of the one attention head for F features: F/16 and F/2 (the peer's MNIST model)."""
    return max(1, feats // 16), max(1, feats // 2)


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of XLA's n x n float32 matrix product on this machine (best of `repeats`): the rate a
    large, perfectly shaped product reaches here, the reference for the models' fraction."""
    import time

    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def ours(size: tuple[int, ...], batch: int) -> dict:
    from dgm_jax import benchmarking
    if FLAGS.model == "gated_pixelcnn":
        from experiments.configs import gated_pixelcnn
        config = gated_pixelcnn.get_config()
        layers, feats = size
        config.model.num_layers, config.model.num_features, config.model.head_features = layers, feats, 32
    else:
        from experiments.configs import pixelsnail
        config = pixelsnail.get_config()
        blocks, res, feats = size
        config.model.num_blocks, config.model.num_res_per_block, config.model.num_features = blocks, res, feats
        config.model.num_heads = 1
        config.model.key_features, config.model.value_features = attention_sizes(feats)
        config.optim.grad_clip_norm = 0.0     # the peer's step does not clip
    config.train.batch_size = batch
    config.optim.ema_decay = 0.0              # the peer keeps no EMA
    return benchmarking.run_benchmark(config, steps=FLAGS.steps, warmup=3, sampling=False)


def peer(size: tuple[int, ...], batch: int) -> dict:
    if FLAGS.model == "gated_pixelcnn":
        layers, feats = size
        shape = ["--model=gated", f"--layers={layers}", f"--features={feats}", "--head=32"]
    else:
        blocks, res, feats = size
        key, value = attention_sizes(feats)
        shape = ["--model=pixelsnail", f"--blocks={blocks}", f"--res={res}", f"--features={feats}",
                 f"--key={key}", f"--value={value}"]
    out = subprocess.run([FLAGS.peer_python, str(HERE / "bench_peer.py"), f"--peer_src={FLAGS.peer_src}",
                          *shape, f"--batch={batch}", f"--steps={FLAGS.steps}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    rows = []
    batch = FLAGS.batch or DEFAULT_BATCH[FLAGS.model]
    parts = 2 if FLAGS.model == "gated_pixelcnn" else 3
    for size in FLAGS.sizes or DEFAULT_SIZES[FLAGS.model]:
        dims = tuple(int(v) for v in size.split("x"))
        if len(dims) != parts:
            raise app.UsageError(f"--sizes={size}: {FLAGS.model} sizes are "
                                 f"{'L x F' if parts == 2 else 'B x R x F'}, e.g. {DEFAULT_SIZES[FLAGS.model][0]}")
        best_ours, best_peer = None, None
        for _ in range(FLAGS.rounds):
            p, o = peer(dims, batch), ours(dims, batch)
            if best_peer is None or p["train_images_per_s"] > best_peer["train_images_per_s"]:
                best_peer = p
            if best_ours is None or o["train_images_per_s"] > best_ours["train_images_per_s"]:
                best_ours = o
        label = size if FLAGS.model == "gated_pixelcnn" else f"{size} {attention_sizes(dims[-1])}"
        rows.append({"size": label, "peer_params": best_peer["num_params"], "ours_params": best_ours["num_params"],
                     "peer_images_per_s": best_peer["train_images_per_s"],
                     "ours_images_per_s": best_ours["train_images_per_s"],
                     "ours_eval_images_per_s": best_ours["eval_images_per_s"],
                     "peer_eval_images_per_s": best_peer.get("eval_images_per_s"),
                     "ours_gflops": best_ours["achieved_flops_per_s"] / 1e9,
                     "torch": best_peer["torch"], "torch_threads": best_peer["threads"]})
    peak = matmul_rate()
    size_name = "layers x features" if FLAGS.model == "gated_pixelcnn" else \
        "blocks x residual layers x features (key, value)"
    print(f"{FLAGS.model} vs pytorch-generative's {best_peer['peer'].split()[-1]}, batch {batch} of 28x28 binary "
          "images, one Adam step")
    print(f"| {size_name} | parameters (peer / dgm_jax) | train images/s: peer | dgm_jax | ratio | "
          "eval images/s: peer | dgm_jax | ratio | dgm_jax train GFLOP/s (XLA count) | fraction of the matmul rate |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        pe = r["peer_eval_images_per_s"]
        eval_cells = (f"{pe:.1f} | {r['ours_eval_images_per_s']:.1f} | {r['ours_eval_images_per_s'] / pe:.2f}x"
                      if pe else f"— | {r['ours_eval_images_per_s']:.1f} | —")
        print(f"| {r['size']} | {r['peer_params']:,} / {r['ours_params']:,} | {r['peer_images_per_s']:.1f} | "
              f"{r['ours_images_per_s']:.1f} | {r['ours_images_per_s'] / r['peer_images_per_s']:.2f}x | {eval_cells} | "
              f"{r['ours_gflops']:.1f} | {r['ours_gflops'] * 1e9 / peak:.0%} |")
    print(f"(torch {rows[0]['torch']}, {rows[0]['torch_threads']} threads; the matmul rate: XLA's 2048 x 2048 "
          f"float32 product here, {peak / 1e9:.0f} GFLOP/s)")
    for r in rows:
        r["matmul_gflops"] = peak / 1e9
    if FLAGS.output:
        Path(FLAGS.output).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    from dgm_jax.huge_pages import reexec
    reexec()        # once, before JAX starts: huge pages for XLA's buffers (dgm_jax/huge_pages.py)
    flags.mark_flags_as_required(["peer_python", "peer_src"])
    app.run(main)

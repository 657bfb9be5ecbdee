"""NADE (Larochelle & Murray, 2011) on statically binarized MNIST.

    python launch.py --config=experiments/configs/nade.py --workdir=runs/nade

500 hidden units as in the paper (which reports 88.86 nats on this data).
The running-sum forward pass is [B, 784, 500] elementwise work plus two
[B*784, 500] contractions: a few ms per step of 100 images on an H100, so
150k steps (300 epochs) fit in well under the 25 minutes budget.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("nade")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_hidden = 500        # H: hidden units shared by all 784 conditionals

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 10.0   # the sum over 784 conditionals gives large early gradients
    config.optim.ema_decay = 0.999       # evaluate the averaged weights

    config.train.batch_size = 100
    # On a CPU, one data-parallel device per core: NADE's step is many small operations that
    # XLA does not split over cores (1.9x the images/s on 2 cores; dgm_jax/xla_cpu.py).
    config.train.cpu_devices = -1
    config.train.parallelism = "shard_map"   # less per-step overhead than pmap here (2,120 vs 1,970 images/s)
    config.train.num_steps = 150_000
    config.train.log_every = 500
    config.train.eval_every = 5000
    config.train.checkpoint_every = 5000
    config.train.early_stopping_patience = 5

    return base.variant(config, variant)              # "tiny": base.tiny (digits, 8 maps / 32 units)

"""Fully visible sigmoid belief network (one logistic regression per pixel) on
statically binarized MNIST.

    python launch.py --config=experiments/configs/fvsbn.py --workdir=runs/fvsbn

784 logistic regressions with separate weights (a 784 x 784 lower-triangular
matrix, ~308k used weights). The log-likelihood is concave, so the optimum is
reached reliably; overfitting is the limit, hence early stopping on the
validation split and a little decoupled weight decay. A [100, 784] x [784, 784]
matmul per step: ~1 ms on an H100, so 50k steps take a few minutes.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("fvsbn")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    # AdamW: the weight decay acts as a weak Gaussian prior on W (the model has
    # no other regularizer); cosine decay to polish the concave optimum.
    config.optim.name = "adamw"
    config.optim.learning_rate = 1e-3
    config.optim.weight_decay = 1e-4
    config.optim.warmup_steps = 200
    config.optim.schedule = "cosine"

    config.train.batch_size = 100
    config.train.num_steps = 50_000      # 100 epochs of the 50k training images
    config.train.log_every = 250
    config.train.eval_every = 2500
    config.train.checkpoint_every = 2500
    config.train.early_stopping_patience = 4

    return base.variant(config, variant)              # "tiny": base.tiny (digits, 8 maps / 32 units)

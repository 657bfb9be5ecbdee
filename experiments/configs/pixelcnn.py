"""The original PixelCNN (mask-A 7x7 input layer, residual mask-B 3x3 layers) on
statically binarized MNIST.

    python launch.py --config=experiments/configs/pixelcnn.py --workdir=runs/pixelcnn

Sizing for ~25 minutes on one H100: 12 residual 3x3 layers of 128 maps cost
about 2.8 GFLOP per 28x28 image forward, ~8 GFLOP with the backward pass, so
~0.55 TFLOP per step of 64 images: ~15-20 ms at the throughput small convs
reach, i.e. 60k steps (77 epochs) in ~20 minutes. 12 layers reach 15 rows up
(receptive_field_rows), enough for a digit's strokes; the blind spot above
right of each pixel remains (see the gated variant).
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("pixelcnn")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_features = 128      # maps in every hidden layer
    config.model.num_layers = 12         # residual mask-B layers after the input layer
    config.model.kernel_size = 3
    config.model.first_kernel_size = 7   # the mask-A layer that reads the image
    config.model.head_features = 0       # = num_features

    config.optim.name = "adam"
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 1000
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.999

    config.train.batch_size = 64
    config.train.num_steps = 60_000
    config.train.log_every = 500
    config.train.eval_every = 5000
    config.train.checkpoint_every = 5000
    config.train.early_stopping_patience = 4

    return base.variant(config, variant)              # "tiny": base.tiny (digits, 8 maps / 32 units)

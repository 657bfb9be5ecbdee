"""Gated PixelCNN (van den Oord et al., 2016) on statically binarized MNIST.

    python launch.py --config=experiments/configs/gated_pixelcnn.py --workdir=runs/gated_pixelcnn

Sizing for ~25 minutes on one H100 (the paper used deeper stacks on larger
images). One gated layer of F = 128 maps on 28x28 costs per image, forward:
vertical 2x3 conv F->2F 308 MFLOP, horizontal 1x2 conv F->2F 103, the 1x1
link 2F->2F 103, residual and skip 1x1 F->F 26 each: ~0.57 GFLOP. 16 layers
(the 7x7 first one and 15 gated 3x3 ones) make ~9 GFLOP forward, ~27 with the
backward pass, ~1.7 TFLOP per step of 64 images: ~40 ms at the throughput
small convolutions reach in float32, so 30k steps (38 epochs) take ~20
minutes, leaving room for evaluation and the final samples. 15 layers see
1 + 3 + 15 = 19 rows up (receptive_field_rows) with no blind spot. For more
steps in the same time, try --config.model.dtype=bfloat16.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("gated_pixelcnn")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_features = 128      # F: maps per stack (the gates read 2F pre-activations)
    config.model.num_layers = 15         # gated layers after the first (mask-A-like) one
    config.model.kernel_size = 3         # vertical 2x3, horizontal 1x2 (shifted, no blind spot)
    config.model.first_kernel_size = 7   # first layer: vertical 4x7, horizontal 1x4 (current pixel excluded)
    config.model.head_features = 0       # = num_features, the 1x1 ReLU layer before the logits
    config.model.conditional = False

    config.optim.name = "adam"
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 1000
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.999

    config.train.batch_size = 64
    config.train.num_steps = 30_000
    config.train.log_every = 500
    config.train.eval_every = 2500
    config.train.checkpoint_every = 2500
    config.train.early_stopping_patience = 4

    return base.variant(config, variant)              # "tiny": base.tiny (digits, 8 maps / 32 units)

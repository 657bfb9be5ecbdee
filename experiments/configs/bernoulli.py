"""Independent Bernoulli pixels (one coin per pixel) on statically binarized MNIST.

    python launch.py --config=experiments/configs/bernoulli.py --workdir=runs/bernoulli

The baseline every other model must beat. Its MLE is closed-form (the pixel
means), so training only needs to get close to it; a minute on any machine.
Pixels that are 0 in every training image have MLE logit -inf: gradient
training leaves them finite (about -log(steps)), which keeps the test NLL
finite. ``:tiny`` runs on sklearn digits in seconds.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("bernoulli")
    config.seed = 0

    # The standard statically binarized MNIST (Larochelle & Murray, 2011):
    # 50k train / 10k valid / 10k test, fixed binary images, no labels.
    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    # 784 logits, nothing to size.

    # A concave problem with a unique optimum: a large constant step is fine.
    config.optim.name = "adam"
    config.optim.learning_rate = 3e-2
    config.optim.warmup_steps = 0
    config.optim.schedule = "constant"

    config.train.batch_size = 100
    config.train.num_steps = 3000        # 6 epochs; the interior pixels converge in far fewer
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000

    def tiny(c):
        c.optim.learning_rate = 3e-2  # base.tiny's 3e-3 barely moves 64 coins in 40 steps

    return base.variant(config, variant, tiny_fn=tiny)

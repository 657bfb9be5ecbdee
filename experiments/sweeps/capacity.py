"""Capacity sweep: PixelCNNs from tiny to large on a small, fixed training subset.

    python experiments/run_sweep.py --sweep=experiments/sweeps/capacity.py --workdir=runs/capacity [--smoke]

What it shows: with few training images and no regularization, training NLL
keeps falling as the model grows, while validation NLL first falls (less
bias) and then rises (more variance): overfitting. Choices that make this
visible on a CPU:
  * data.binarization = 'threshold': a FIXED binary training set. Dynamic
    binarization draws new pixels every epoch, a data augmentation that hides
    much of the overfitting.
  * data.train_subset: a few hundred images, so large models memorize them.
  * no early stopping and no EMA, and a cosine schedule to zero, so the final
    parameters sit in a minimum of the training loss; the best-validation
    checkpoint is still kept and reported (the early-stopped number).
The report's capacity.png plots final train and validation NLL (and the best
validation NLL) against the parameter count.

Full variant: mnist5k (28x28), 1,000 training images, 7 sizes (about 2 hours
on a 2-core CPU; minutes on a GPU). Smoke variant: sklearn digits (8x8),
150 training images, 6 sizes from 40 to 87k parameters (a few minutes on
a 2-core CPU).
"""
from experiments.configs import base


def get_sweep(smoke: bool = False):
    config = base.get_config()
    config.seed = 0
    config.data.binarization = "threshold"
    config.data.threshold = 0.5
    config.model.name = "pixelcnn"
    config.model.kernel_size = 3
    config.optim.name = "adam"
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.0
    config.train.early_stopping_patience = 0      # train to the end: the overfitting is the point
    config.train.num_samples = 16
    config.train.eval_batch_size = 500
    if smoke:
        config.data.name = "digits"                 # 8x8; 1,437 train (+ validation carve), 360 test
        config.data.train_subset = 150
        config.model.first_kernel_size = 5
        config.optim.learning_rate = 3e-3
        config.optim.warmup_steps = 20
        config.train.batch_size = 32
        config.train.num_steps = 500                # ~105 epochs of the subset
        config.train.log_every = 50
        config.train.eval_every = 50
        config.train.checkpoint_every = 100
        sizes = [(1, 1), (4, 1), (8, 2), (16, 3), (32, 3), (48, 4)]   # (num_features, num_layers)
    else:
        config.data.name = "mnist5k"                # 28x28; 3,600 train / 400 validation / 1,000 test
        config.data.train_subset = 1000
        config.model.first_kernel_size = 7
        config.optim.learning_rate = 1e-3
        config.optim.warmup_steps = 100
        config.train.batch_size = 32
        config.train.num_steps = 4000               # 128 epochs of the subset
        config.train.log_every = 100
        config.train.eval_every = 250
        config.train.checkpoint_every = 250
        sizes = [(2, 1), (4, 2), (8, 3), (16, 4), (32, 6), (64, 8), (128, 12)]
    members = [(f"f{f}_l{n}", {"model.num_features": f, "model.num_layers": n}) for f, n in sizes]
    return config, members

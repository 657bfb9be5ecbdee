"""PixelCNN++ (Salimans et al., 2017) on the full MNIST at 256 grey levels; a variant for CIFAR-10.

    python launch.py --config=experiments/configs/pixelcnn_pp.py --workdir=runs/pixelcnn_pp
    python launch.py --config=experiments/configs/pixelcnn_pp.py:cifar10 --workdir=runs/pixelcnn_pp_cifar10

Default: sized for this project's 2-core CPU. Two shifted streams of F = 32
maps over 28x28, 14x14 and 7x7, one gated ResNet block per scale in the up
pass (1, 2, 2 in the down pass: 8 blocks of each stream), a discretized
logistic mixture of 5 per pixel; tfds's mnist builder prepared offline from
the IDX files in ../shared/data/mnist, 50,000 train / 10,000 validation /
10,000 test. (experiments/configs/levels_table.py holds the 256-level
table's own row.)

`:cifar10`: the paper's CIFAR-10 model (2.92 bits/dim published, test set,
unconditional), for a GPU and tfds's cifar10 data (data.manual_dir or
data.data_dir, see dgm_jax/data/tfds_sets.py). Every difference from the
paper and its released code (openai/pixel-cnn, train.py) is commented.
`:cifar10_tiny`: the same config shrunk to seconds (tests/test_pixelcnn_pp.py
trains it on random 8-bit 32x32x3 images).
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config("pixelcnn_pp", "discretized_logistic_mixture")
    config.seed = 0

    config.data.name = "mnist"                       # tfds's mnist builder
    config.data.binarization = "none"                # keep the 256 grey levels, x = level / 255
    config.data.manual_dir = "../shared/data/mnist"  # the four IDX files
    config.data.validation_fraction = 1 / 6          # 10,000 of the 60,000 training images

    config.model.num_features = 32       # F: maps of each stream at every scale (the paper: 160)
    config.model.num_resnet = 1          # gated ResNet blocks per scale in the up pass (the paper: 5)
    config.model.dropout_rate = 0.0      # a few epochs of 50,000 images do not over-fit
    config.model.weight_norm = False     # plain parameters
    config.model.num_mixtures = 5        # M logistic components per pixel
    config.model.conditional = False

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 200
    config.optim.schedule = "cosine"
    config.optim.ema_decay = 0.999

    config.train.batch_size = 32
    config.train.num_steps = 5000        # 3.2 epochs of 50,000
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 3
    config.train.num_samples = 16        # the naive sampler: 784 forward passes

    return base.variant(config, variant, {"cifar10": cifar10, "cifar10_tiny": cifar10_tiny}, tiny_fn=_tiny)


def _tiny(config):
    """base.tiny (8x8 digits at 17 grey levels, F = 8) with one block per scale and 3 components."""
    config.model.num_resnet = 1
    config.model.num_mixtures = 3


def cifar10(config):
    """The paper's CIFAR-10 sizes. Every difference from it and its released code is commented."""
    config.data.name = "cifar10"
    config.data.binarization = "none"                # 256 levels per sub-pixel
    config.data.manual_dir = ""
    config.data.validation_fraction = 0.02           # 1,000 of the 50,000 training images for selection (the
                                                     # paper trains on all 50,000 and reports test)
    config.model.num_features = 160                  # the paper: 160 filters
    config.model.num_resnet = 5                      # the paper: 5 gated ResNet blocks per scale
    config.model.dropout_rate = 0.5                  # the paper: dropout 0.5 in every block
    config.model.weight_norm = True                  # the paper: weight normalization ...
    config.model.data_init_examples = 100            # ... initialized from the data (its code: 100 images)
    config.model.num_mixtures = 10                   # the paper: 10 logistic components
    config.model.conditional = False                 # the 2.92 is unconditional
    # Differences in the network (dgm_jax/models/pixelcnn_pp.py): the resolution changes are
    # space-to-depth / depth-to-space with stride-1 convolutions (the same receptive fields as
    # the paper's strided and transposed shifted convolutions, the u stream's one column wider);
    # the output layer reads concat_elu(ul) (the paper: elu); the mixture has 10M numbers per
    # pixel, as the paper's, laid out over the 3 sub-pixels (dgm_jax/observations/logistic_mixture.py).

    config.optim.name = "adam"                       # the issue names Adamax; the released code steps with
    config.optim.b1 = 0.95                           # Adam, b1 = 0.95 and b2 = 0.9995 (train.py's adam_updates
    config.optim.b2 = 0.9995                         # call); dgm_jax has no Adamax
    config.optim.learning_rate = 1e-3                # the paper's base step
    # Difference: its code decays the step exponentially, x 0.999995 a step (x 0.082 after 500,000
    # steps); dgm_jax has no exponential schedule, so a cosine from 1e-3 to the same final step.
    config.optim.schedule = "cosine"
    config.optim.final_lr_fraction = 0.082
    config.optim.warmup_steps = 0                    # none, as its code (the data-dependent init starts it well)
    config.optim.grad_clip_norm = 0.0                # its code does not clip
    config.optim.ema_decay = 0.9995                  # the paper's Polyak decay (evaluation and samples)

    config.train.batch_size = 128                    # 16 per GPU on 8 GPUs (a stored version of its train.py
                                                     # defaults to 12 per GPU); split over the local devices
    config.train.eval_batch_size = 256
    config.train.num_steps = 500_000                 # 1,300 epochs of 49,000 (the paper does not state its length;
                                                     # its README: about 5 days on 8 GPUs to reach 2.92)
    config.train.log_every = 500
    config.train.eval_every = 10_000
    config.train.checkpoint_every = 10_000
    config.train.early_stopping_patience = 0         # train to the end; the best-validation checkpoint is kept
    config.train.num_samples = 16                    # 16 x 3072 sub-pixels, the naive sampler


def cifar10_tiny(config):
    """The cifar10 config with its structure (3 channels, mixture of 10, dropout, weight norm with
    data-dependent init) at seconds' size."""
    cifar10(config)
    config.model.num_features = 8
    config.model.num_resnet = 0                      # the down pass's blocks only (tests/test_pixelcnn_pp.py
                                                     # checks the up pass's on small images)
    config.model.data_init_examples = 4
    config.train.batch_size = 4
    config.train.eval_batch_size = 8
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.eval_every = 2
    config.train.checkpoint_every = 2
    config.train.num_samples = 0
    config.train.progress_bar = False

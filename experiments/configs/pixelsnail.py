"""PixelSNAIL (Chen et al., 2018) on statically binarized MNIST; variants for 256-level MNIST and CIFAR-10.

    python launch.py --config=experiments/configs/pixelsnail.py --workdir=runs/pixelsnail
    python launch.py --config=experiments/configs/pixelsnail.py:mnist256 --workdir=runs/pixelsnail256
    python launch.py --config=experiments/configs/pixelsnail.py:cifar10 --workdir=runs/pixelsnail_cifar10

Default: sized for this project's 2-core CPU. 4 blocks of 2 gated residual
layers (causal 2x2 convolutions) and one causal attention layer each, F = 32
maps, one head of 8 key and 16 value channels; 119,009 parameters. Per 28x28
image, forward: a residual layer's two 2x2 convolutions (F -> F, F -> 2F)
19 MFLOP; an attention layer's logits and weighted sums over the earlier
pixels (computed as the full 784 x 784 products, masked) 30 MFLOP; its 1x1
layers 7 MFLOP: 0.32 GFLOP forward, 0.97 with the backward pass (XLA's
count), ~31 GFLOP a step of 32 images (the attention, which does not shrink
with F, is 40% of it).

`:mnist256`: the same network on the full MNIST at 256 grey levels (tfds's
builder on ../shared/data/mnist), a discretized logistic mixture of 5.
(experiments/configs/levels_table.py holds the 256-level table's own row.)

`:cifar10`: the paper's CIFAR-10 model (2.85 bits/dim published; its code's
README command: model h12_noup_smallkey), for a GPU and tfds's cifar10 data
(data.data_dir, see dgm_jax/data/tfds_sets.py). `:cifar10_tiny`: the same
config shrunk to seconds (tests/test_pixelsnail.py trains it on random 8-bit
32x32x3 images).
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config("pixelsnail")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_features = 32       # F: maps of every layer
    config.model.num_blocks = 4          # blocks: residual layers, then one causal attention layer
    config.model.num_res_per_block = 2   # gated residual layers (causal 2x2 convolutions) per block
    config.model.num_heads = 1           # attention heads (the paper: 1)
    config.model.key_features = 8        # query / key channels per head
    config.model.value_features = 16     # value channels per head (the paper: F / 2)
    config.model.dropout_rate = 0.0      # no dropout: a few epochs of 50,000 images do not over-fit
    config.model.conditional = False

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3    # the paper's Adam step
    config.optim.warmup_steps = 200
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 10.0   # guards the first steps' large gradients (784 terms a image)
    config.optim.ema_decay = 0.999

    config.train.batch_size = 32
    config.train.num_steps = 5000        # 3.2 epochs of 50,000
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 3
    config.train.num_samples = 16

    return base.variant(config, variant, {"mnist256": mnist256, "cifar10": cifar10, "cifar10_tiny": cifar10_tiny})




def mnist256(config):
    """The full MNIST at 256 levels, logistic-mixture outputs (validation carved as the README says)."""
    base.with_model(config, "pixelsnail", "discretized_logistic_mixture")
    config.data.name = "mnist"                       # tfds's mnist builder
    config.data.binarization = "none"                # x = level / 255
    config.data.manual_dir = "../shared/data/mnist"  # the four IDX files
    config.data.validation_fraction = 1 / 6          # 10,000 of the 60,000 training images
    config.model.num_mixtures = 5                    # M logistic components per pixel


def cifar10(config):
    """The paper's CIFAR-10 sizes. Every difference from its code is commented."""
    base.with_model(config, "pixelsnail", "discretized_logistic_mixture")
    config.data.name = "cifar10"
    config.data.binarization = "none"                # 256 levels per sub-pixel
    config.data.manual_dir = ""
    config.data.validation_fraction = 0.02           # 1,000 of the 50,000 training images for selection (the
                                                     # paper trains on all 50,000 and reports test)
    config.model.num_features = 258                  # the paper: 256 filters. Difference forced by the sub-pixel
                                                     # groups: F must split into 3 equal groups (R, G, B), and
                                                     # 258 = 3 x 86 is the nearest multiple of 3 above 256
    config.model.num_blocks = 12                     # the paper: 12 blocks (h12) ...
    config.model.num_res_per_block = 4               # ... of 4 residual layers (nr_resnet=4), then attention
    config.model.num_heads = 1                       # one attention head ...
    config.model.key_features = 16                   # ... of 16 query/key channels (the "smallkey" model) ...
    config.model.value_features = 128                # ... and F / 2 = 128 value channels
    # Difference: each of the 3 sub-pixel groups has its own queries (R, G, B order inside a pixel,
    # dgm_jax/models/pixelsnail.py), so the attention costs 3x the paper's; its code predicts whole
    # pixels and couples R, G, B only inside the logistic mixture (which ours does too).
    config.model.key_value_unit = True               # its code: the keys' and values' inputs [x, u, background]
                                                     # through a 1x1 gated residual unit before their projection
    # Difference: the queries are a single 1x1 projection (its code passes their inputs through
    # such a unit too; ours would need sub-pixel masks inside it).
    config.model.dropout_rate = 0.5                  # the paper: dropout 0.5 in every gated residual unit
    config.model.num_mixtures = 10                   # the paper: 10 logistic components
    config.model.conditional = False                 # the 2.85 is unconditional

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3                # the paper's base step
    # Difference: its code decays the step exponentially, x 0.999998 a step; we decay by a cosine to 0.
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 2000                 # difference: a linear warm-up (its code has none but a
                                                     # data-dependent init of weight-normalized layers, which
                                                     # dgm_jax's PixelSNAIL does not have)
    config.optim.grad_clip_norm = 0.0                # its code does not clip
    config.optim.ema_decay = 0.9995                  # the paper's Polyak decay (evaluation and samples)

    config.train.batch_size = 32                     # its code: 8 per GPU on several GPUs (count not stated)
    config.train.eval_batch_size = 64
    config.train.num_steps = 500_000                 # 320 epochs (the paper does not state its length)
    config.train.log_every = 500
    config.train.eval_every = 10_000
    config.train.checkpoint_every = 10_000
    config.train.early_stopping_patience = 0         # train to the end; the best-validation checkpoint is kept
    config.train.num_samples = 16                    # 16 x 3072 sub-pixels, the cached sampler


def cifar10_tiny(config):
    """The cifar10 config with its structure (3 channels, mixture of 10, dropout) at seconds' size."""
    cifar10(config)
    config.model.num_features = 6                    # 2 maps per sub-pixel group
    config.model.num_blocks = 1
    config.model.num_res_per_block = 1
    config.model.key_features = 4
    config.model.value_features = 4
    config.train.batch_size = 4
    config.train.eval_batch_size = 8
    config.train.num_steps = 2
    config.train.log_every = 1
    config.train.eval_every = 2
    config.train.checkpoint_every = 2
    config.train.num_samples = 0
    config.train.progress_bar = False
    config.optim.warmup_steps = 0                    # the first step already moves the parameters

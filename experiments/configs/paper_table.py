"""The rows of the binarized-MNIST table (experiments/paper_table.py), one variant per row.

    python experiments/paper_table.py --workdir=runs/paper_table          # every row
    python launch.py --config=experiments/configs/paper_table.py:nade --workdir=runs/nade   # one row

Data: the statically binarized MNIST of Larochelle & Murray (2011), 50,000 / 10,000
/ 10,000, test NLL in nats per image of the best-validation checkpoint. Every budget
is sized for a 2-core CPU (each row <= 40 minutes there); on an accelerator the same
rows finish in minutes. Selection is on the validation split only: early stopping
with patience and the best-validation checkpoint; the test split is read once, at
the end.

Rows (the published figure each is set beside is in experiments/paper_table.py):
  bernoulli     independent pixels; its MLE is the training pixel means (closed form).
  fvsbn         784 logistic regressions, Adam + EMA, an L1 prior on the weights, cosine decay.
  nade          H = 500, fixed raster order, sigmoid hidden units, Adam + cosine.
  made_1mask    1 hidden layer, 1 fixed mask, with the masked direct input -> output
                connection that the MADE authors' code enables for its MNIST runs.
  made_32masks  2 hidden layers, 32 masks (connectivity-agnostic training, each step
                one mask), evaluated as the equal mixture of the 32 masks' models.
  gated_pixelcnn  beyond the papers: the Gated PixelCNN, a few epochs on the CPU.
The MADE authors' command for their best MNIST result uses 2 hidden layers of 8,000
ReLU units; on 2 cores that is about 20x over the row budget, so the layers here
are narrower (the number of masks, the ensemble evaluation and the direct
connection are as in the paper).
"""
from __future__ import annotations

import ml_collections

from experiments.configs import base

ROWS = ("bernoulli", "fvsbn", "nade", "made_1mask", "made_32masks", "gated_pixelcnn")
SHARED_BINARIZED_MNIST = "../shared/data/binarized_mnist"


def _common(model: str) -> ml_collections.ConfigDict:
    config = base.get_config(model)
    config.seed = 0
    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = SHARED_BINARIZED_MNIST
    config.train.batch_size = 100
    config.train.eval_batch_size = 1000
    config.train.num_samples = 64
    config.optim.name = "adam"
    config.optim.schedule = "cosine"
    # One CPU device: XLA splits these models' large products over the cores itself (FVSBN ran
    # 1.6x slower as two data-parallel devices); NADE's row overrides it (see nade()).
    config.train.cpu_devices = 1
    return config


def bernoulli() -> ml_collections.ConfigDict:
    # A concave problem with a closed-form optimum: what stands between a trained model and
    # the MLE is the optimizer. Batches of 1,000, Adam at a large step (1.0: the logit of a
    # pixel that is almost never on has to travel to about -12) decayed to zero by the cosine,
    # and the EMA of the iterates reach the optimum to within 1e-4 nats on validation (a
    # step of 0.3 stopped 0.0008 above, 3e-2 with batches of 100, 0.006 above). The weak
    # Gaussian prior (L2 3e-7 per image) keeps the logit of a pixel never on in training
    # finite (about -12.5, p ~ 4e-6, near the MLE's clip at 1/(2N)); its strength is the
    # best on validation of 1e-7 .. 1e-5 at the exact optimum (206.3208 nats).
    config = _common("bernoulli")
    config.train.batch_size = 1000
    config.optim.learning_rate = 1.0
    config.optim.warmup_steps = 0
    config.optim.ema_decay = 0.999
    config.penalties = (("l2", 3e-7, "all"),)
    config.train.num_steps = 5_000       # 100 epochs
    config.train.log_every = 250
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    return config


def fvsbn() -> ml_collections.ConfigDict:
    # Concave too, but 308k weights for 50k images: the prior on the weights is what keeps the
    # test NLL down. A Laplace prior (L1) beats a Gaussian one (L2): most pixels say nothing
    # about a given later pixel, and L1 lets those weights go to zero. Chosen on validation
    # (best validation NLL over training; 60 epochs at a step of 2e-3, 100 at 1e-2):
    #   L2 3e-5 (the exact optimum, by L-BFGS): 98.95      L2 1e-4: 98.96
    #   L1 1e-5: 98.86   3e-5: 98.71   1e-4: 98.60   2e-4: 98.72   3e-4: 98.93   (step 2e-3, 60 epochs)
    #   L1 7e-5: 98.52   1e-4: 98.50 (step 5e-3) / 98.496 (step 1e-2, this row)   1.5e-4: 98.52 (5e-3)
    config = _common("fvsbn")
    config.optim.learning_rate = 1e-2
    config.optim.ema_decay = 0.999
    config.optim.warmup_steps = 200
    config.penalties = (("l1", 1e-4, "kernels"),)
    config.train.num_steps = 50_000      # 100 epochs
    config.train.log_every = 250
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 5
    return config


def nade() -> ml_collections.ConfigDict:
    config = _common("nade")
    config.model.num_hidden = 500
    config.train.cpu_devices = -1        # one per core: NADE's many small operations (dgm_jax/xla_cpu.py)
    config.train.parallelism = "shard_map"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.grad_clip_norm = 10.0   # the sum over 784 conditionals gives large early gradients
    config.optim.ema_decay = 0.999
    config.train.num_steps = 35_000      # 70 epochs
    config.train.log_every = 250
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 6
    return config


def _made(num_hidden: int, num_hidden_layers: int, num_masks: int) -> ml_collections.ConfigDict:
    """MADE with the masked direct input -> output connection, evaluated over all its masks."""
    config = _common("made")
    config.model.num_hidden = num_hidden
    config.model.num_hidden_layers = num_hidden_layers
    config.model.num_masks = num_masks
    config.model.num_eval_masks = num_masks
    config.model.direct_connection = True
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999
    config.train.log_every = 250
    return config


def made_1mask() -> ml_collections.ConfigDict:
    # 4,000 units overfit after ~12 epochs without a prior (a 25k-step cosine had its best
    # validation at step 6,000, test 88.67). The prior, chosen on validation as for FVSBN
    # (whose Laplace prior won; the direct connection is an FVSBN): L2 3e-5 on the kernels
    # 89.34; L1 1e-5 89.04; L1 3e-5 88.53 (this row).
    config = _made(num_hidden=4000, num_hidden_layers=1, num_masks=1)
    config.penalties = (("l1", 3e-5, "kernels"),)
    config.train.num_steps = 10_000      # 20 epochs, the cosine reaching zero at the end
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 5
    return config


def made_32masks() -> ml_collections.ConfigDict:
    # Each step trains one of the 32 masks, so this row needs many more epochs than the
    # 1-mask one; 2 x 2,000 units (the authors' 2 x 8,000 is ~16x the compute) and the 1-mask
    # row's L1 prior, for as many epochs as fit the 40 minutes. Measured: under-fitted, not
    # over-fitted. With the prior, 55 epochs: validation 94.74, test 93.74 (2026-12-02); an
    # earlier run without it, 40 epochs: validation 93.3, test 92.35. Each mask sees under
    # 2 epochs; the paper's 86.64 needs the authors' 2 x 8,000 and far more steps than fit here.
    config = _made(num_hidden=2000, num_hidden_layers=2, num_masks=32)
    config.penalties = (("l1", 3e-5, "kernels"),)
    config.train.num_steps = 27_500      # 55 epochs: each mask sees 1/32 of the steps
    config.train.eval_every = 5000       # a 32-mask validation pass costs ~32 forward passes
    config.train.checkpoint_every = 2500
    config.train.early_stopping_patience = 3
    return config


def gated_pixelcnn() -> ml_collections.ConfigDict:
    # Beyond the NADE/MADE papers: dgm_jax's own Gated PixelCNN (van den Oord et al., 2016b),
    # which no table of statically binarized MNIST lists; its anchor is the original
    # PixelCNN's 81.30 in the PixelRNN paper's table. Sized for the 2-core CPU budget: a
    # few epochs of a small stack, so it trains far from convergence.
    config = _common("gated_pixelcnn")
    config.model.num_layers = GATED_LAYERS
    config.model.num_features = GATED_FEATURES
    config.model.head_features = 32
    config.train.batch_size = 64
    config.train.eval_batch_size = 500
    config.optim.learning_rate = 2e-3
    config.optim.warmup_steps = 200
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999
    config.train.num_steps = GATED_STEPS
    config.train.log_every = 100
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 3
    return config


GATED_LAYERS, GATED_FEATURES, GATED_STEPS = 5, 32, 5000

_BUILDERS = {name: globals()[name] for name in ROWS}


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Seconds-long budgets for the table's pipeline test: sklearn's 8x8 digits (embedded,
    binarized by threshold) instead of binarized MNIST, small layers, a few steps."""
    config.data.name = "digits"
    config.data.binarization = "threshold"
    config.data.manual_dir = ""
    config.data.train_subset = 500
    config.train.batch_size = min(config.train.batch_size, 100)
    config.train.eval_batch_size = 500
    for key, value in {"num_hidden": 16, "num_masks": min(config.model.get("num_masks", 1), 2),
                       "num_eval_masks": min(config.model.get("num_eval_masks", 1), 2),
                       "num_layers": 1, "num_features": 8, "head_features": 8, "first_kernel_size": 3}.items():
        if key in config.model:
            config.model[key] = value
    config.train.num_steps = 10
    config.train.log_every = 5
    config.train.eval_every = 10
    config.train.checkpoint_every = 10
    config.train.num_samples = 8
    config.train.progress_bar = False
    config.optim.warmup_steps = 2
    return config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """variant: a row name, optionally followed by ',smoke' (e.g. 'nade,smoke')."""
    row, _, extra = variant.partition(",")
    if row not in _BUILDERS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}")
    if extra not in ("", "smoke"):
        raise ValueError(f"unknown option {extra!r} after the row name; valid: 'smoke'")
    config = _BUILDERS[row]()
    return smoke(config) if extra == "smoke" else config

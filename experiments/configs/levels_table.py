"""The rows of the 256-level table (experiments/levels_table.py): one variant and one small grid of
candidates per row.

    python experiments/levels_table.py --workdir=runs/levels_table                  # every row
    python launch.py --config=experiments/configs/levels_table.py:gated_logistic --workdir=runs/gl   # one row's base

MNIST section: the full MNIST at 256 grey levels, tfds's official builder prepared offline from
the IDX files in ../shared/data/mnist; 50,000 train / 10,000 validation (carved from the 60,000
training images, validation_fraction = 1/6) / the official 10,000 test. Colour section:
photo_patches, 32x32 RGB patches of scikit-learn's two photographs (421 train / 47 validation
/ 52 test, labelled by photograph), 256 levels per sub-pixel. Every model is class-conditional
(p(x | y), y one-hot); the table reports bits/dim given the true class and the marginal bits/dim
-log2 sum_y p(y) p(x | y) / D (p(y): the training class frequencies), the one comparable with
unconditional models.

Every budget is sized for this project's 2-core CPU: a row's candidates together, with their
validation passes, samples and the one test scoring, take at most 60 minutes there. Selection
is on the validation split only (early stopping, the best-validation checkpoint, the candidate
of lowest validation NLL; all in <workdir>/<row>/tried.csv); the test split is scored once, for
the chosen checkpoint.

Rows:
  gated_categorical   Gated PixelCNN, a 256-way softmax per pixel (the PixelRNN papers' output).
  gated_logistic      the same network with a discretized logistic mixture (PixelCNN++'s output).
  pixelcnn_pp         PixelCNN++ (two shifted streams over three scales), logistic mixture.
  pixelsnail          PixelSNAIL (causal convolutions + causal self-attention), logistic mixture.
  colour_gated        Gated PixelCNN on the colour patches, logistic mixture (R, G, B in a pixel).
  colour_pixelcnn_pp  PixelCNN++ on the colour patches, its channel-coupled logistic mixture.
A row whose model is not in dgm_jax.models.REGISTRY is listed in ALL_ROWS but not in ROWS; the
table says so and trains the others.
"""
from __future__ import annotations

import ml_collections

from experiments.configs import base

SHARED_MNIST = "../shared/data/mnist"
ALL_ROWS = ("gated_categorical", "gated_logistic", "pixelcnn_pp", "pixelsnail", "colour_gated", "colour_pixelcnn_pp")
SECTION = {"gated_categorical": "mnist", "gated_logistic": "mnist", "pixelcnn_pp": "mnist", "pixelsnail": "mnist",
           "colour_gated": "colour", "colour_pixelcnn_pp": "colour"}
MODEL = {"gated_categorical": "gated_pixelcnn", "gated_logistic": "gated_pixelcnn", "pixelcnn_pp": "pixelcnn_pp",
         "pixelsnail": "pixelsnail", "colour_gated": "gated_pixelcnn", "colour_pixelcnn_pp": "pixelcnn_pp"}


def registered(row: str) -> bool:
    """Whether the row's model is in the registry (the other helpers' models may not be yet)."""
    from dgm_jax import models
    return MODEL[row] in models.REGISTRY


ROWS = tuple(r for r in ALL_ROWS if registered(r))


def _mnist(model: str, likelihood: str) -> ml_collections.ConfigDict:
    """The MNIST section's shared settings."""
    config = base.get_config(model, likelihood)
    config.seed = 0                                  # one root key for init, batches and samples
    config.data.name = "mnist"                       # tfds's mnist builder
    config.data.binarization = "none"                # keep the 256 grey levels, x = level / 255
    config.data.manual_dir = SHARED_MNIST            # the four IDX files (the table passes an absolute path)
    config.data.validation_fraction = 1 / 6          # 10,000 of the 60,000 training images
    config.model.conditional = True                  # p(x | y), y the one-hot digit class
    config.train.batch_size = 64                     # images per step
    config.train.eval_batch_size = 500               # images per validation / test batch
    config.train.num_samples = 10                    # samples.png (of the marginal); samples_by_class.png: 8 per class
    config.train.log_every = 100                     # steps between train-metric fetches
    config.train.cpu_devices = 1                     # one CPU device; XLA uses both cores inside it
    config.train.early_stopping_patience = 3         # validations without improvement before stopping
    config.optim.name = "adam"                       # Adam, as the Gated PixelCNN and PixelCNN++ papers
    config.optim.schedule = "cosine"                 # decayed to zero at num_steps
    config.optim.grad_clip_norm = 10.0               # guards the first steps' large gradients (784 terms);
                                                     # the logistic-mixture rows (gated_logistic, pixelcnn_pp,
                                                     # pixelsnail) turn it off; the categorical row keeps it
                                                     # (see gated_logistic and gated_categorical)
    config.optim.ema_decay = 0.999                   # evaluation and samples use the EMA of the parameters
    return config


def _gated(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The Gated PixelCNN of the MNIST rows (both likelihoods): the paper_table row's size."""
    config.model.num_layers = 5                      # gated layers after the first; receptive field 1 + 3 + 5 rows
    config.model.num_features = 32                   # F maps per stack
    config.model.kernel_size = 3                     # vertical 2x3, horizontal 1x2
    config.model.first_kernel_size = 7               # first layer: vertical 4x7, horizontal 1x4
    config.model.head_features = 64                  # 1x1 ReLU layer before the outputs (256 logits / 3M terms)
    config.optim.learning_rate = 2e-3                # peak step
    config.optim.warmup_steps = 200                  # linear warm-up
    config.train.eval_every = 500                    # a validation pass every 0.64 epochs (~26 s)
    config.train.checkpoint_every = 500              # also at every validation and at the end
    return config


def gated_categorical() -> ml_collections.ConfigDict:
    config = _gated(_mnist("gated_pixelcnn", "categorical"))   # softmax over the 256 levels of each pixel
    # Keeps the clip at 10 (its gradient norm ran at 95-1,016, median 172, so every step is rescaled):
    # without it (2026-12-07, 2,500 steps, stopped at step 1,200) validation was 648.2 and 626.1 nats at
    # steps 500 and 1,000 against the clipped run's 632.6 and 612.7, worse although its shorter cosine
    # schedule had the smaller step by then. Unlike the logistic-mixture rows, this row did better with
    # the clip (one try, one seed).
    config.train.num_steps = GATED_CATEGORICAL_STEPS # sized from its step time (see GATED_CATEGORICAL_STEPS)
    config.train.eval_every = 900                    # five validation passes (~20 s each)
    return config


def gated_logistic() -> ml_collections.ConfigDict:
    config = _gated(_mnist("gated_pixelcnn", "discretized_logistic_mixture"))
    config.model.num_mixtures = 5                    # M logistic components per pixel (15 outputs a pixel)
    config.optim.grad_clip_norm = 0.0                # no clipping: the mixture's gradient norm runs at 1e3-3e4
                                                     # (scales near e^-7), so a clip at 10 scaled every step
                                                     # by the spikes; off, 400 steps reached validation 1.2907
                                                     # bits/dim against 1.2984 (2026-12-07, one seed each)
    config.train.num_steps = GATED_LOGISTIC_STEPS    # sized from its step time (see GATED_LOGISTIC_STEPS)
    config.train.eval_every = 700                    # five validation passes
    return config


def pixelcnn_pp() -> ml_collections.ConfigDict:
    config = _mnist("pixelcnn_pp", "discretized_logistic_mixture")
    config.model.num_features = 32                   # F maps of each stream at 28x28, 14x14 and 7x7 (paper: 160)
    config.model.num_resnet = 1                      # gated ResNet blocks per scale in the up pass (paper: 5); 2 cost
                                                     # 1.6x the FLOPs per image: too few epochs in the hour
    config.model.dropout_rate = 0.0                  # MNIST's 50,000 images do not over-fit in these few epochs
    config.model.weight_norm = False                 # plain parameters (Adam needs no reparametrization here)
    config.model.num_mixtures = 5                    # M logistic components per pixel
    config.optim.learning_rate = 1e-3                # peak step
    config.optim.warmup_steps = 200                  # linear warm-up
    config.train.batch_size = 32                     # images per step (39.6 GFLOP a step)
    config.optim.grad_clip_norm = 0.0                # no clipping, as the logistic-mixture Gated row (its
                                                     # gradient norm ran at 3e3-5e4 under the clip at 10)
    config.train.num_steps = PIXELCNN_PP_STEPS       # sized from its step time (see PIXELCNN_PP_STEPS)
    config.train.eval_every = 950                    # validation passes (~45 s each): four
    config.train.checkpoint_every = 475              # checkpoints (also at every validation and the end)
    return config


def pixelsnail() -> ml_collections.ConfigDict:
    config = _mnist("pixelsnail", "discretized_logistic_mixture")
    config.model.num_features = 32                   # F maps of every layer
    config.model.num_blocks = 2                      # residual blocks, each with one causal attention layer
    config.model.num_res_per_block = 2               # gated residual layers (causal 2x2 convolutions) per block
    config.model.num_heads = 1                       # attention heads
    config.model.key_features = 8                    # query / key channels per head
    config.model.value_features = 16                 # value channels per head
    config.model.key_value_unit = True               # keys from a gated unit of [x', u, pos]: nonlinear in the
                                                     # position, so a query can single out the pixels near it
                                                     # (the 2x2 convolutions see only the quadrant above-left);
                                                     # at 2.9 epochs it moved the row little (README)
    config.model.conv_width = 3                      # 2x3 causal convolutions (not the paper's 2x2): they also
                                                     # read the pixel above-right, so the convolutions follow a
                                                     # stroke running down-left (README)
    config.model.dropout_rate = 0.0                  # no dropout (few epochs of 50,000 images)
    config.model.num_mixtures = 5                    # M logistic components per pixel
    config.optim.learning_rate = 1e-3                # peak step
    config.optim.warmup_steps = 200                  # linear warm-up
    config.optim.grad_clip_norm = 0.0                # no clipping, as the other logistic-mixture rows (its
                                                     # gradient norm ran at 5e3-1e4 under the clip at 10)
    config.train.num_steps = PIXELSNAIL_STEPS        # sized from its step time (see PIXELSNAIL_STEPS)
    config.train.eval_every = 900                    # validation passes (~40 s each): four
    config.train.checkpoint_every = 450              # checkpoints (also at every validation and the end)
    return config


def _colour(model: str) -> ml_collections.ConfigDict:
    """The colour section's shared settings: 421 training patches, so many epochs and early stopping."""
    config = base.get_config(model, "discretized_logistic_mixture")
    config.seed = 0                                  # one root key
    config.data.name = "photo_patches"               # patches of scikit-learn's two photographs
    config.data.patch_size = 32                      # 32x32 RGB, 520 patches
    config.data.binarization = "none"                # 256 levels per sub-pixel
    config.model.conditional = True                  # p(x | photograph)
    config.model.num_mixtures = 5                    # M logistic components per pixel
    config.train.batch_size = 32                     # patches per step
    config.train.eval_batch_size = 64                # the 47 validation / 52 test patches in one batch
    config.train.num_samples = 8                     # samples.png; samples_by_class.png: 8 per photograph
    config.train.log_every = 50                      # steps between train-metric fetches
    config.train.eval_every = 100                    # a validation pass every 7.6 epochs (cheap: 47 patches)
    config.train.checkpoint_every = 100              # checkpoints at the validation passes
    config.train.early_stopping_patience = 4         # 30 epochs without improvement stop the run
    config.train.cpu_devices = 1                     # one CPU device
    config.optim.name = "adam"                       # Adam
    config.optim.schedule = "cosine"                 # decayed to zero at num_steps
    config.optim.warmup_steps = 100                  # linear warm-up
    config.optim.grad_clip_norm = 10.0               # clip the global gradient norm
    config.optim.ema_decay = 0.999                   # EMA parameters for evaluation and samples
    return config


def colour_gated() -> ml_collections.ConfigDict:
    config = _colour("gated_pixelcnn")
    config.model.num_layers = 5                      # gated layers after the first
    config.model.num_features = 48                   # F maps per stack, 16 per colour channel
    config.model.kernel_size = 3                     # vertical 2x3, horizontal 1x2
    config.model.first_kernel_size = 7               # first layer 4x7 / 1x4
    config.model.head_features = 48                  # 1x1 ReLU layer before the outputs (divisible by 3)
    config.optim.learning_rate = 2e-3                # peak step
    config.train.num_steps = COLOUR_STEPS            # at most this many (early stopping usually ends it)
    return config


def colour_pixelcnn_pp() -> ml_collections.ConfigDict:
    config = _colour("pixelcnn_pp")
    config.model.num_features = 32                   # F maps per stream and scale
    config.model.num_resnet = 1                      # gated ResNet blocks per scale in the up pass
    config.model.dropout_rate = 0.5                  # the paper's dropout: 421 patches over-fit fast
    config.model.weight_norm = False                 # plain parameters
    config.optim.learning_rate = 1e-3                # peak step
    config.train.num_steps = COLOUR_STEPS            # at most this many
    return config


# Step budgets, sized so that the whole table (four MNIST rows, two colour rows of two candidates)
# finishes in one ~2-hour sitting on the 2-core CPU, not the 60 minutes a row may take: a fresh
# machine keeps no runs/ between sessions. Quiet step times and evaluation rates measured by
# experiments/benchmark.py (--steps=8..10 --sampling=false) on the 2-core Intel Xeon (AVX-512, KVM),
# 2026-12-04: gated 0.76 s a step at batch 64 and 383 images/s evaluated; pixelcnn_pp 0.59 s at
# batch 32, 218 images/s; pixelsnail 0.83 s at batch 64, 207 images/s; colour_gated 0.64 s and
# colour_pixelcnn_pp 0.83 s at batch 32. Fixed costs per MNIST row: the test scoring is 11 passes
# over 10,000 images (given the class, and the 10 classes of the marginal: 5-9 minutes) and the two
# sample grids (90 images, 784 sequential passes without a cached sampler: up to ~5 minutes).
# The logistic row has its hour too: at 1,000 steps (2026-12-06, AMD EPYC, 14 min 8 s in all) its
# grid drew strokes. 3,000 steps (3.8 epochs) take ~30 minutes at the categorical row's 0.59 s a
# step and ~42 at the 0.83 s of a slow day; with 6 validations (~3 minutes) and the test scoring
# and grids (5-9) the row stays inside the hour on either. Trained on 2026-12-07 (AMD EPYC; beside
# it only tests at nice 19 for ~15 of its minutes): its loop ran at 0.77 s a step, the test scoring
# took 5.6 minutes, 44 min 54 s in all. Retrained without gradient clipping the same afternoon (beside
# it tests at nice 19 and ~6 minutes of compile experiments at normal priority): its loop ran at ~0.9 s
# a step, the test scoring took 7.0 minutes, 57 min 7 s in all: inside the hour, with little to spare.
# With huge pages for XLA's buffers (dgm_jax/huge_pages.py; 2026-12-08, AMD EPYC, quiet) the categorical
# row's loop ran at ~0.45 s a step beside this row's ~0.42 expected (0.93x of it on 12-07): 3,500
# steps (4.5 epochs, ~25 minutes), 5 validations, the scoring (~4) and the grids take ~35 minutes.
# Trained so (2026-12-08, AMD EPYC, quiet): its loop ran at ~0.39 s a step, the test scoring took 3.4
# minutes, 27 min 49 s in all.
GATED_LOGISTIC_STEPS = 3500
# The categorical row has its hour: at 1,000 steps (2026-12-06, AMD EPYC: 0.59 s a step in its loop,
# a validation ~30 s, the test scoring and grids 5 minutes, 16 min 41 s in all) its grid drew strokes
# and only a few digits. 3,500 steps (4.5 epochs) take ~38 minutes at that speed and ~50 at the
# 1.3x slower speed this machine sometimes runs at, with 7 validations and the scoring. Trained on
# 2026-12-07 (AMD EPYC): its loop ran at 0.83 s a step, 1.4x, with tests sharing the cores for its first
# 12 minutes: 62 min 56 s in all, over the hour. On a machine that slow a retraining needs ~3,100
# (2026-12-07 evening, nothing else running: its loop ran at 1.02 s a step, where ~2,500 fit the hour).
# With huge pages for XLA's buffers (dgm_jax/huge_pages.py; 2026-12-07 late evening, AMD EPYC, quiet,
# benchmark.py): 154 train / 536 evaluation images/s (0.42 s a step; the loop runs ~1.2x slower than
# the benchmark, as PixelSNAIL's did beside it that night): 4,500 steps (5.8 epochs, ~38 minutes),
# 5 validations, the scoring (~4) and the grids take ~45 minutes, inside the hour on a day ~1.3x slower.
# Trained so (2026-12-07/08, AMD EPYC, quiet): its loop ran at ~0.45 s a step, the test scoring took
# 4.0 minutes, 38 min 59 s in all.
GATED_CATEGORICAL_STEPS = 4500
# PixelCNN++'s row has its hour: at 1,000 steps (2026-12-04, AMD EPYC: 0.60 s a step in its loop, a
# validation 54 s, the test scoring and grids ~13 minutes, 25 min 56 s in all) its grid drew thick
# strokes that seldom follow the class. On a slow day (2026-12-07: this machine's loops ran 1.4x
# slower) a step takes ~0.85 s, a validation ~76 s and the scoring ~18 minutes, so 2,200 steps
# (1.4 epochs, ~31 minutes) and 2 validations fit the hour with a few minutes to spare. Retrained
# without gradient clipping on 2026-12-07 (AMD EPYC; a test run at nice 19 beside it for its first
# ~6 minutes): its loop ran at ~1.0 s a step, training 44 min 35 s, the test scoring ~14 minutes,
# 58 min 31 s in all: inside the hour, barely; a slower day needs fewer steps.
# With huge pages for XLA's buffers (dgm_jax/huge_pages.py; 2026-12-08, 2-core Intel Xeon, quiet,
# benchmark.py --steps=10): 0.44 s a step at batch 32 and 186-237 evaluation images/s, so a loop step
# of ~0.52 s (the loops run ~1.2x the benchmark), a validation ~45 s, the test scoring ~8-10 minutes:
# 3,800 steps (2.4 epochs, ~33 minutes), 4 validations and the scoring take ~50 minutes. Trained so
# (2026-12-08, Intel Xeon; tests at nice 19 beside it for ~10 of its first minutes): its loop ran at
# ~0.55 s a step, training, validations and grids 42 min 11 s, the test scoring ~8.6 minutes, 50 min
# 48 s in all.
PIXELCNN_PP_STEPS = 3800
# PixelSNAIL's row has the full hour: its 800-step run (2026-12-04, AMD EPYC, 537 s of test scoring,
# 22 min 7 s in all) drew only stroke fragments. Since finished rows are kept in
# docs/levels_table/records, a row may take its hour in a sitting of its own. Its training loop ran
# at 1.04 s a step on 2026-12-07 (AMD EPYC, quiet), so 2,300 steps (~40 minutes), 4 validations
# (~4), the test scoring (~10) and the grids fit the hour.
# With key_value_unit (2026-12-07, AMD EPYC, quiet, benchmark.py --steps=8): 0.83 s a step against
# 0.93 s without, the same budget. Retrained without gradient clipping on 2026-12-07 (AMD EPYC,
# quiet): its loop ran at ~1.1 s a step, training and grids 52 min 32 s, the test scoring 12 minutes,
# 64 min 50 s in all: over the hour by 4 min 50 s. At that speed a retraining needs ~2,000 steps.
# With transparent huge pages for XLA's buffers (dgm_jax/huge_pages.py; 2026-12-07 late evening, AMD
# EPYC, quiet, benchmark.py --steps=10): 139 train / 378 evaluation images/s, against 103 / 222 without
# and 77 / 207 on the slow day above, so the test scoring takes ~5 minutes and a step ~0.46 s:
# 4,600 steps (5.9 epochs, ~35 minutes) with 4 validations, the scoring and the grids take ~47
# minutes, inside the hour on a day up to ~1.25x slower. Trained so (2026-12-07, AMD EPYC, quiet): its
# loop ran at ~0.47 s a step, the test scoring took 5.1 minutes, 44 min 32 s in all.
# With 2x3 convolutions (model.conv_width = 3; 2026-12-08, 2-core Intel Xeon, quiet, benchmark.py
# --steps=10): 0.56 s a step at batch 64 and 278 evaluation images/s, so a loop step of ~0.67 s, the
# test scoring ~7 minutes: 3,600 steps (4.6 epochs, ~40 minutes), 4 validations, the scoring and the
# grids take ~53 minutes. Trained so (2026-12-08, Intel Xeon, quiet): its loop ran at ~0.55 s a step,
# training, validations and grids 36 min 42 s, the test scoring 7 min 52 s, 44 min 34 s in all.
PIXELSNAIL_STEPS = 3600      # 4.6 epochs at batch 64
COLOUR_STEPS = 300           # at most 23 epochs of 421 patches at batch 32 (each candidate; early stopping)

_BUILDERS = {name: globals()[name] for name in ALL_ROWS}

# Each row's grid: (candidate name, dotted overrides of the row's config); validation chooses.
CANDIDATES: dict[str, tuple[tuple[str, dict], ...]] = {
    "gated_categorical": (("base", {}),),
    "gated_logistic": (("base", {}),),
    "pixelcnn_pp": (("base", {}),),
    "pixelsnail": (("base", {}),),
    "colour_gated": (("lr=2e-3", {}), ("lr=5e-4", {"optim.learning_rate": 5e-4})),
    "colour_pixelcnn_pp": (("dropout=0.5", {}), ("dropout=0.2", {"model.dropout_rate": 0.2})),
}
assert set(CANDIDATES) == set(ALL_ROWS)

# The smoke table trains at most this many candidates per row (the suite's time).
SMOKE_CANDIDATES = 2


def smoke(config: ml_collections.ConfigDict, section: str) -> ml_collections.ConfigDict:
    """Seconds-long budgets for the table's pipeline test, on embedded data: sklearn's 8x8 digits
    (17 grey levels, 10 classes) for the MNIST rows, 8x8 photo patches for the colour rows."""
    if section == "mnist":
        config.data.name = "digits"
        config.data.manual_dir = ""
        config.data.validation_fraction = 0.1
        config.data.train_subset = 256
    else:
        config.data.patch_size = 8
        config.data.train_subset = 256
    config.train.batch_size = 16
    config.train.eval_batch_size = 256
    sizes = {"num_features": 6 if section == "colour" else 4, "head_features": 6 if section == "colour" else 4,
             "num_layers": 1, "first_kernel_size": 3, "num_resnet": 0, "num_blocks": 1, "num_res_per_block": 1,
             "key_features": 2, "value_features": 2, "num_mixtures": 2}
    for key, value in sizes.items():
        if key in config.model:
            config.model[key] = value
    config.train.num_steps = 6
    config.train.log_every = 3
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    # As many as the class grid draws (8 per class: 80 digits, 16 patches), so both grids share one
    # compiled sampler.
    config.train.num_samples = 80 if section == "mnist" else 16
    config.train.progress_bar = False
    config.optim.warmup_steps = 2
    return config


def candidates(row: str, smoke_run: bool = False) -> tuple[tuple[str, dict], ...]:
    """The row's grid: (name, overrides) pairs; the smoke table keeps the first SMOKE_CANDIDATES."""
    if row not in CANDIDATES:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ALL_ROWS)}")
    return CANDIDATES[row][:SMOKE_CANDIDATES] if smoke_run else CANDIDATES[row]


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """variant: a row name, optionally followed by ',smoke' (e.g. 'gated_logistic,smoke'): the row's
    base config (its candidates override it, see CANDIDATES)."""
    row, _, extra = variant.partition(",")
    if row not in ALL_ROWS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ALL_ROWS)}")
    if not registered(row):
        raise ValueError(f"row {row!r} needs model {MODEL[row]!r}, which is not in dgm_jax.models.REGISTRY")
    if extra not in ("", "smoke"):
        raise ValueError(f"unknown option {extra!r} after the row name; valid: 'smoke'")
    config = _BUILDERS[row]()
    return smoke(config, SECTION[row]) if extra == "smoke" else config

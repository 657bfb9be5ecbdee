"""The rows of the binarized-MNIST table (experiments/paper_table.py): one variant and one small
grid of candidates per row.

    python experiments/paper_table.py --workdir=runs/paper_table          # every row
    python launch.py --config=experiments/configs/paper_table.py:nade --workdir=runs/nade   # one row's base

Data: the statically binarized MNIST of Larochelle & Murray (2011), 50,000 / 10,000
/ 10,000, NLL in nats per image. Every budget is sized for a 2-core CPU: a row's
candidates together train for at most 60 minutes there; on an accelerator they
finish in minutes. Selection is on the validation split only: each candidate
early-stops on validation and keeps its best-validation checkpoint, the row keeps
the candidate of lowest validation NLL (all recorded in <workdir>/<row>/tried.csv),
and only that one is scored on the test split, once.

Each row's paper side (architecture, orderings, masks, optimizer, prior, epochs,
published figure and where it is stated) is in experiments/paper_table.py; the
table prints every way a row's config below differs from it.

Rows:
  bernoulli         independent pixels; its MLE is the training pixel means (closed form).
  fvsbn             784 logistic regressions, Adam + EMA, a Laplace (L1) prior on the weights.
  nade              H = 500, fixed raster order, sigmoid hidden units, Adam + cosine.
  made_1hl_1mask    MADE, 1 hidden layer, 1 mask (one random input order) + the direct connection.
  made_1hl_32masks  MADE, 1 hidden layer, 32 masks, each its own input order and connectivity.
  made_2hl_32masks  MADE, 2 hidden layers, 32 masks as above (narrower than the paper's: see below).
  eonade            deep order-agnostic NADE (only when dgm_jax has the eonade model).
  gated_pixelcnn    beyond the papers: the Gated PixelCNN, a few epochs on the CPU.
  pixelsnail        beyond the papers: PixelSNAIL (causal convolutions + causal attention), a few epochs.
"""
from __future__ import annotations

import ml_collections

from experiments.configs import base

SHARED_BINARIZED_MNIST = "../shared/data/binarized_mnist"
ALL_ROWS = ("bernoulli", "fvsbn", "nade", "made_1hl_1mask", "made_1hl_32masks", "made_2hl_32masks", "eonade",
            "gated_pixelcnn", "pixelsnail")


def _registered(model: str) -> bool:
    from dgm_jax import models
    return model in models.REGISTRY


def _made_has_orderings() -> bool:
    from dgm_jax import models
    return "ordering" in {f for f in models.REGISTRY["made"].config.__dataclass_fields__}


# The eonade row needs the eonade model (dgm_jax/models); the other rows are always there.
ROWS = tuple(r for r in ALL_ROWS if r != "eonade" or _registered("eonade"))


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
    # step of 0.3 stopped 0.0008 above, 3e-2 with batches of 100, 0.006 above). A weak
    # Gaussian prior keeps the logit of a pixel never on in training finite; its strength is
    # chosen on validation among the candidates (~3 minutes each).
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
    # NLL of unseen images down. A Laplace prior (L1) beat a Gaussian one (L2) on validation
    # (most pixels say nothing about a given later pixel, and L1 lets those weights go to
    # zero). Earlier validation runs (best validation NLL over training):
    #   L2 3e-5 (the exact optimum, by L-BFGS): 98.95      L2 1e-4: 98.96
    #   L1 1e-5: 98.86   3e-5: 98.71   1e-4: 98.60   2e-4: 98.72   3e-4: 98.93   (step 2e-3, 60 epochs)
    #   L1 7e-5: 98.52   1e-4: 98.50   1.5e-4: 98.52   (step 5e-3)
    # The candidates are the three L1 strengths around that optimum at a step of 1e-2 (~6 min each).
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
    # One candidate: ~24 minutes on 2 cores, so a second would not fit the hour.
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
    """MADE with the masked direct input -> output connection (the MADE authors' MNIST command has it),
    each mask its own input ordering and hidden connectivity, evaluated over all its masks."""
    config = _common("made")
    config.model.num_hidden = num_hidden
    config.model.num_hidden_layers = num_hidden_layers
    config.model.num_masks = num_masks
    config.model.num_eval_masks = num_masks
    config.model.direct_connection = True
    if _made_has_orderings():
        # The paper's "Full" shuffling: mask k draws its own input ordering with its connectivity
        # (one mask: one fixed random ordering, as the authors' code shuffles once before training).
        config.model.ordering = "random"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999
    config.train.log_every = 250
    return config


def made_1hl_1mask() -> ml_collections.ConfigDict:
    # The paper's width (8,000) at ~0.13 s a step on 2 cores: two candidates of 20 epochs each
    # fit the hour. One this wide over-fits within a few epochs without a prior (a 4,000-unit
    # raster-order run peaked on validation at epoch 12), so the candidates are no prior (the
    # paper's) and the Laplace prior that was best on validation at 4,000 units.
    config = _made(num_hidden=8000, num_hidden_layers=1, num_masks=1)
    config.train.num_steps = 10_000      # 20 epochs, the cosine reaching zero at the end
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    config.train.early_stopping_patience = 5
    return config


def made_1hl_32masks() -> ml_collections.ConfigDict:
    # The paper's width, one candidate (no prior, as the paper): each step trains one of the 32
    # masks, so this row needs the epochs more than a grid; a 32-mask validation pass at 8,000
    # units is ~32 forward passes of the split. On the 2-core AMD EPYC (2026-12-07), quiet: 0.163 s
    # a step in experiments/benchmark.py, 0.19 s in the training loop (data, EMA, checkpoints), a
    # validation pass 70 s; so 32 epochs and 4 validations fit the hour with the test scoring
    # (~57 minutes). (A 40-epoch run on the faster Xeon, 45 min 51 s, had its best validation at
    # its last epoch: the row is budget-bound.)
    config = _made(num_hidden=8000, num_hidden_layers=1, num_masks=32)
    config.train.num_steps = 16_000      # 32 epochs
    config.train.eval_every = 4000
    config.train.checkpoint_every = 2000
    config.train.early_stopping_patience = 2
    return config


def made_2hl_32masks() -> ml_collections.ConfigDict:
    # The authors' 2 x 8,000 costs ~1 s a step on 2 cores (7 epochs in the hour), so the layers
    # are 2 x 2,000: quiet on the 2-core AMD EPYC (2026-12-07) 0.117 s a step in
    # experiments/benchmark.py (~0.14 s in the training loop) and a 32-mask validation pass 52 s, so
    # 44 epochs and 4 validations fit the hour (~56 minutes with the test).
    # One candidate, no prior: in an earlier pair of 32-mask runs at this width the L1 prior
    # (3e-5) reached validation 94.74 in 55 epochs, no prior 93.3 in 40: the model is
    # under-fitted, and the prior does not help it.
    config = _made(num_hidden=2000, num_hidden_layers=2, num_masks=32)
    config.train.num_steps = 22_000      # 44 epochs
    config.train.eval_every = 5500
    config.train.checkpoint_every = 2750
    config.train.early_stopping_patience = 3
    return config


def eonade() -> ml_collections.ConfigDict:
    # Deep order-agnostic NADE (Uria, Murray & Larochelle 2014): 2 x 500 units, trained over
    # random orderings (the model's own), evaluated as an ensemble of orderings.
    config = _common("eonade")
    config.model.num_hidden = 500
    config.model.num_hidden_layers = 2
    # One ordering's exact log p is 784 steps of the 500 x 500 layer for every image (~1 minute
    # for a split on 2 cores), so the paper's 128-ordering ensemble (hours a split) does not fit:
    # 4 orderings, at every validation and at test; the table sets the row against the authors'
    # own figure for 4 orderings of this model (87.10; experiments/paper_table.py, ROWS).
    config.model.num_eval_orderings = 4
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999
    # A step (one ordering-agnostic pass per image) is cheap: quiet on the 2-core AMD EPYC
    # (2026-12-07) 0.073 s in experiments/benchmark.py (~0.085 s in the training loop); a
    # 4-ordering validation pass 155 s. 60 epochs and 4 validations fit the hour with the test
    # scoring (~57 minutes).
    config.train.num_steps = 30_000      # 60 epochs
    config.train.log_every = 250
    config.train.eval_every = 7500
    config.train.checkpoint_every = 3750
    config.train.early_stopping_patience = 2
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


# Quiet on the 2-core AMD EPYC (2026-12-07): 0.64 s a step at batch 64 (experiments/benchmark.py), a
# validation pass 27 s: 4,400 steps (5.6 epochs) and 5 validations fit the hour with the samples and
# the test.
GATED_LAYERS, GATED_FEATURES, GATED_STEPS = 5, 32, 4400


def pixelsnail() -> ml_collections.ConfigDict:
    # Beyond the papers: PixelSNAIL (Chen et al., 2018) has no statically binarized MNIST figure;
    # its anchor is pytorch-generative's reimplementation (78.61 nats, dynamically binarized
    # MNIST, a larger model trained far longer). Sized for the 2-core CPU budget: 2 blocks, each
    # 2 gated residual layers (causal 2x2 convolutions) then one causal attention layer over all
    # earlier pixels, F = 32; a few epochs, far from convergence.
    config = _common("pixelsnail")
    config.model.num_features = 32
    config.model.num_blocks = SNAIL_BLOCKS
    config.model.num_res_per_block = 2
    config.model.num_heads = 1
    config.model.key_features = 8
    config.model.value_features = 16
    config.model.dropout_rate = 0.0
    config.train.batch_size = 64
    config.train.eval_batch_size = 500
    config.optim.learning_rate = 1e-3                # the PixelSNAIL paper's Adam step
    config.optim.warmup_steps = 200
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999
    config.train.num_steps = SNAIL_STEPS
    config.train.log_every = 100
    config.train.eval_every = 750
    config.train.checkpoint_every = 750
    config.train.early_stopping_patience = 3
    return config


# Quiet on the 2-core AMD EPYC (2026-12-07): 0.98 s a step at batch 64 (experiments/benchmark.py), a
# validation pass 60 s. The training loop runs ~1.2x the benchmark's step (the Gated row: 0.64 s
# benchmarked, 0.75-0.78 s in its loop), so 2,500 steps of 64 (3.2 epochs, ~49 minutes) and 4
# validations fit the hour with the samples and the test.
SNAIL_BLOCKS, SNAIL_STEPS = 2, 2500

_BUILDERS = {name: globals()[name] for name in ALL_ROWS}

# Each row's grid: (candidate name, dotted overrides of the row's config), validation chooses.
NO_PRIOR = ("penalties", ())
CANDIDATES: dict[str, tuple[tuple[str, dict], ...]] = {
    "bernoulli": (("l2=1e-7", {"penalties": (("l2", 1e-7, "all"),)}),
                  ("l2=3e-7", {"penalties": (("l2", 3e-7, "all"),)}),
                  ("l2=1e-6", {"penalties": (("l2", 1e-6, "all"),)})),
    "fvsbn": (("l1=7e-5", {"penalties": (("l1", 7e-5, "kernels"),)}),
              ("l1=1e-4", {"penalties": (("l1", 1e-4, "kernels"),)}),
              ("l1=1.5e-4", {"penalties": (("l1", 1.5e-4, "kernels"),)})),
    "nade": (("base", {}),),
    "made_1hl_1mask": (("no_prior", dict([NO_PRIOR])),
                       ("l1=3e-5", {"penalties": (("l1", 3e-5, "kernels"),)})),
    "made_1hl_32masks": (("no_prior", dict([NO_PRIOR])),),
    "made_2hl_32masks": (("no_prior", dict([NO_PRIOR])),),
    "eonade": (("no_prior", dict([NO_PRIOR])),),
    "gated_pixelcnn": (("base", {}),),
    "pixelsnail": (("base", {}),),
}
assert set(CANDIDATES) == set(ALL_ROWS)

# The smoke table trains only these rows' first two candidates (the suite's time); any row may be asked for.
SMOKE_CANDIDATES = 2


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
                       "num_eval_orderings": min(config.model.get("num_eval_orderings", 1), 2),
                       "num_layers": 1, "num_features": 8, "head_features": 8, "first_kernel_size": 3,
                       "num_blocks": 1, "num_res_per_block": 1, "key_features": 2, "value_features": 4}.items():
        if key in config.model:
            config.model[key] = value
    config.train.num_steps = 10
    config.train.log_every = 5
    config.train.eval_every = 5
    config.train.checkpoint_every = 5
    config.train.num_samples = 4
    config.train.progress_bar = False
    config.train.cpu_devices = 1
    config.train.parallelism = "pmap"
    config.optim.warmup_steps = 2
    return config


def candidates(row: str, smoke_run: bool = False) -> tuple[tuple[str, dict], ...]:
    """The row's grid: (name, overrides) pairs; the smoke table keeps the first SMOKE_CANDIDATES."""
    if row not in CANDIDATES:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}")
    return CANDIDATES[row][:SMOKE_CANDIDATES] if smoke_run else CANDIDATES[row]


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """variant: a row name, optionally followed by ',smoke' (e.g. 'nade,smoke'): the row's base config
    (its candidates override it, see CANDIDATES)."""
    row, _, extra = variant.partition(",")
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ROWS)}")
    if extra not in ("", "smoke"):
        raise ValueError(f"unknown option {extra!r} after the row name; valid: 'smoke'")
    config = _BUILDERS[row]()
    return smoke(config) if extra == "smoke" else config

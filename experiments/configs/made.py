"""MADE (Germain et al., 2015) with connectivity-agnostic training on statically
binarized MNIST.

    python launch.py --config=experiments/configs/made.py --workdir=runs/made

Two hidden layers and 32 masks: the paper's best binarized-MNIST setting was
2 hidden layers trained over 32 masks (86.64 nats, evaluated as the ensemble
of the masks). Each training step uses one mask drawn uniformly from the 32;
evaluation averages the probabilities of all 32 (32 forward passes of a
2-layer MLP per validation batch: cheap). Layers of 2,000 units (7.1M
parameters) are our choice for a ~25 minute H100 budget; the masks thin
them, so they are wider than NADE's 500. Mask training acts as a regularizer,
but the model still overfits eventually: early stopping on validation.

Orderings (config.model.ordering): 'random' is the paper's order-agnostic
training, its released code's "Full" shuffling: every mask k has its own
random input order as well as its own hidden connectivity (both fixed per k,
seeded), a step trains one mask drawn uniformly, and evaluation is the
log-mean-exp over masks 0..num_eval_masks-1; with num_masks = 1 the one mask
still has a random order (the released code shuffles once before training).
'raster' keeps every mask in raster order (connectivity-agnostic only).
Completion (dgm_jax.sampling.complete) is refused for 'random'.
The paper's released command for its best binarized-MNIST result (README of
github.com/mgermain/MADE) is 2 x 8,000 ReLU units, 32 masks, "Full" shuffling,
a direct input -> output connection, Adagrad (learning rate 0.01), batch 100,
orthogonal initialization, stopped after 30 epochs without validation gain.
"""
from experiments.configs import base

def get_config(variant: str = ""):
    config = base.get_config("made")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_hidden = 2000       # units per hidden layer
    config.model.num_hidden_layers = 2
    config.model.num_masks = 32          # masks (hidden degrees and input order) drawn from in training
    config.model.num_eval_masks = 32     # and averaged (in probability) at evaluation
    config.model.ordering = "random"     # each mask its own input order too (the paper's "Full")

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999

    config.train.batch_size = 100
    config.train.num_steps = 100_000     # 200 epochs; ~2 ms per step
    config.train.log_every = 500
    config.train.eval_every = 5000
    config.train.checkpoint_every = 5000
    config.train.early_stopping_patience = 5

    def tiny(c):
        c.model.num_masks = 4       # a few masks keep the smoke run's evaluation quick
        c.model.num_eval_masks = 4

    return base.variant(config, variant, tiny_fn=tiny)

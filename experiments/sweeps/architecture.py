"""Architecture sweep: PixelCNN vs Gated PixelCNN vs MADE, each unconditional and class-conditional.

    python experiments/run_sweep.py --sweep=experiments/sweeps/architecture.py --workdir=runs/architecture [--smoke]

All members share data, optimizer, steps and early stopping; the
convolutional models share width and depth, MADE gets a hidden layer of a
comparable parameter count. Conditional members model p(x | digit class)
(one-hot y), so their NLLs are conditional likelihoods, -log p(x | y). For
the true distribution, knowing the label saves at most log 10 = 2.3
nats/image (I(x; y) <= H(y)); a larger gap between two learned models says
the unconditional one is further from p_data, not that the label carries more. Dynamic binarization (a fresh draw every epoch), as usual for
grey-level digits; validation and test use one fixed draw per split.

Smoke: sklearn digits (8x8), 6 members, a few minutes on a 2-core CPU.
Full: mnist5k (3,600 training images, 400 validation, 1,000 test), early stopping (about an hour per
convolutional member on a 2-core CPU; minutes on a GPU).
"""
from experiments.configs import base


def get_sweep(smoke: bool = False):
    config = base.get_config()
    config.seed = 0
    config.data.binarization = "dynamic"
    config.model.kernel_size = 3
    config.optim.name = "adam"
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.0
    config.train.num_samples = 16
    config.train.eval_batch_size = 500
    if smoke:
        config.data.name = "digits"
        config.model.num_features = 16
        config.model.num_layers = 3
        config.model.first_kernel_size = 5
        made_hidden = 256
        config.optim.learning_rate = 3e-3
        config.optim.warmup_steps = 20
        config.train.batch_size = 32
        config.train.num_steps = 400
        config.train.log_every = 50
        config.train.eval_every = 100
        config.train.checkpoint_every = 100
    else:
        config.data.name = "mnist5k"
        config.model.num_features = 64
        config.model.num_layers = 8
        config.model.first_kernel_size = 7
        made_hidden = 1000
        config.optim.learning_rate = 1e-3
        config.optim.warmup_steps = 200
        config.train.batch_size = 64
        config.train.num_steps = 8000
        config.train.log_every = 100
        config.train.eval_every = 500
        config.train.checkpoint_every = 500
        config.train.early_stopping_patience = 4
    members = []
    for name in ("pixelcnn", "gated_pixelcnn", "made"):
        for conditional in (False, True):
            overrides = {"model.name": name, "model.conditional": conditional}
            if name == "made":
                overrides["model.num_hidden"] = made_hidden
            members.append((f"{name}{'_cond' if conditional else ''}", overrides))
    return config, members

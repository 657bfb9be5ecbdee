"""EoNADE (Uria, Murray & Larochelle, 2014): deep order-agnostic NADE and its ensemble of orderings,
on statically binarized MNIST.

    python launch.py --config=experiments/configs/eonade.py --workdir=runs/eonade

The model as published for binarized MNIST: 2 hidden layers of 500 ReLU units reading
(x * m, m), trained over random orderings and random given-set sizes d with the unbiased
estimator N / (N - d) sum_{hidden j} log p(x_j | x_given) (one ordering and d per image;
dgm_jax/models/eonade.py), and evaluated exactly as the equal mixture of 128 fixed orderings
(the paper's best ensemble, 85.10 nats on the test set). The optimizer below is this
codebase's (Adam + cosine), not the paper's.

Cost: a training step is one MLP pass; an exact evaluation is, per ordering, 784 steps of
the deeper layers ([B, 500] x [500, 500] each; the first layer is a running sum), so the
validation and test scores cost num_eval_orderings times one ordering's pass. Select on
validation with a smaller ensemble (--config.model.num_eval_orderings=16) if 128 does not fit,
and say so. The tiny variant (digits) is seconds long.
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config("eonade")
    config.seed = 0

    config.data.name = "binarized_mnist"
    config.data.binarization = "static"
    config.data.manual_dir = "../shared/data/binarized_mnist"

    config.model.num_hidden = 500            # H: units per hidden layer
    config.model.num_hidden_layers = 2       # the paper's best (2hl) EoNADE
    config.model.activation = "relu"
    config.model.num_eval_orderings = 128    # orderings averaged (in probability) at evaluation

    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 500
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 10.0
    config.optim.ema_decay = 0.999           # evaluate the averaged weights

    config.train.batch_size = 100
    config.train.num_steps = 100_000         # 200 epochs of 50,000 images
    config.train.log_every = 500
    config.train.eval_every = 5000
    config.train.checkpoint_every = 5000
    config.train.early_stopping_patience = 5

    return base.variant(config, variant)     # "tiny": base.tiny (digits, 32 units, 4 orderings)

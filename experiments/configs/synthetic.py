"""MADE on 4x4 synthetic binary images whose distribution is known exactly.

    python launch.py --config=experiments/configs/synthetic.py --workdir=runs/synthetic
    python launch.py --config=experiments/configs/synthetic.py:tiny --workdir=runs/synthetic_tiny

p_data is a random teacher (dgm_jax/data/synthetic.py): all 2^16 = 65,536
images are enumerated, so every validation and test record in metrics.jsonl
carries, next to the NLL, the exact KL(p_data || p_theta), the entropy
H(p_data) and NLL - H with its error bar (dgm_jax/known_truth.py): the NLL's
distance to the best achievable value, which no real data set tells you.
Switch the teacher with --config.data.synthetic_teacher=fvsbn (well specified
for an FVSBN) or mixture (not), or the model with the variant
``synthetic.py:gated_pixelcnn`` (or ``pixelcnn``; ``gated_pixelcnn,tiny`` for both), sized for 4x4 images.

About 35 s on a 2-core CPU (the MADE reaches an exact KL of ~0.07 nats); scoring
the 65,536 enumerated images costs ~0.2 s per evaluation for this MADE, ~3 s
for the gated PixelCNN. The tiny variant takes ~10 s.
"""
from experiments.configs import base


CONV_MODELS = ("pixelcnn", "gated_pixelcnn")


def get_config(variant: str = ""):
    config = base.get_config("made")
    config.seed = 0

    config.data.name = "synthetic"
    config.data.binarization = "static"       # the samples are exactly 0/1
    config.data.synthetic_teacher = "mixture" # 8 product-Bernoulli prototypes (H = 7.52 nats at seed 0)
    config.data.synthetic_size = 4            # 4x4: D = 16, 65,536 images, enumerable
    config.data.synthetic_num_train = 10_000  # exact ancestral samples of p_data
    config.data.synthetic_num_eval = 5_000    # validation and test, each
    config.data.synthetic_seed = 0            # the teacher's parameters (not config.seed)

    config.model.num_hidden = 256             # units per hidden layer
    config.model.num_hidden_layers = 2
    config.model.num_masks = 1                # one fixed mask: raster order, as the teacher is evaluated
    config.model.num_eval_masks = 1

    config.optim.name = "adam"
    config.optim.learning_rate = 2e-3
    config.optim.warmup_steps = 100
    config.optim.schedule = "cosine"
    config.optim.ema_decay = 0.0              # evaluate the raw parameters: the KL of what was trained

    config.train.batch_size = 100
    config.train.eval_batch_size = 1024       # the 65,536 enumerated images in 64 calls (larger is slower on CPU)
    config.train.num_steps = 4000             # 40 epochs of the 10,000 training images
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_patience = 4
    config.train.num_samples = 64

    # Variants, comma-separated: 'tiny' and/or a convolutional model instead of MADE.
    parts = [p for p in variant.split(",") if p]
    unknown = [p for p in parts if p not in ("tiny",) + CONV_MODELS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; valid: 'tiny', {', '.join(map(repr, CONV_MODELS))} "
                         "or a comma-separated combination")
    conv = [p for p in parts if p in CONV_MODELS]
    if conv:   # sized for 4x4 images
        base.with_model(config, conv[0], num_features=32, num_layers=3, kernel_size=3, first_kernel_size=3)
    if "tiny" in parts:
        # Seconds: fewer samples, a narrow model, 200 steps. Not base.tiny(),
        # which switches to the digits data set.
        config.data.synthetic_num_train = 2000
        config.data.synthetic_num_eval = 1000
        for key, value in (("num_hidden", 32), ("num_features", 8), ("num_layers", 2)):
            if key in config.model:
                config.model[key] = value
        config.train.batch_size = 50
        config.train.num_steps = 200
        config.train.log_every = 20
        config.train.eval_every = 100
        config.train.checkpoint_every = 100
        config.train.num_samples = 4
        config.train.progress_bar = False
        config.optim.warmup_steps = 10
        config.optim.learning_rate = 3e-3
    return config

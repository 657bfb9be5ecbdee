"""The headline result: Gated PixelCNN on statically binarized MNIST, target test NLL <= 80.0 nats.

    python launch.py --config=experiments/configs/binarized_mnist_gated.py --workdir=runs/bmnist_gated

Published on the same statically binarized test set (Larochelle & Murray):
PixelCNN 81.30, DRAW <= 80.97, PixelRNN (Diagonal BiLSTM) 79.20 nats. This
config is sized for ~25 minutes of training on one H100 (see
experiments/configs/gated_pixelcnn.py for the FLOP estimate). A run cut short
(pre-emption, a lease running out) continues from its latest checkpoint with
the same command, so the run can be done in several stretches. The test NLL
in results.json is that of the best-validation checkpoint over all 10,000
test images; the validation split selects, the test split never does.

Variants: ':bf16' computes in bfloat16 (float32 parameters, optimizer state
and log-likelihood accumulation); ':tiny' is the CPU smoke version.
"""
from experiments.configs import gated_pixelcnn


def get_config(variant: str = ""):
    if variant not in ("", "bf16", "tiny"):
        raise ValueError(f"unknown variant {variant!r}; valid: '', 'bf16', 'tiny'")
    config = gated_pixelcnn.get_config("tiny" if variant == "tiny" else "")  # checks nothing else: done here
    if variant == "tiny":
        return config
    # Data (from gated_pixelcnn.py): tfds binarized_mnist, 50,000 / 10,000 /
    # 10,000 static binary images, prepared offline from data.manual_dir.
    assert config.data.name == "binarized_mnist" and config.data.binarization == "static"
    # Small models on a fast GPU are dispatch-bound: fuse several steps per call.
    config.train.steps_per_dispatch = 10
    config.train.log_every = 500
    config.train.eval_every = 2500
    config.train.checkpoint_every = 2500
    if variant == "bf16":
        config.model.dtype = "bfloat16"
    return config

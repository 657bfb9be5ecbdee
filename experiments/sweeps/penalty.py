"""Penalty sweep: the weight of each penalty on a model that overfits.

    python experiments/run_sweep.py --sweep=experiments/sweeps/penalty.py --workdir=runs/penalty [--smoke]

The model and data are the overfitting end of the capacity sweep (a PixelCNN
far larger than its small, fixed training set needs; no early stopping), so
regularization has something to fix. Members: no penalty, then
  l2 on the kernels    loss = nll + lambda * 1/2 sum theta^2   (biases unpenalized, as is usual)
  confidence           loss = nll + lambda * (-entropy of the predicted conditionals)
over a log grid of lambda. Both are per image, like the NLL: for N training
images, an l2 weight lambda is a N(0, 1/(N lambda)) prior (N = 150: lambda =
7e-3 is a unit-variance prior). The report's penalty.png plots validation NLL
(best and final) and final train NLL against lambda; the no-penalty member
is the horizontal line.

Smoke: sklearn digits (8x8), 150 training images, 7 members, a few minutes
on a 2-core CPU. Full: mnist5k, 1,000 training images, 10 members.
"""
from experiments.sweeps import capacity


def get_sweep(smoke: bool = False):
    config, _ = capacity.get_sweep(smoke)          # same data, schedule and no early stopping
    if smoke:
        config.model.num_features = 32
        config.model.num_layers = 3
        l2_weights, confidence_weights = (1e-2, 1e-1, 1.0), (0.1, 0.3, 1.0)
    else:
        config.model.num_features = 64
        config.model.num_layers = 8
        l2_weights, confidence_weights = (1e-4, 1e-3, 3e-3, 1e-2, 1e-1), (0.03, 0.1, 0.3, 1.0)
    members = [("none", {"penalties": ()})]
    members += [(f"l2_{w:g}", {"penalties": (("l2", w, "kernels"),)}) for w in l2_weights]
    members += [(f"confidence_{w:g}", {"penalties": (("confidence", w),)}) for w in confidence_weights]
    return config, members

"""Observation models (likelihoods) by name: ``config.model.likelihood`` chooses one.

A new observation model is one new file in this package (a frozen
ObservationModel subclass, its options dataclass ``Config`` and ``SPEC``) and
one line in REGISTRY below. See base.py for the interface.
"""
from __future__ import annotations

from dgm_jax.observations import bernoulli, categorical, logistic_mixture
from dgm_jax.observations.base import ObservationModel, ObservationSpec

REGISTRY: dict[str, ObservationSpec] = {spec.name: spec for spec in (
    bernoulli.SPEC,
    categorical.SPEC,
    logistic_mixture.SPEC,
)}
NAMES = ("auto",) + tuple(REGISTRY)


def resolve_name(name: str, num_levels: int) -> str:
    """'auto' -> bernoulli for binary data (2 levels), categorical otherwise; other names unchanged."""
    if name == "auto":
        return "bernoulli" if num_levels == 2 else "categorical"
    if name not in REGISTRY:
        raise ValueError(f"Unknown likelihood {name!r}. Valid names: {', '.join(NAMES)}.")
    return name


def build(name: str, options=None, *, num_levels: int, num_channels: int) -> ObservationModel:
    """The observation model `name` ('auto' resolved) for data of num_levels levels and num_channels sub-pixels."""
    spec = REGISTRY[resolve_name(name, num_levels)]
    return spec.build(options if options is not None else spec.config(), num_levels=num_levels,
                      num_channels=num_channels)


__all__ = ["NAMES", "REGISTRY", "ObservationModel", "ObservationSpec", "build", "resolve_name"]

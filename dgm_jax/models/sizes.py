"""Checks of the convolutional models' size fields, shared by their ``Config`` classes.

A size that would build a model that is not causal or not complete (a first
masked kernel with no tap left of or above the centre reads no earlier pixel;
zero features read nothing) is refused when the config is loaded: the model's
``Config.__post_init__`` calls these checks (and the module calls them again
when it is built directly), raising config_schema.ConfigError naming the
field, the value, why, and the smallest valid value (minimums:
dgm_jax/models/base.py, ``check_at_least``).

Divisibility by the number of sub-pixels C (features split into one group per
sub-pixel) is only known with the data; :func:`divisible_by_channels` checks it
when the model is built.
"""
from __future__ import annotations

from dgm_jax.models.base import check_at_least


def odd_at_least(model: str, field: str, value: int, smallest: int, why: str = "") -> None:
    """Refuses a kernel size unless it is odd and >= smallest (odd): masked kernels need a centre tap."""
    check_at_least(model, field, value, smallest, why)
    if value % 2 == 0:
        from dgm_jax.config_schema import ConfigError  # noqa: WPS433 - config_schema imports the registry lazily
        raise ConfigError(f"config.model.{field}={value} is not valid for model {model!r}: a masked kernel "
                          f"must be odd (centred on the pixel it predicts); the smallest valid value is "
                          f"{smallest}, the nearest {value - 1} or {value + 1}")


def divisible_by_channels(model: str, field: str, value: int, channels: int) -> None:
    """Refuses `value` features unless they split into C equal, non-empty sub-pixel groups."""
    if value % channels:
        lower, upper = value // channels * channels, -(-value // channels) * channels
        nearest = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(f"config.model.{field}={value} does not fit model {model!r} on this data: it must be "
                         f"a multiple of the {channels} sub-pixels per pixel (the features are split into one "
                         f"group per sub-pixel); the nearest valid: {nearest}")

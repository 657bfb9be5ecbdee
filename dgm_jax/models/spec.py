"""A model's registry entry: everything the rest of the library needs to know about it.

    SPEC = ModelSpec(name="made", module=MADE, config=Config, size_fields=("num_hidden", ...))

lives at the bottom of the model's own file; dgm_jax/models/__init__.py lists
the SPECs (one line per model). ``config`` is a frozen dataclass of the
model's own fields, named like the module's attributes, with defaults and a
comment each: they are the fields of ``config.model`` besides the common
ones (name, conditional, dtype, likelihood), and a field of another model
there is an error. ``fast_sampler`` (optional) is the model's own exact
sampler, ``fast_sampler(model, params, x0, cond, u, temperature, start_row)``
-> images (see dgm_jax/sampling.py; a model with an ensemble, num_eval_masks > 1,
also gets ``mask_idx`` [n], each sample's mask); ``default_likelihood`` the observation
model used when config.model.likelihood is 'auto'.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type                                   # an AutoregressiveImageModel subclass
    config: type                                   # frozen dataclass of the model's own fields
    size_fields: tuple[str, ...] = ()              # fields that set its size (capacity sweeps)
    fast_sampler: Callable[..., Any] | None = None
    fast_sampler_name: str = "fast"                # what the fast method is called in reports
    default_likelihood: str = "auto"               # 'auto': bernoulli for binary data, categorical otherwise

    def build(self, options, *, image_shape, observation, num_classes: int, conditional: bool, dtype):
        """The flax module for images image_shape = (H, W, C) with the model's `options`."""
        return self.module(image_shape=tuple(image_shape), observation=observation,
                           num_classes=num_classes if conditional else 0, conditional=conditional,
                           dtype=dtype, **dataclasses.asdict(options))

"""Discretized logistic mixture (Salimans et al. 2017, PixelCNN++), with the linear dependence of
G on R and of B on R, G inside a pixel.

Values are mapped to y = 2x - 1 in [-1, 1]; level l of K has centre
y_l = 2l/(K-1) - 1 and half-width h = 1/(K-1). For one pixel with C
sub-pixels and M mixture components,

    p(x_pixel) = sum_m pi_m prod_k L(y_k | mu_mk + sum_{j<k} a_mkj y_j, s_mk)
    L(y_l | mu, s) = F((y_l + h - mu)/s) - F((y_l - h - mu)/s),  F = sigmoid,

with the edge bins extended to infinity (level 0 takes F(upper), level K-1
takes 1 - F(lower)), so the K probabilities sum to 1 for any (mu, s).
The mixture weight pi_m is shared by the whole pixel: for a fixed m the
sub-pixels form a chain of normalized conditionals, so the mixture is
normalized too.

Outputs per sub-pixel k (P = M (3 + C - 1)), laid out in blocks of M:
[pi logits | mu | log s | a_k0 | ... | a_k(C-2)]. The mixture logits are read
from sub-pixel 0 only (they may depend on earlier pixels, never on the
pixel itself); sub-pixel k's mu, s and coefficients a = tanh(.) may, under
the networks' sub-pixel masks, also read sub-pixels j < k of the pixel.
log s is floored at -7 as in PixelCNN++.

log p of a middle bin uses the exact identity
    F(a) - F(b) = F(a) F(-b) (1 - e^{b-a}),  a > b,
so log L = log_sigmoid(a) + log_sigmoid(-b) + log(-expm1(b - a)): finite and
accurate for every scale, with no switch to a density approximation.

Sampling (temperature T): the component from softmax(pi logits / T) with the
pixel's first uniform (the same draw for every sub-pixel of the pixel), then
y = mu + T s logit(u) rounded to the nearest level (clipped to 0..K-1), which
is exactly a draw from the discretized distribution.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.observations.base import ObservationModel, ObservationSpec, pick_channel

MIN_LOG_SCALE = -7.0


@dataclasses.dataclass(frozen=True)
class Config:
    num_mixtures: int = 5      # M: logistic components per pixel (PixelCNN++ used 10 on CIFAR-10)


@dataclasses.dataclass(frozen=True)
class DiscretizedLogisticMixture(ObservationModel):
    num_mixtures: int = 5

    name = "discretized_logistic_mixture"
    num_uniforms = 2

    def __post_init__(self):
        super().__post_init__()
        if self.num_mixtures < 1:
            raise ValueError(f"discretized_logistic_mixture needs num_mixtures >= 1, got {self.num_mixtures}")

    @property
    def params_per_subpixel(self) -> int:
        return self.num_mixtures * (3 + self.num_channels - 1)

    def _split(self, outputs):
        """outputs [..., C, P] -> pi logits [..., M], mu [..., C, M], log s [..., C, M], a [..., C, C-1, M]."""
        m, c = self.num_mixtures, self.num_channels
        o = outputs.astype(jnp.float32)
        logit_pi = o[..., 0, :m]
        mu = o[..., m:2 * m]
        log_s = jnp.maximum(o[..., 2 * m:3 * m], MIN_LOG_SCALE)
        coef = jnp.tanh(o[..., 3 * m:]).reshape(o.shape[:-1] + (c - 1, m))
        return logit_pi, mu, log_s, coef

    def _bin_log_prob(self, y, mu, log_s, level):
        """log of the probability of the bin of `level` (centre y) under a logistic (mu, s)."""
        h = 1.0 / (self.num_levels - 1)
        inv_s = jnp.exp(-log_s)
        upper = inv_s * (y - mu + h)
        lower = inv_s * (y - mu - h)
        middle = jax.nn.log_sigmoid(upper) + jax.nn.log_sigmoid(-lower) + jnp.log(-jnp.expm1(lower - upper))
        return jnp.where(level == 0, jax.nn.log_sigmoid(upper),
                         jnp.where(level == self.num_levels - 1, jax.nn.log_sigmoid(-lower), middle))

    def log_prob_per_pixel(self, outputs, x):
        """outputs [B, H, W, C, P], x [B, H, W, C] (level / (K - 1)) -> [B, H, W] nats."""
        c = self.num_channels
        logit_pi, mu, log_s, coef = self._split(outputs)
        level = self.levels(x)                                      # [..., C]
        y = self.values(level) * 2.0 - 1.0                         # bin centres, [..., C]
        # mu_mk += sum_{j<k} a_mkj y_j: a strictly lower-triangular (k, j) mask.
        earlier = jnp.asarray(np.tril(np.ones((c, c - 1), np.float32), k=-1))          # [C, C-1]: j < k
        mu = mu + jnp.einsum("...kjm,kj,...j->...km", coef, earlier, y[..., :c - 1])
        per_sub = self._bin_log_prob(y[..., None], mu, log_s, level[..., None])         # [..., C, M]
        return jax.nn.logsumexp(jax.nn.log_softmax(logit_pi, axis=-1) + per_sub.sum(axis=-2), axis=-1)

    def sample(self, outputs, x_pixel, channel, u, temperature):
        """Sub-pixel `channel` of one pixel: outputs [N, C, P], x_pixel [N, C], u [N, C, 2] -> [N]."""
        c, m = self.num_channels, self.num_mixtures
        logit_pi, mu, log_s, coef = self._split(outputs)            # [N, M], [N, C, M], [N, C, M], [N, C, C-1, M]
        cdf = jnp.cumsum(jax.nn.softmax(logit_pi / temperature, axis=-1), axis=-1)
        comp = jnp.minimum(jnp.sum(cdf < u[:, 0, :1], axis=-1), m - 1)                # same for every sub-pixel
        take = lambda a: jnp.take_along_axis(a, comp[:, None], axis=-1)[:, 0]           # noqa: E731
        y = x_pixel.astype(jnp.float32) * 2.0 - 1.0
        earlier = (jnp.arange(c - 1) < channel).astype(jnp.float32)                     # j < channel
        mean = take(pick_channel(mu, channel)) + jnp.sum(
            earlier * y[:, :c - 1] * jax.vmap(lambda a, k: a[:, k])(pick_channel(coef, channel), comp), axis=-1)
        scale = jnp.exp(take(pick_channel(log_s, channel))) * temperature
        u2 = pick_channel(u, channel)[:, 1]
        z = mean + scale * (jnp.log(u2) - jnp.log1p(-u2))
        level = jnp.clip(jnp.round((z + 1.0) * 0.5 * (self.num_levels - 1)), 0, self.num_levels - 1)
        return self.values(level)


SPEC = ObservationSpec(DiscretizedLogisticMixture.name, DiscretizedLogisticMixture, Config)

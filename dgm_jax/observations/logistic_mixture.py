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

Outputs: PixelCNN++'s count. A pixel needs M mixture logits, per sub-pixel
k its M means and M log scales, and the coupling coefficients a_kj (j < k)
of sub-pixel k: M (1 + 2C + C(C-1)/2) numbers (3M grey, 10M for RGB). They
are laid out one after the other over the pixel's outputs flattened to
[C * P], in blocks of M:

    [pi | mu_0 | log s_0 | mu_1 | log s_1 | a_10 | mu_2 | log s_2 | a_20 | a_21 | ...]

so that sub-pixel k's numbers end in output group k or earlier (every
group's numbers may depend on the earlier pixels and on the sub-pixels of
the pixel before the group, see dgm_jax/models/base.py): the mixture
logits, R's mean and scale read no sub-pixel of the pixel; G's numbers may
also read R, B's also R and G, or less when they fall in an earlier group.
Every sub-pixel has the same P (the models' interface), so P =
ceil(M (1 + 2C + C(C-1)/2) / C): 3M for grey as in PixelCNN++, 3M for C = 2,
ceil(10M / 3) for RGB. For RGB with M not a multiple of 3, the last
3P - 10M numbers (1 or 2 per pixel, at the end of B's group) are not read:
the price of a common P, stated here rather than hidden (their gradient is
exactly 0). The earlier layout (M (3 + C - 1) per SUB-pixel, 15M per RGB
pixel) is refused on resume (``output_layout``, recorded in run_info.json).

log p of a middle bin uses the exact identity
    F(a) - F(b) = F(a) F(-b) (1 - e^{-w}),  w = a - b = 2h / s,
so log L = log_sigmoid(a) + log_sigmoid(-b) + log(1 - e^{-w}). Three terms
<= 0 (nothing cancels), and the width w and log w = log 2h - log s are
computed from s directly, not as a - b: that difference cancels to 0 when
|mu| >> h (|mu| ~ 1e5 in float32) and 1/s underflows when log s > ~87. For
w < 1e-4, log(1 - e^{-w}) = log w - w/2 + w^2/24 (to < 1e-17), so a bin of a
huge scale gets log(density x width), exactly its limit. The unused branch
of that switch is fed a safe w (the double-where: jnp.where differentiates
both branches, and log(-expm1(-0)) would give 0 x inf = NaN gradients); the
edge-bin and middle formulas are finite with finite gradients everywhere,
so choosing between them needs no guard.

Guarantee: for every finite network output, log p and its gradient with
respect to the outputs are finite. The outputs are clipped to +-1e8 (log s
also floored at -7 as in PixelCNN++); beyond the clip the gradient of that
output is 0, and log p of a sub-pixel stays above about -3e11 nats, so sums
over images stay finite. Inside the clip log p and its gradient are accurate
to the float32 rounding of the inputs (tests/test_observations.py, against
90-digit arithmetic, |mu| up to 1e6 and log s from -20 to 100), except that a
gradient below ~1e-30 may come out as 0 where 1/s is below float32's normal
range (log s > 87).

Sampling (temperature T): the component from softmax(pi logits / T) with the
pixel's first uniform (the same draw for every sub-pixel of the pixel), then
y = mu + T s logit(u) rounded to the nearest level (clipped to 0..K-1), which
is exactly a draw from the discretized distribution. log s is capped at 60
there (e^60 T logit(u) stays finite); for larger scales the draw differs from
the exact one only with probability < 1e-25.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.observations.base import ObservationModel, ObservationSpec, pick_channel

MIN_LOG_SCALE = -7.0          # PixelCNN++'s floor of log s
OUTPUT_BOUND = 1e8            # network outputs are clipped to +-this (see the guarantee above)
MAX_SAMPLE_LOG_SCALE = 60.0   # sampling: exp(log s) finite
_SERIES_BELOW = 1e-4          # bin width w below which log(1 - e^-w) uses its series
OUTPUT_LAYOUT = "pixelcnn++ count, packed (v2)"   # run_info.json tag for C > 1 (grey kept its layout)


def log1mexp(w: jax.Array, log_w: jax.Array) -> jax.Array:
    """log(1 - e^{-w}) for w >= 0, given log w too (finite where w underflows to 0).

    Finite with a finite gradient for every such input: log(-expm1(-w)) for w >= 1e-4, else the
    series log w - w/2 + w^2/24 (next term w^4/2880). The expm1 branch is fed w = 1 where the
    series is chosen, so jnp.where never differentiates log(0).
    """
    big = w >= _SERIES_BELOW
    safe = jnp.where(big, w, 1.0)
    return jnp.where(big, jnp.log(-jnp.expm1(-safe)), log_w - 0.5 * w + w * w / 24.0)


@dataclasses.dataclass(frozen=True)
class Config:
    num_mixtures: int = 5      # M: logistic components per pixel (PixelCNN++ used 10 on CIFAR-10)

    def __post_init__(self):
        if self.num_mixtures < 1:
            from dgm_jax.config_schema import ConfigError  # noqa: WPS433 - config_schema imports this registry
            raise ConfigError(f"config.model.num_mixtures={self.num_mixtures} is too small for likelihood "
                              "'discretized_logistic_mixture': the smallest valid value is 1")


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
    def params_per_pixel(self) -> int:
        """The numbers a pixel's distribution reads: M (1 + 2C + C(C-1)/2), PixelCNN++'s count."""
        c = self.num_channels
        return self.num_mixtures * (1 + 2 * c + c * (c - 1) // 2)

    @property
    def params_per_subpixel(self) -> int:
        """P = ceil(params_per_pixel / C): the same for every sub-pixel (see the module docstring)."""
        return -(-self.params_per_pixel // self.num_channels)

    @property
    def output_layout(self) -> str:
        """What the outputs mean, recorded in run_info.json: '' (unchanged since the first runs) for
        grey, OUTPUT_LAYOUT for C > 1, whose earlier checkpoints had M (3 + C - 1) per sub-pixel."""
        return OUTPUT_LAYOUT if self.num_channels > 1 else ""

    def _split(self, outputs):
        """outputs [..., C, P] -> pi logits [..., M], mu [..., C, M], log s [..., C, M] and the
        coefficients a [..., C, C-1, M] (a[k, j] = 0 for j >= k), read in the order of the layout."""
        m, c = self.num_mixtures, self.num_channels
        lead = outputs.shape[:-2]
        o = jnp.clip(outputs.astype(jnp.float32), -OUTPUT_BOUND, OUTPUT_BOUND)
        o = o.reshape(lead + (c * self.params_per_subpixel,))
        logit_pi, mus, log_ss, coefs = o[..., :m], [], [], []
        start = m
        for k in range(c):           # sub-pixel k: mu_k, log s_k, a_k0 .. a_k(k-1)
            mus.append(o[..., start:start + m])
            log_ss.append(o[..., start + m:start + 2 * m])
            a = o[..., start + 2 * m:start + (2 + k) * m].reshape(lead + (k, m))
            coefs.append(jnp.concatenate([a, jnp.zeros(lead + (c - 1 - k, m), jnp.float32)], axis=-2))
            start += (2 + k) * m
        mu = jnp.stack(mus, axis=-2)
        log_s = jnp.maximum(jnp.stack(log_ss, axis=-2), MIN_LOG_SCALE)
        coef = jnp.tanh(jnp.stack(coefs, axis=-3))
        return logit_pi, mu, log_s, coef

    def _bin_log_prob(self, mu, log_s, level):
        """log of the probability of the bin of int `level` under a logistic (mu, s)."""
        k = self.num_levels
        h = 1.0 / (k - 1)
        inv_s = jnp.exp(-log_s)
        # The bin's edges y_l +- h = (2l + 1 +- 1 - K) / (K - 1): an exact integer over K - 1, rounded
        # once (the sum y_l + h would add a rounding error of y_l, large next to an edge near 0).
        two_l = 2.0 * level.astype(jnp.float32)
        upper = ((two_l + (2.0 - k)) / (k - 1) - mu) * inv_s
        lower = ((two_l - k) / (k - 1) - mu) * inv_s
        width = (2.0 * h) * inv_s                       # = upper - lower, without their cancellation
        log_width = np.log(2.0 * h) - log_s             # finite where inv_s underflows
        middle = jax.nn.log_sigmoid(upper) + jax.nn.log_sigmoid(-lower) + log1mexp(width, log_width)
        return jnp.where(level == 0, jax.nn.log_sigmoid(upper),
                         jnp.where(level == self.num_levels - 1, jax.nn.log_sigmoid(-lower), middle))

    def log_prob_per_pixel(self, outputs, x):
        """outputs [B, H, W, C, P], x [B, H, W, C] (level / (K - 1)) -> [B, H, W] nats."""
        c = self.num_channels
        logit_pi, mu, log_s, coef = self._split(outputs)
        level = self.levels(x)                                      # [..., C]
        y = self.values(level) * 2.0 - 1.0                         # bin centres, [..., C] (coupling)
        # mu_mk += sum_{j<k} a_mkj y_j (coef is 0 for j >= k).
        mu = mu + jnp.einsum("...kjm,...j->...km", coef, y[..., :c - 1])
        per_sub = self._bin_log_prob(mu, log_s, level[..., None])                       # [..., C, M]
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
        scale = jnp.exp(jnp.minimum(take(pick_channel(log_s, channel)), MAX_SAMPLE_LOG_SCALE)) * temperature
        u2 = pick_channel(u, channel)[:, 1]
        z = mean + scale * (jnp.log(u2) - jnp.log1p(-u2))
        level = jnp.clip(jnp.round((z + 1.0) * 0.5 * (self.num_levels - 1)), 0, self.num_levels - 1)
        return self.values(level)


SPEC = ObservationSpec(DiscretizedLogisticMixture.name, DiscretizedLogisticMixture, Config)

"""EoNADE: the deep order-agnostic NADE of Uria, Murray & Larochelle (2014), and ensembles of its orderings.

One MLP reads a subset of the pixels and the subset itself, and predicts every pixel:

    input   (x * m, m)               m [D] in {0, 1}: 1 on the given sub-pixels
    h^1 = act(W_x (x * m) + W_m m + c [+ U^1 y])                        [H]
    h^l = act(W^l h^{l-1} + c^l [+ U^l y])          l = 2..L            [H]
    o_i = V_i h^L + b_i [+ U^o y]                   P outputs per sub-pixel i

The units of an ordering are pixels: a mask gives or hides a pixel's C channels
together, and the observation model (dgm_jax/observations) turns o of a pixel's
channels into p(x_pixel | given pixels) (the channels conditionally independent
for bernoulli / categorical, coupled by the logistic mixture). For an ordering
pi of the N = H*W pixels,

    p_pi(x) = prod_t p(x_{pi_t} | x_{pi_<t}),

the t-th factor read from the pass whose mask is the first t pixels of pi: each
ordering is a normalized autoregressive model, all sharing one set of weights.

Training (``training_log_prob``, which dgm_jax/steps.py uses instead of log_prob)
is the paper's order-agnostic estimator: per image, an ordering pi uniform over
the N! orderings and d uniform in {0, ..., N-1}; one pass with the first d pixels
of pi given, and

    J = N / (N - d) * sum over the N - d hidden pixels j of log p(x_j | x_{pi_<d}).

Given d, the given set S = pi_<d is a uniform d-subset and pi_d is uniform over the
hidden pixels, so E_pi[sum_j] = (N - d) E_pi[log p(x_{pi_d} | x_{pi_<d})] and

    E_{d, pi}[J] = sum_d E_pi[log p(x_{pi_d} | x_{pi_<d})] = E_pi[log p_pi(x)]:

an unbiased estimate of the log-likelihood averaged over orderings (a lower bound
on the log of the uniform mixture over all orderings, by Jensen). Only the set S
matters, so a mask is drawn as the d smallest of N uniform keys.

Evaluation is exact: ``log_prob(x, y, mask_index=k)`` is log p_{pi_k}(x) for the
fixed ordering pi_k (numpy's RNG seeded with (ORDER_SEED, k)), and the library's
evaluation (dgm_jax/likelihood.py) takes the log-mean-exp over k <
num_eval_orderings (``num_eval_masks``): the equal mixture of those orderings'
models, normalized because each is. ``subpixel_order(k)`` is pi_k over sub-pixels.

One ordering's exact log p needs N passes, made cheap like NADE's: the first layer
is linear in (x * m, m) and the mask gains one pixel per step, so

    a^1_{t+1} = a^1_t + W_x[pi_t] x_{pi_t} + W_m[pi_t] 1        (O(CH) per step)

is a running sum; only the deeper layers cost O(H^2) per step. The pixels, taken
in pi's order, are cut into blocks of K = _BLOCK; a lax.scan over the blocks carries
the running a^1 [B, H] (float32), adds the within-block prefix sums (one K x K
lower-triangular product), runs the deeper layers on the block's [K, B, H] at once
(one [K*B, H] x [H, H] product per layer) and the outputs of each step's own pixel
only. Memory: one block's [K, B, H]; jax.checkpoint recomputes it in a backward pass.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dgm_jax.models.base import AutoregressiveImageModel, check_at_least, pixel_major_order
from dgm_jax.models.spec import ModelSpec

ORDER_SEED = 1310_1757  # the paper's arXiv number; any fixed value works
ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "sigmoid": nn.sigmoid}
_BLOCK = 16             # K: pixels per block of the ordered scan


@dataclasses.dataclass(frozen=True)
class Config:
    num_hidden: int = 500            # H: units per hidden layer
    num_hidden_layers: int = 2       # L
    num_eval_orderings: int = 128    # fixed orderings averaged (in probability) at evaluation
    activation: str = "relu"         # relu (the paper's) | tanh | sigmoid

    def __post_init__(self):
        check_at_least("eonade", "num_hidden", self.num_hidden, 1)
        check_at_least("eonade", "num_hidden_layers", self.num_hidden_layers, 1)
        check_at_least("eonade", "num_eval_orderings", self.num_eval_orderings, 1)
        if self.activation not in ACTIVATIONS:
            from dgm_jax.config_schema import ConfigError  # noqa: WPS433
            raise ConfigError(f"config.model.activation={self.activation!r} is not valid for model 'eonade'. "
                              f"Valid names: {', '.join(ACTIVATIONS)}.")


def random_prefix_masks(rng: jax.Array, batch: int, num_pixels: int) -> jax.Array:
    """[B, N] float32 masks of the training estimator: per row, d uniform in {0..N-1} and the first d
    pixels of a uniformly random ordering (the d smallest of N uniform keys) set to 1."""
    k_order, k_d = jax.random.split(rng)
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(k_order, (batch, num_pixels)), axis=1), axis=1)
    d = jax.random.randint(k_d, (batch, 1), 0, num_pixels)
    return (rank < d).astype(jnp.float32)


class EoNADE(AutoregressiveImageModel):
    num_hidden: int = 500
    num_hidden_layers: int = 2
    num_eval_orderings: int = 128
    activation: str = "relu"

    @property
    def num_eval_masks(self) -> int:
        return self.num_eval_orderings

    @property
    def raster_ordered(self) -> bool:
        return False

    def pixel_orders(self) -> np.ndarray:
        """int32 [num_eval_orderings, N]: the evaluation orderings of the N = H*W pixels."""
        h, w, _ = self.image_shape
        return np.stack([pixel_major_order((h, w, 1), (ORDER_SEED, k)) for k in range(self.num_eval_orderings)]
                        ).astype(np.int32)

    def subpixel_order(self, mask_index: int = 0) -> np.ndarray:
        return pixel_major_order(self.image_shape, (ORDER_SEED, int(mask_index)))

    def setup(self):
        Config(self.num_hidden, self.num_hidden_layers, self.num_eval_orderings, self.activation)
        h, w, c = self.image_shape
        n, nh, p = h * w, self.num_hidden, self.params_per_subpixel
        # W_x, W_m [N, C, H]: the first layer's weights of pixel j's channels (fan-in D = N C).
        first = nn.initializers.lecun_normal(in_axis=(-3, -2), out_axis=-1)
        self.w_x = self.param("W_x", first, (n, c, nh), jnp.float32)
        self.w_m = self.param("W_m", first, (n, c, nh), jnp.float32)
        self.c = self.param("c", nn.initializers.zeros, (nh,), jnp.float32)
        self.deep = [(self.param(f"W_{l}", nn.initializers.lecun_normal(), (nh, nh), jnp.float32),
                      self.param(f"c_{l}", nn.initializers.zeros, (nh,), jnp.float32))
                     for l in range(2, self.num_hidden_layers + 1)]
        # V [N, C, H, P]: V[j, ch, :, q] reads h^L for output q of sub-pixel (j, ch); fan-in H.
        self.v = self.param("V", nn.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0, 1)),
                            (n, c, nh, p), jnp.float32)
        self.b = self.param("b", nn.initializers.zeros, (n, c, p), jnp.float32)
        if self.conditional:
            self.cond_hidden = [nn.Dense(nh, use_bias=False, dtype=self.dtype) for _ in range(self.num_hidden_layers)]
            self.cond_out = nn.Dense(n * c * p, use_bias=False, dtype=self.dtype)

    # --------------------------------------------------------------------- shared pieces

    def _biases(self, y, batch: int):
        """The hidden biases c^l [+ U^l y], each [B or 1, H], and the output bias b [+ U^o y], [B, N, C, P]."""
        hidden = [self.c] + [bias for _, bias in self.deep]
        out = jnp.broadcast_to(self.b, (batch,) + self.b.shape)
        if y is None:
            return [bh[None] for bh in hidden], out
        hidden = [bh[None] + u(y).astype(jnp.float32) for bh, u in zip(hidden, self.cond_hidden)]
        return hidden, out + self.cond_out(y).astype(jnp.float32).reshape(out.shape)

    def _deep(self, h, hidden_biases):
        """Layers 2..L on h [..., H] (h^1 given): act(h W^l + c^l [+ U^l y])."""
        act = ACTIVATIONS[self.activation]
        for (kernel, _), bias in zip(self.deep, hidden_biases[1:]):
            h = act(jnp.dot(h.astype(self.dtype), kernel.astype(self.dtype), preferred_element_type=jnp.float32)
                    + bias).astype(self.dtype)
        return h

    def _index(self, mask_index):
        if isinstance(mask_index, (int, np.integer)) and not 0 <= mask_index < self.num_eval_orderings:
            raise ValueError(f"mask_index={mask_index} outside [0, {self.num_eval_orderings}) (num_eval_orderings)")
        return jnp.take(jnp.asarray(self.pixel_orders()), jnp.asarray(mask_index, jnp.int32), axis=0, mode="clip")

    # --------------------------------------------------------------------- one pass: a mask

    def masked_outputs(self, x: jax.Array, y: jax.Array | None, mask: jax.Array) -> jax.Array:
        """Outputs [B, H, W, C, P] of ONE pass with the pixels where mask [B, N] is 1 given: for a hidden
        pixel j, the parameters of p(x_j | x_given)."""
        y, x = self.condition(y), jnp.asarray(x)
        bsz, (h, w, c) = x.shape[0], self.image_shape
        m = jnp.broadcast_to(mask.astype(jnp.float32)[:, :, None], (bsz, h * w, c))
        xm = x.reshape(bsz, h * w, c).astype(jnp.float32) * m
        hidden_biases, out_bias = self._biases(y, bsz)
        a = (jnp.einsum("bnc,nch->bh", xm.astype(self.dtype), self.w_x.astype(self.dtype),
                        preferred_element_type=jnp.float32)
             + jnp.einsum("bnc,nch->bh", m.astype(self.dtype), self.w_m.astype(self.dtype),
                          preferred_element_type=jnp.float32) + hidden_biases[0])
        hl = self._deep(ACTIVATIONS[self.activation](a).astype(self.dtype), hidden_biases)
        out = jnp.einsum("bh,nchp->bncp", hl, self.v.astype(self.dtype), preferred_element_type=jnp.float32)
        return (out + out_bias).reshape(self.output_shape(x))

    def masked_log_prob_estimate(self, x: jax.Array, y: jax.Array | None, mask: jax.Array) -> jax.Array:
        """[B] the estimator J = N / (N - d) sum_{hidden j} log p(x_j | x_given), d = the given pixels of
        mask [B, N] (d < N)."""
        n = mask.shape[1]
        per_pixel = self.obs.log_prob_per_pixel(self.masked_outputs(x, y, mask), x).reshape(x.shape[0], n)
        d = jnp.sum(mask, axis=1)
        return n / (n - d) * jnp.sum((1.0 - mask) * per_pixel, axis=1)

    def training_log_prob(self, x: jax.Array, y: jax.Array | None, rng: jax.Array) -> jax.Array:
        """[B] an unbiased estimate of E_pi log p_pi(x | y) (one ordering and d per image, see the
        module docstring); the training loss of dgm_jax/steps.py."""
        h, w, _ = self.image_shape
        return self.masked_log_prob_estimate(x, y, random_prefix_masks(rng, x.shape[0], h * w))

    # --------------------------------------------------------------------- N passes: an ordering

    def ordered_scan(self, x: jax.Array, y: jax.Array | None, order: jax.Array, emit_outputs: bool):
        """Exact autoregressive pass in pixel ordering order [N] (int, may be traced): log p_order(x | y)
        [B], or with emit_outputs the outputs [B, H, W, C, P] (pixel order[t]'s from the pass with
        order[:t] given)."""
        y, x = self.condition(y), jnp.asarray(x)
        bsz, (h, w, c) = x.shape[0], self.image_shape
        n, k, p, nh = h * w, _BLOCK, self.params_per_subpixel, self.num_hidden
        nb = -(-n // k)

        def pad(a, axis):
            return jnp.pad(a, [(0, nb * k - n) if i == axis else (0, 0) for i in range(a.ndim)])

        hidden_biases, out_bias = self._biases(y, bsz)
        # Everything in pi's order, padded with zero pixels (no input, no mask weight: they add nothing
        # to the running sum; their outputs are dropped), cut into nb blocks of K.
        xs = pad(x.reshape(bsz, n, c)[:, order].astype(self.dtype), 1).reshape(bsz, nb, k, c).transpose(1, 2, 0, 3)

        def blocks(a):                                      # [N, ...] -> [nb, K, ...] in pi's order
            return pad(a[order], 0).reshape((nb, k) + a.shape[1:])

        wxs, wms, vs = blocks(self.w_x.astype(self.dtype)), blocks(self.w_m.astype(self.dtype)), blocks(self.v)
        bs = pad(out_bias[:, order], 1).reshape(bsz, nb, k, c, p).transpose(1, 2, 0, 3, 4)   # [nb, K, B, C, P]
        valid = (jnp.arange(nb * k) < n).astype(jnp.float32).reshape(nb, k)
        tri = jnp.tril(jnp.ones((k, k), jnp.float32), -1)                            # tri[k, l] = [l < k]
        act = ACTIVATIONS[self.activation]
        obs = self.obs

        def block_step(carry, inputs):
            running, log_p = carry                                                   # [B, H] f32, [B]
            x_b, wx_b, wm_b, v_b, b_b, ok = inputs
            # inc[l] = W_x[pi_l] x_{pi_l} + W_m[pi_l] 1: what pixel pi_l adds to a^1 once given.
            inc = (jnp.einsum("kbc,kch->kbh", x_b, wx_b, preferred_element_type=jnp.float32)
                   + jnp.sum(wm_b, axis=1, dtype=jnp.float32)[:, None, :])           # [K, B, H]
            a = running[None] + jnp.einsum("kl,lbh->kbh", tri, inc)                  # a^1 before each pixel
            hl = self._deep(act(a).astype(self.dtype), hidden_biases)                # [K, B, H]
            out = jnp.einsum("kbh,kchp->kbcp", hl, v_b.astype(self.dtype), preferred_element_type=jnp.float32) + b_b
            running = running + jnp.sum(inc, axis=0)
            if emit_outputs:
                return (running, log_p), out
            lp = obs.log_prob_per_pixel(out.reshape(k * bsz, 1, 1, c, p), x_b.reshape(k * bsz, 1, 1, c).astype(jnp.float32))
            return (running, log_p + jnp.sum(ok[:, None] * lp.reshape(k, bsz), axis=0)), None

        init = (jnp.broadcast_to(hidden_biases[0], (bsz, nh)), jnp.zeros((bsz,), jnp.float32))
        (_, log_p), outs = jax.lax.scan(jax.checkpoint(block_step), init, (xs, wxs, wms, vs, bs, valid))
        if not emit_outputs:
            return log_p
        outs = outs.reshape(nb * k, bsz, c, p)[:n]                                   # [N, B, C, P], pi's order
        raster = outs[jnp.argsort(order)].transpose(1, 0, 2, 3)                       # back to raster order
        return raster.reshape(self.output_shape(x))

    def __call__(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """x [B, H, W, C], y [B, D_y] or None; mask_index: the evaluation ordering (int or int32 scalar in
        [0, num_eval_orderings)). Returns outputs [B, H, W, C, P] float32, autoregressive in that ordering."""
        return self.ordered_scan(x, y, self._index(mask_index), emit_outputs=True)

    def log_prob(self, x: jax.Array, y: jax.Array | None = None, mask_index=0) -> jax.Array:
        """[B] exact log p_{pi_k}(x | y), k = mask_index; the same values as obs.log_prob(self(x, y, k), x)."""
        return self.ordered_scan(x, y, self._index(mask_index), emit_outputs=False)

    def sample_in_order(self, x0: jax.Array, y: jax.Array | None, orders: jax.Array, u: jax.Array,
                        temperature) -> jax.Array:
        """Ancestral samples [n, H, W, C]: sample s draws its pixels in the order orders[s] [N] (its
        channels in channel order, from the one pass that gives the pixel), reading u [n, D, U] by raster
        sub-pixel index, as the naive sampler does (dgm_jax/sampling.py); one O(H^2) step per pixel."""
        y = self.condition(y)
        n, (h, w, c) = x0.shape[0], self.image_shape
        hidden_biases, out_bias = self._biases(y, n)
        act, obs, rows = ACTIVATIONS[self.activation], self.obs, jnp.arange(n)
        u_pix = u.reshape(n, h * w, c, -1)

        def step(t, carry):
            flat, running = carry                                                     # [n, N, C], [n, H]
            pix = orders[:, t]
            hl = self._deep(act(running).astype(self.dtype), hidden_biases)
            out = jnp.einsum("bh,bchp->bcp", hl, self.v[pix].astype(self.dtype),
                             preferred_element_type=jnp.float32) + out_bias[rows, pix]   # [n, C, P]
            x_pix = flat[rows, pix]
            for ch in range(c):
                x_pix = x_pix.at[:, ch].set(obs.sample(out, x_pix, ch, u_pix[rows, pix], temperature))
            running = (running + jnp.einsum("bc,bch->bh", x_pix, self.w_x[pix])
                       + jnp.sum(self.w_m[pix], axis=1))
            return flat.at[rows, pix].set(x_pix), running

        init = (x0.reshape(n, h * w, c).astype(jnp.float32), jnp.broadcast_to(hidden_biases[0], (n, self.num_hidden)))
        flat, _ = jax.lax.fori_loop(0, h * w, step, init)
        return flat.reshape(x0.shape)


def ordered_sampler(model, params, x0, cond, u, temperature, start_row, mask_idx=None):
    """The fast sampler (dgm_jax/models/spec.py): sample s in ordering mask_idx[s] (0 without an
    ensemble), one pass of O(H^2) per pixel instead of N; draws exactly the naive sampler's images.
    No given rows (dgm_jax/sampling.py refuses completion for random orders)."""
    if start_row:
        raise ValueError("EoNADE cannot complete given rows: its orderings are not raster")
    idx = jnp.zeros((x0.shape[0],), jnp.int32) if mask_idx is None else mask_idx
    orders = jnp.take(jnp.asarray(model.pixel_orders()), idx, axis=0)
    return model.apply({"params": params}, x0, cond, orders, u, temperature, method="sample_in_order")


SPEC = ModelSpec(name="eonade", module=EoNADE, config=Config, size_fields=("num_hidden", "num_hidden_layers"),
                 fast_sampler=ordered_sampler, fast_sampler_name="ordered")

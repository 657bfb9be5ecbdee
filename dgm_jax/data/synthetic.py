"""Synthetic binary images whose distribution p_data is known exactly (``data.name='synthetic'``).

Images are ``synthetic_size`` x ``synthetic_size`` x 1 binary pixels,
D = size^2 <= 16 (the default 4x4 gives D = 16), so all 2^D images can be
enumerated and every quantity of p_data computed exactly: log p_data of each
image, the entropy H(p_data), and KL(p_data || p_theta) for any model
(:mod:`dgm_jax.known_truth`). Pixels are in raster order i = 0..D-1 (row,
then column), as the models see them; image number k of the enumeration
has pixel i = bit i of k (:func:`state_index` inverts it).

The teacher (``synthetic_teacher``), a random distribution drawn once from
``synthetic_seed``:

  fvsbn    a fully visible sigmoid belief network,
               p(x_i = 1 | x_<i) = sigma(a_i + sum_{j<i} W_ij x_j),
           a_i ~ N(0, 1), W_ij ~ N(0, 2^2) (j < i). Weights this large make
           most conditionals nearly deterministic given the pixels before
           them: at seed 0, H = 4.47 nats against D ln 2 = 11.09 for uniform
           noise, and the best independent-pixel model is 1.74 nats away
           (the total correlation). Exactly representable by the fvsbn
           model (and by a wide enough MADE), so a well-specified target.
  mixture  a mixture of K = 8 product-Bernoulli components,
               p(x) = sum_k pi_k prod_i Bernoulli(x_i | sigma(L_ki)),
           pi ~ Dirichlet(1, ..., 1), L_ki ~ N(0, 3^2): eight noisy
           prototypes. At seed 0, H = 7.52 nats and the independent-pixel
           model is 2.68 nats away; no FVSBN represents it exactly (its
           conditionals are not logistic in x_<i), so model capacity matters.

Entropies vary with the seed (fvsbn: 3.9 to 6.6 nats over seeds 0-5,
mixture: 7.1 to 8.1); every one is reported exactly with the data set.

Splits: train (``synthetic_num_train`` images), validation and test
(``synthetic_num_eval`` each), independent exact ancestral samples (numpy:
the fvsbn pixel by pixel, the mixture component then pixels). Everything is a
function of the synthetic_* fields only, never of config.seed, so runs with
different seeds see the same data; each split has its own random stream
(``default_rng([synthetic_seed, stream])``), so changing num_train leaves
validation and test as they were, and the first m images of a split of n
are the split of m (sample k uses the k-th row of uniforms). The data are binary: use
``binarization='static'``. The data set carries ``truth``, a
:class:`KnownDistribution`.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from dgm_jax import divergences
from dgm_jax.config_schema import DataConfig
from dgm_jax.data import datasets, splits

TEACHERS = ("fvsbn", "mixture")
MAX_SIZE = 4                      # D = 16 pixels, 65,536 images: enumerable in memory (4 MiB)
FVSBN_BIAS_STD, FVSBN_WEIGHT_STD = 1.0, 2.0
MIXTURE_COMPONENTS, MIXTURE_LOGIT_STD = 8, 3.0
# Streams of default_rng([synthetic_seed, stream]).
_TEACHER_STREAM = 0
_SPLIT_STREAMS = {"train": 1, "validation": 2, "test": 3}


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(_log_sigmoid(z))


@dataclasses.dataclass(frozen=True)
class FVSBNTeacher:
    """p(x_i = 1 | x_<i) = sigma(bias_i + sum_{j<i} weights_ij x_j); weights [D, D] strictly lower triangular."""
    bias: np.ndarray
    weights: np.ndarray

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """x: {0,1} [N, D] -> log p(x) float64 [N]."""
        logits = x @ self.weights.T + self.bias
        return np.sum(x * _log_sigmoid(logits) + (1 - x) * _log_sigmoid(-logits), axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n exact ancestral samples {0,1} float64 [n, D], pixel by pixel (sample k uses row k of the uniforms)."""
        d = self.bias.size
        u = rng.random((n, d))
        x = np.zeros((n, d))
        for i in range(d):
            x[:, i] = u[:, i] < _sigmoid(self.bias[i] + x[:, :i] @ self.weights[i, :i])
        return x


@dataclasses.dataclass(frozen=True)
class MixtureTeacher:
    """p(x) = sum_k exp(log_weights_k) prod_i Bernoulli(x_i | sigma(logits_ki)); logits [K, D]."""
    log_weights: np.ndarray
    logits: np.ndarray

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """x: {0,1} [N, D] -> log p(x) float64 [N] (log-sum-exp over components)."""
        per_k = x @ _log_sigmoid(self.logits).T + (1 - x) @ _log_sigmoid(-self.logits).T + self.log_weights
        m = per_k.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(per_k - m).sum(axis=1, keepdims=True)))[:, 0]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n exact ancestral samples {0,1} float64 [n, D]: a component (inverse CDF), then independent pixels."""
        u = rng.random((n, 1 + self.logits.shape[1]))
        cdf = np.cumsum(np.exp(self.log_weights))
        z = np.minimum(np.searchsorted(cdf / cdf[-1], u[:, 0], side="right"), cdf.size - 1)
        return (u[:, 1:] < _sigmoid(self.logits[z])).astype(np.float64)


def make_teacher(name: str, num_pixels: int, seed: int):
    """The teacher `name` over D = num_pixels pixels, drawn from default_rng([seed, 0]) (module docstring)."""
    rng = np.random.default_rng([seed, _TEACHER_STREAM])
    d = num_pixels
    if name == "fvsbn":
        bias = rng.normal(0.0, FVSBN_BIAS_STD, d)
        weights = np.tril(rng.normal(0.0, FVSBN_WEIGHT_STD, (d, d)), k=-1)
        return FVSBNTeacher(bias, weights)
    if name == "mixture":
        pi = rng.dirichlet(np.ones(MIXTURE_COMPONENTS))
        logits = rng.normal(0.0, MIXTURE_LOGIT_STD, (MIXTURE_COMPONENTS, d))
        return MixtureTeacher(np.log(pi), logits)
    raise ValueError(f"data.synthetic_teacher={name!r} is not valid; valid names: {', '.join(TEACHERS)}")


def all_states(num_pixels: int) -> np.ndarray:
    """Every binary vector of length D: float64 [2^D, D], row k has pixel i = bit i of k."""
    k = np.arange(2 ** num_pixels, dtype=np.int64)
    return ((k[:, None] >> np.arange(num_pixels)) & 1).astype(np.float64)


def state_index(images: np.ndarray) -> np.ndarray:
    """Binary images [N, H, W, 1] (or [N, D]) -> their number k in the enumeration, int64 [N]."""
    x = np.asarray(images).reshape(len(images), -1)
    return (x.astype(np.int64) << np.arange(x.shape[1], dtype=np.int64)).sum(axis=1)


@dataclasses.dataclass(frozen=True, eq=False)
class KnownDistribution:
    """p_data of a synthetic set, enumerated.

    images: float32 {0,1} [2^D, H, W, 1], every image (row k = state k).
    log_probs: float64 [2^D], log p_data(images[k]) in nats (logsumexp = 0).
    entropy: H(p_data) in nats.
    teacher: the teacher object (its parameters), name: 'fvsbn' | 'mixture'.
    """
    images: np.ndarray = dataclasses.field(repr=False)
    log_probs: np.ndarray = dataclasses.field(repr=False)
    entropy: float
    name: str
    seed: int
    teacher: object = dataclasses.field(repr=False, default=None)

    @property
    def num_pixels(self) -> int:
        return int(np.prod(self.images.shape[1:]))

    def log_prob(self, images: np.ndarray) -> np.ndarray:
        """log p_data of binary images [N, H, W, 1]: float64 [N] (a table look-up)."""
        return self.log_probs[state_index(images)]


@functools.lru_cache(maxsize=8)
def known_distribution(name: str, size: int, seed: int) -> KnownDistribution:
    """The enumerated teacher for images size x size x 1 (cached per process; arrays are read-only)."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"data.synthetic_size={size} must be in 1..{MAX_SIZE}: all 2^(size^2) images "
                         "are enumerated for the exact metrics")
    d = size * size
    teacher = make_teacher(name, d, seed)
    states = all_states(d)
    log_probs = teacher.log_prob(states)
    images = states.astype(np.float32).reshape(-1, size, size, 1)
    for a in (images, log_probs):
        a.setflags(write=False)
    return KnownDistribution(images=images, log_probs=log_probs, entropy=divergences.entropy(log_probs),
                             name=name, seed=seed, teacher=teacher)


def sample_split(truth: KnownDistribution, split: str, n: int) -> np.ndarray:
    """n exact samples of split `split` ('train' | 'validation' | 'test'): float32 {0,1} [n, H, W, 1]."""
    rng = np.random.default_rng([truth.seed, _SPLIT_STREAMS[split]])
    x = truth.teacher.sample(n, rng)
    return x.astype(np.float32).reshape((n,) + truth.images.shape[1:])


def load_synthetic(cfg: DataConfig, seed: int = 0) -> splits.RawSplits:
    """Samples the three splits of cfg's teacher (module docstring); RawSplits with ``truth``."""
    del seed  # the data depend on cfg.synthetic_seed only, never on config.seed
    if cfg.synthetic_num_train < 1 or cfg.synthetic_num_eval < 1:
        raise ValueError(f"data.synthetic_num_train={cfg.synthetic_num_train} and data.synthetic_num_eval="
                         f"{cfg.synthetic_num_eval} must be >= 1")
    truth = known_distribution(cfg.synthetic_teacher, cfg.synthetic_size, cfg.synthetic_seed)
    sizes = {"train": cfg.synthetic_num_train, "validation": cfg.synthetic_num_eval,
             "test": cfg.synthetic_num_eval}
    images = {s: sample_split(truth, s, n) for s, n in sizes.items()}
    return splits.RawSplits(images=images, labels={s: None for s in splits.SPLITS}, num_classes=0,
                            grey_levels=1, truth=truth)


def max_entropy(truth: KnownDistribution) -> float:
    """D ln 2, the entropy of uniform noise over the same images (nats)."""
    return truth.num_pixels * math.log(2.0)


datasets.register_dataset("synthetic", load_synthetic)

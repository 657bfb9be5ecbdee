"""Tests of dgm_jax.data: the sets and their carves, binarization, the grain stream, eval batches."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from dgm_jax import config_schema
from dgm_jax.config_schema import DataConfig
from dgm_jax.data import (DATASETS, ImageDataset, datasets, eval_batches, eval_seed, load_dataset,
                          register_dataset, restore_args, save_args, splits, tfds_sets, train_iterator)

SHARED_BINARIZED_MNIST = Path(__file__).resolve().parents[2] / "shared/data/binarized_mnist"
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"


def _rows(x: np.ndarray) -> list[bytes]:
    """Each image as bytes, sorted: a multiset to compare sets of images."""
    return sorted(r.tobytes() for r in x.reshape(len(x), -1))


def _tiny(binarization="dynamic", n=10, labels=True, shape=(4, 4, 1), seed=0) -> ImageDataset:
    """n random-intensity images whose label is their index, so batches show which image they hold."""
    rng = np.random.default_rng(seed)
    images = {s: rng.random((n,) + shape, dtype=np.float32) for s in splits.SPLITS}
    y = {s: (np.arange(n, dtype=np.int32) if labels else None) for s in splits.SPLITS}
    return ImageDataset("tiny", images, y, n if labels else 0, binarization, 0.5)


def _take(it, k):
    return [next(it) for _ in range(k)]


def _same_batches(a, b) -> bool:
    return all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


# ---------------------------------------------------------------- embedded sets and carves

EMBEDDED = {"mnist5k": dict(sizes=(3600, 400, 1000), shape=(28, 28, 1), per_class=100, total=5000),
            "digits": dict(sizes=(1293, 144, 360), shape=(8, 8, 1), per_class=36, total=1797)}


@pytest.mark.parametrize("name", list(EMBEDDED))
def test_embedded_sets_shapes_carve_and_determinism(name):
    spec = EMBEDDED[name]
    ds = load_dataset(DataConfig(name=name))
    assert tuple(len(ds.images[s]) for s in splits.SPLITS) == spec["sizes"]
    assert ds.image_shape == spec["shape"] and ds.num_classes == 10 and ds.cond_dim == 10
    for s in splits.SPLITS:
        x, y = ds.images[s], ds.labels[s]
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == 1.0
        assert y.dtype == np.int32 and y.shape == (len(x),) and 0 <= y.min() and y.max() <= 9
    assert np.array_equal(np.bincount(ds.labels["test"]), [spec["per_class"]] * 10)  # balanced test set
    # The three splits partition the original set: each original image used exactly once.
    from dgm_jax.data import embedded
    if name == "mnist5k":
        grey, labels = embedded._mnist5k_arrays()
        original = grey.astype(np.float32)[..., None] / 255
    else:
        from sklearn.datasets import load_digits
        bunch = load_digits()
        original, labels = bunch.images.astype(np.float32)[..., None] / 16, bunch.target
    whole = np.concatenate([ds.images[s] for s in splits.SPLITS])
    assert len(whole) == spec["total"] and _rows(whole) == _rows(original)
    assert np.array_equal(np.sort(np.concatenate([ds.labels[s] for s in splits.SPLITS])), np.sort(labels))
    # Fixed carve: same on a second load, whatever config.seed; validation_fraction only moves train/val.
    again = load_dataset(DataConfig(name=name), seed=123)
    assert all(np.array_equal(ds.images[s], again.images[s]) for s in splits.SPLITS)
    bigger_val = load_dataset(DataConfig(name=name, validation_fraction=0.2))
    assert np.array_equal(bigger_val.images["test"], ds.images["test"])
    assert len(bigger_val.images["validation"]) == round(0.2 * (spec["total"] - spec["sizes"][2]))


def test_mnist5k_carve_is_pinned():
    # A change of numpy's Generator stream (allowed by NEP 19) would move the carve; fail loudly then.
    ds = load_dataset(DataConfig(name="mnist5k"))
    assert hashlib.sha256(ds.images["test"].tobytes()).hexdigest()[:16] == "a0ff857c21b6c4ff"
    assert hashlib.sha256(ds.images["validation"].tobytes()).hexdigest()[:16] == "03e6a4ce5bb65047"



def test_digits_read_from_the_csv_are_sklearns_digits(monkeypatch):
    """The direct csv reader (no sklearn import) gives exactly what load_digits gives, and the
    fallback through sklearn is taken when the file is not where this scikit-learn keeps it."""
    from sklearn.datasets import load_digits as sklearn_digits
    from dgm_jax.data import embedded
    bunch = sklearn_digits()
    for fallback in (False, True):
        embedded._digits_arrays.cache_clear()
        if fallback:
            monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
        images, labels = embedded._digits_arrays()
        np.testing.assert_array_equal(images, bunch.images.astype(np.uint8))
        np.testing.assert_array_equal(labels, bunch.target)
        assert images.dtype == np.uint8 and labels.dtype == np.int32
    embedded._digits_arrays.cache_clear()

def test_train_subset_is_fixed_and_leaves_eval_splits():
    full = load_dataset(DataConfig(name="mnist5k"))
    sub = load_dataset(DataConfig(name="mnist5k", train_subset=100))
    assert sub.images["train"].shape == (100, 28, 28, 1) and sub.labels["train"].shape == (100,)
    assert set(_rows(sub.images["train"])) <= set(_rows(full.images["train"]))
    assert np.array_equal(sub.images["train"], load_dataset(DataConfig(name="mnist5k", train_subset=100)).images["train"])
    assert np.array_equal(sub.images["test"], full.images["test"])
    with pytest.raises(ValueError, match="train_subset=5000 exceeds the 3600"):
        load_dataset(DataConfig(name="mnist5k", train_subset=5000))


def test_registry_names_and_unknown_name():
    assert set(DATASETS) == set(config_schema.DATASET_NAMES) - {"synthetic"}
    with pytest.raises(ValueError, match="unknown data set 'mnist6k'; valid names: mnist5k, digits"):
        load_dataset(DataConfig(name="mnist6k"))
    tiny = _tiny()

    def fake_loader(cfg, seed):
        return splits.RawSplits(tiny.images, tiny.labels, num_classes=10)
    register_dataset("test_fake_set", fake_loader)
    try:
        ds = load_dataset(DataConfig(name="test_fake_set", train_subset=3))
        assert len(ds.images["train"]) == 3 and ds.name == "test_fake_set"
    finally:
        del datasets._LOADERS["test_fake_set"]


# ---------------------------------------------------------------- binarization

@pytest.mark.parametrize("name,values", [("mnist5k", "0, 1, 2, 3, 4, 5, ... 255"), ("digits", "... 16")])
def test_static_on_grey_data_names_set_and_values(name, values):
    with pytest.raises(ValueError, match=f"{name} has pixel values other than 0/1") as err:
        load_dataset(DataConfig(name=name, binarization="static"))
    assert values in str(err.value) and "binarization='dynamic' or 'threshold'" in str(err.value)


def test_threshold_is_exactly_binary_in_eval_and_training():
    ds = load_dataset(DataConfig(name="digits", binarization="threshold", threshold=0.4))
    x = ds.eval_images("test")
    assert set(np.unique(x)) == {0.0, 1.0}
    assert np.array_equal(x, (ds.images["test"] > 0.4).astype(np.float32))
    batch = next(train_iterator(ds, batch_size=32, seed=0))
    assert set(np.unique(batch["x"])) == {0.0, 1.0} and batch["x"].dtype == np.float32


def test_dynamic_draws_are_unbiased_and_fresh_each_epoch():
    # 1,000 copies of one intensity map (0 and 1 included); image i has label i. (grain's index
    # shuffle is slow on tiny sets, so many copies in one epoch beat many epochs of a few images.)
    n = 1000
    p = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    images = {s: np.repeat(p, n, axis=0) for s in splits.SPLITS}
    ds = ImageDataset("copies", images, {s: np.arange(n, dtype=np.int32) for s in splits.SPLITS}, n, "dynamic", 0.5)
    epoch1, epoch2 = _take(train_iterator(ds, batch_size=n, seed=1), 2)   # one batch = one epoch
    for b in (epoch1, epoch2):
        assert set(np.unique(b["x"])) == {0.0, 1.0} and sorted(b["y"]) == list(range(n))
        # 1,000 draws per pixel: std of the mean <= 0.016, so 0.07 is > 4 sigma; p=0 and p=1 are exact.
        np.testing.assert_allclose(b["x"].mean(axis=0), p[0], atol=0.07)
        assert np.all(b["x"][:, 0, 0] == 0) and np.all(b["x"][:, 3, 3] == 1)
    # The same images in the next epoch get new draws: about E[2p(1-p)] = 0.31 of the pixels change.
    changed = (epoch1["x"][np.argsort(epoch1["y"])] != epoch2["x"][np.argsort(epoch2["y"])]).mean()
    assert 0.2 < changed < 0.4
    # All images are the same map, so equal batches position by position would mean reused noise.
    assert not np.array_equal(epoch1["x"], epoch2["x"])


def test_eval_images_fixed_across_calls_and_loads():
    ds = load_dataset(DataConfig(name="digits"))
    a, b = ds.eval_images("validation"), ds.eval_images("validation")
    c = load_dataset(DataConfig(name="digits")).eval_images("validation")
    assert np.array_equal(a, b) and np.array_equal(a, c) and set(np.unique(a)) == {0.0, 1.0}
    # Documented seed: crc32 of the split name, so any machine can reproduce the draw.
    expected = datasets.bernoulli(ds.images["validation"], np.random.default_rng(eval_seed("validation")))
    assert np.array_equal(a, expected) and eval_seed("validation") != eval_seed("test")
    # Mean of the fixed draw is close to the mean intensity (it is a fair draw).
    assert abs(a.mean() - ds.images["validation"].mean()) < 0.01


def test_dynamic_on_binary_data_equals_static():
    ds = _tiny(n=6)
    binary = {s: (x > 0.5).astype(np.float32) for s, x in ds.images.items()}
    ds.eval_images("test")   # fills the cache of the grey set; replace() must not carry it over
    dyn = dataclasses.replace(ds, images=binary)
    assert np.array_equal(dyn.eval_images("test"), binary["test"])
    b = next(train_iterator(dyn, batch_size=6, seed=0))
    assert np.array_equal(b["x"], binary["train"][b["y"]])


# ---------------------------------------------------------------- training stream

def test_resume_from_state_yields_the_exact_next_batches():
    ds = load_dataset(DataConfig(name="digits"))   # dynamic: the random draws must resume too
    it = train_iterator(ds, batch_size=64, seed=3)
    _take(it, 25)   # past the first epoch (1,293 images)
    state = it.get_state()
    expected = _take(it, 5)
    fresh = train_iterator(ds, batch_size=64, seed=3)
    fresh.set_state(state)
    assert _same_batches(_take(fresh, 5), expected)
    other_seed = train_iterator(ds, batch_size=64, seed=4)
    other_seed.set_state(state)
    assert not _same_batches(_take(other_seed, 1), expected[:1])


def test_orbax_checkpoint_round_trip(tmp_path):
    import orbax.checkpoint as ocp
    ds = _tiny(n=10)
    it = train_iterator(ds, batch_size=4, seed=0)
    _take(it, 7)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.save(7, args=ocp.args.Composite(data=save_args(it)))
        mngr.wait_until_finished()
    expected = _take(it, 4)
    fresh = train_iterator(ds, batch_size=4, seed=0)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.restore(7, args=ocp.args.Composite(data=restore_args(fresh)))
    assert _same_batches(_take(fresh, 4), expected)


def test_each_epoch_visits_every_image_once_and_reshuffles():
    n, b = 10, 4
    it = train_iterator(_tiny(n=n), batch_size=b, seed=0)
    stream = np.concatenate([batch["y"] for batch in _take(it, 3 * n // b + 1)])
    epochs = [stream[e * n:(e + 1) * n] for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(n))
    assert not np.array_equal(epochs[0], epochs[1])


def test_process_shards_are_disjoint_and_cover_the_set():
    n, global_batch = 11, 4
    ds = _tiny(n=n)
    seen = []
    for p in range(2):
        it = train_iterator(ds, batch_size=global_batch, seed=0, process_index=p, process_count=2)
        shard_len = len(range(p, n, 2))
        batches = _take(it, shard_len)   # 2 images a batch: two epochs of this shard
        assert all(batch["x"].shape == (global_batch // 2, 4, 4, 1) for batch in batches)
        first_epoch = np.concatenate([batch["y"] for batch in batches])[:shard_len]
        assert len(set(first_epoch)) == shard_len
        seen.append(set(first_epoch.tolist()))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(n))


def test_unlabelled_batches_have_no_y_and_bad_batch_sizes_fail():
    b = next(train_iterator(_tiny(labels=False), batch_size=4, seed=0))
    assert set(b) == {"x"} and b["x"].shape == (4, 4, 4, 1)
    with pytest.raises(ValueError, match="multiple of process_count"):
        train_iterator(_tiny(), batch_size=5, seed=0, process_count=2)


# ---------------------------------------------------------------- eval batches

@pytest.mark.parametrize("n,batch_size", [(10, 4), (8, 4), (3, 8)])
def test_eval_batches_cover_every_image_once_with_masked_padding(n, batch_size):
    rng = np.random.default_rng(0)
    images, labels = rng.random((n, 2, 2, 1), dtype=np.float32) + 0.5, np.arange(n, dtype=np.int32)
    batches = list(eval_batches(images, labels, batch_size))
    assert len(batches) == -(-n // batch_size)
    assert all(b["x"].shape == (batch_size, 2, 2, 1) and b["mask"].shape == (batch_size,) for b in batches)
    mask = np.concatenate([b["mask"] for b in batches]).astype(bool)
    x = np.concatenate([b["x"] for b in batches])
    assert mask.sum() == n and np.array_equal(x[mask], images)
    assert np.array_equal(np.concatenate([b["y"] for b in batches])[mask], labels)
    assert np.all(x[~mask] == 0)   # padding is zeros and masked out
    assert "y" not in next(eval_batches(images, None, batch_size))


# ---------------------------------------------------------------- tfds sets

# tfds's real builders prepare the shared files offline, through dgm_jax's own path
# (tfds_sets._prepared_sources), capped at PREPARED examples per split by tfds's
# DownloadConfig(max_examples_per_split) for the suite's time: preparing all 70,000 images
# costs ~20 s a set (tfds encodes every image as a PNG), and the cap changes only how many
# the builder writes. Every prepared image is compared with the source files.
PREPARED = 500


def _prepare_capped(name: str, cfg: DataConfig):
    """load_dataset(cfg) with tfds's builder capped at PREPARED examples per split."""
    import functools

    import tensorflow_datasets as tfds
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tfds.download, "DownloadConfig",
                   functools.partial(tfds.download.DownloadConfig, max_examples_per_split=PREPARED))
        # binarized_mnist's builder parses each whole .amat file with np.loadtxt before it yields
        # (70,000 lines, ~8 s) and then keeps the first PREPARED: it reads only those lines here.
        # (Its download manager still checks every file's SHA-256 in full.)
        mp.setattr(np, "loadtxt", functools.partial(np.loadtxt, max_rows=PREPARED))
        start = time.perf_counter()
        ds = load_dataset(cfg)
    print(f"\n{name}: prepared ({PREPARED} per split) and loaded in {time.perf_counter() - start:.1f} s")
    return ds


def _amat(path: Path, n: int) -> np.ndarray:
    """The first n images of a binarized-MNIST .amat file (one image per line, 784 0/1 values)."""
    with open(path) as f:
        lines = [next(f) for _ in range(n)]
    return np.array([line.split() for line in lines], np.float32).reshape(n, 28, 28, 1)


@pytest.fixture(scope="session")
def binarized_mnist_dir(tmp_path_factory):
    """tfds's binarized_mnist prepared (from the shared .amat files) into a temporary data_dir."""
    if not SHARED_BINARIZED_MNIST.is_dir():
        pytest.skip(f"{SHARED_BINARIZED_MNIST} is absent")
    data_dir = tmp_path_factory.mktemp("tfds")
    ds = _prepare_capped("binarized_mnist", DataConfig(
        name="binarized_mnist", binarization="static", manual_dir=str(SHARED_BINARIZED_MNIST), data_dir=str(data_dir)))
    return data_dir, ds


def test_binarized_mnist_splits_are_the_amat_files(binarized_mnist_dir):
    data_dir, ds = binarized_mnist_dir
    assert {s: ds.images[s].shape for s in splits.SPLITS} == {s: (PREPARED, 28, 28, 1) for s in splits.SPLITS}
    assert ds.num_classes == 0 and ds.cond_dim == 0
    # Each split holds exactly its own file's images (the builder writes the first PREPARED
    # lines, in its own shuffled order), 0/1 values, no labels.
    for s, f in (("train", "train"), ("validation", "valid"), ("test", "test")):
        assert ds.labels[s] is None and set(np.unique(ds.images[s])) == {0.0, 1.0}
        assert _rows(ds.images[s]) == _rows(_amat(SHARED_BINARIZED_MNIST / f"binarized_mnist_{f}.amat", PREPARED)), s
    # Reuse: the prepared data is read back without any manual dir (a few records), in the
    # order it was loaded; dynamic equals static on it.
    sources = tfds_sets._prepared_sources("binarized_mnist", DataConfig(data_dir=str(data_dir)), network=False)
    picks = [0, 432, PREPARED - 1]
    again = np.stack([r["image"] for r in sources["test"].__getitems__(picks)]).astype(np.float32)
    assert np.array_equal(again, ds.images["test"][picks])
    assert np.array_equal(dataclasses.replace(ds, binarization="dynamic").eval_images("test"), ds.images["test"])


def _bm_config(tmp_path, manual_dir):
    return DataConfig(name="binarized_mnist", binarization="static", manual_dir=manual_dir,
                      data_dir=str(tmp_path / "tfds"))


def test_binarized_mnist_missing_manual_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="manual_dir is empty.*binarized_mnist_train.amat.*shared data"):
        load_dataset(_bm_config(tmp_path, ""))
    with pytest.raises(FileNotFoundError, match="does not exist.*binarized_mnist_valid.amat"):
        load_dataset(_bm_config(tmp_path, str(tmp_path / "nowhere")))
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in ("binarized_mnist_train.amat", "binarized_mnist_valid.amat"):
        (partial / f).write_text("")
    with pytest.raises(FileNotFoundError, match=r"binarized_mnist_test.amat missing in data.manual_dir.*Larochelle"):
        load_dataset(_bm_config(tmp_path, str(partial)))


def test_manual_files_are_the_ones_each_builder_registers():
    # The names the download manager looks for in a manual dir are those of the builder's checksums.tsv.
    import tensorflow_datasets as tfds
    for name, need in tfds_sets.MANUAL_FILES.items():
        builder = tfds.builder(name, file_format="array_record")
        assert sorted(need.files) == sorted(info.filename for info in builder.url_infos.values()), name


def _idx(path: Path) -> np.ndarray:
    """A gzipped IDX ubyte file as uint8 [count, *dims], parsed from its own header (magic 0x0000 08 ndim)."""
    raw = gzip.decompress(path.read_bytes())
    assert raw[:3] == b"\x00\x00\x08"
    dims = np.frombuffer(raw, ">i4", count=raw[3], offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def _pairs(levels: np.ndarray, labels: np.ndarray) -> list[tuple[bytes, int]]:
    """(image bytes, label) of every image, sorted: a multiset of labelled images."""
    return sorted(zip((r.tobytes() for r in levels.reshape(len(levels), -1)), labels.tolist()))


@pytest.fixture(scope="session")
def mnist_256(tmp_path_factory):
    """tfds's mnist prepared offline from the shared IDX files, with a 5 / 1 train / validation carve."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"{SHARED_MNIST} is absent")
    data_dir = tmp_path_factory.mktemp("tfds_mnist")
    ds = _prepare_capped("mnist", DataConfig(name="mnist", binarization="none", manual_dir=str(SHARED_MNIST),
                                             data_dir=str(data_dir), validation_fraction=1 / 6))
    return data_dir, ds


def test_mnist_256_levels_are_the_idx_files(mnist_256):
    data_dir, ds = mnist_256
    idx = {f: _idx(SHARED_MNIST / f) for f in tfds_sets.IDX_FILES}
    train_x, train_y, test_x, test_y = (idx[f] for f in tfds_sets.IDX_FILES)
    train_idx, val_idx = splits.validation_carve(PREPARED, 1 / 6)
    assert {s: ds.images[s].shape for s in splits.SPLITS} == {
        "train": (len(train_idx), 28, 28, 1), "validation": (len(val_idx), 28, 28, 1), "test": (PREPARED, 28, 28, 1)}
    assert ds.num_levels == 256 and ds.grey_levels == 255 and ds.num_classes == 10 and ds.cond_dim == 10
    levels = {s: np.round(ds.images[s] * 255).astype(np.uint8) for s in splits.SPLITS}
    for s in splits.SPLITS:
        assert np.array_equal(ds.images[s], levels[s].astype(np.float32) / 255)    # x = level / 255 exactly
        assert ds.labels[s].dtype == np.int32 and 0 <= ds.labels[s].min() and ds.labels[s].max() == 9
    assert levels["train"].min() == 0 and levels["train"].max() == 255
    # Every labelled image exactly as in the IDX files (the builder writes the first PREPARED of
    # each file): test is the official test set, and train + validation are training images,
    # each used once (so the two are disjoint).
    assert _pairs(levels["test"], ds.labels["test"]) == _pairs(test_x[:PREPARED], test_y[:PREPARED])
    assert _pairs(np.concatenate([levels["train"], levels["validation"]]),
                  np.concatenate([ds.labels["train"], ds.labels["validation"]])) == _pairs(train_x[:PREPARED],
                                                                                          train_y[:PREPARED])
    # The class counts of ../shared/data/README.md, from the files themselves.
    assert np.array_equal(np.bincount(train_y), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert np.array_equal(np.bincount(test_y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    # The carve is validation_carve's over tfds's train split, read back from the prepared data
    # without a manual dir (a few records).
    sources = tfds_sets._prepared_sources("mnist", DataConfig(data_dir=str(data_dir)), network=False)
    for split, picks in (("train", train_idx[:3]), ("validation", val_idx[:3])):
        records = sources["train"].__getitems__(picks.tolist())
        assert np.array_equal(np.stack([r["image"] for r in records]), levels[split][:3])
        assert [r["label"] for r in records] == ds.labels[split][:3].tolist()
    # Binarizing rules apply to the grey levels as to any 8-bit set.
    binary = dataclasses.replace(ds, binarization="dynamic").eval_images("test")
    want = (np.asarray(levels["test"], np.float64) / 255).mean()
    assert set(np.unique(binary)) == {0.0, 1.0} and binary.mean() == pytest.approx(want, abs=0.01)


def test_mnist_missing_idx_files_are_named(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    cfg = DataConfig(name="mnist", binarization="none", manual_dir=str(partial), data_dir=str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError, match=r"mnist: train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                                                r"t10k-labels-idx1-ubyte.gz missing in data.manual_dir=.*LeCun"):
        load_dataset(cfg)


class _FakeSource:
    """Stands in for a tfds ArrayRecordDataSource: records {'image': uint8 [28,28,1], 'label': int}."""

    def __init__(self, n):
        self._records = [{"image": np.full((28, 28, 1), i * 4, np.uint8), "label": i % 10} for i in range(n)]

    def __len__(self):
        return len(self._records)

    def __getitem__(self, i):
        return self._records[i]

    def __getitems__(self, keys):
        return [self._records[i] for i in keys]


def _fake_mnist_source(builder, split=None, **kwargs):
    """What tfds.data_source gives for mnist, with 60 train and 20 test records."""
    out = {"train": _FakeSource(60), "test": _FakeSource(20)}
    return out if split is None else out[split]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_mnist_path_with_mocked_source(name, tmp_path):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(as_data_source_fn=_fake_mnist_source, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load_dataset(DataConfig(name=name, data_dir=str(tmp_path)))
    assert {s: ds.images[s].shape for s in splits.SPLITS} == {
        "train": (54, 28, 28, 1), "validation": (6, 28, 28, 1), "test": (20, 28, 28, 1)}
    assert ds.num_classes == 10 and ds.labels["train"].dtype == np.int32
    # intensity = grey / 255, labels follow their images through the carve
    whole = np.concatenate([ds.images["train"], ds.images["validation"]])
    grey = np.round(whole[:, 0, 0, 0] * 255).astype(int)
    assert sorted(grey) == [i * 4 for i in range(60)]
    assert np.array_equal(np.concatenate([ds.labels["train"], ds.labels["validation"]]), (grey // 4) % 10)


def test_tfds_offline_failure_is_explained(monkeypatch, tmp_path):
    import requests
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'storage.googleapis.com'")
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(RuntimeError, match=r"'mnist'.*offline, set data.manual_dir.*t10k-labels-idx1-ubyte.gz.*"
                                           r"data.data_dir"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)))


# ---------------------------------------------------------------- npz

def _npz(tmp_path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def _grey(n, size=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def test_npz_good_files(tmp_path):
    # grey uint8, no validation, no labels: carved, intensity = grey / 255
    ds = load_dataset(DataConfig(name="npz", path=_npz(tmp_path, train=_grey(20), test=_grey(4, seed=1))))
    assert [len(ds.images[s]) for s in splits.SPLITS] == [18, 2, 4] and ds.image_shape == (5, 5, 1)
    assert ds.labels["train"] is None and ds.num_classes == 0
    assert np.array_equal(ds.images["test"][..., 0], _grey(4, seed=1) / np.float32(255))
    # binary uint8 with validation and labels [N, H, W, C]: taken as binary, static allowed
    rng = np.random.default_rng(2)
    bits = lambda n: rng.integers(0, 2, (n, 3, 3, 2), dtype=np.uint8)  # noqa: E731
    path = _npz(tmp_path, train=bits(6), validation=bits(2), test=bits(3), train_labels=np.array([0, 1, 2, 0, 1, 2]),
                validation_labels=np.array([2, 0]), test_labels=np.array([1, 1, 0]))
    ds = load_dataset(DataConfig(name="npz", path=path, binarization="static"))
    assert [len(ds.images[s]) for s in splits.SPLITS] == [6, 2, 3] and ds.image_shape == (3, 3, 2)
    assert set(np.unique(ds.images["train"])) == {0.0, 1.0} and ds.num_classes == 3 and ds.cond_dim == 3
    # float intensities with conditioning vectors [N, D]
    vec = lambda n: rng.normal(size=(n, 7)).astype(np.float32)  # noqa: E731
    path = _npz(tmp_path, train=rng.random((10, 4, 4)), test=rng.random((2, 4, 4)), train_labels=vec(10),
                test_labels=vec(2))
    ds = load_dataset(DataConfig(name="npz", path=path))
    assert ds.cond_dim == 7 and ds.labels["validation"].shape == (1, 7) and ds.num_classes == 0


BAD_NPZ = {
    "missing test": (dict(train=_grey(4)), "key 'test': missing"),
    "unknown key": (dict(train=_grey(4), test=_grey(2), valid=_grey(2)), "key 'valid': unknown key"),
    "NaN": (dict(train=np.full((4, 5, 5), np.nan), test=_grey(2)), "key 'train': 100 NaN"),
    "negative": (dict(train=_grey(4).astype(np.int16) - 3, test=_grey(2)), "key 'train': negative values"),
    "above 255": (dict(train=_grey(4).astype(np.int32) + 300, test=_grey(2)), "values above 255"),
    "float grey": (dict(train=_grey(4).astype(np.float32), test=_grey(2)), r"intensities in \[0, 1\]"),
    "dtype": (dict(train=_grey(4).astype(np.complex64), test=_grey(2)), "wrong dtype complex64"),
    "rank": (dict(train=np.zeros((4, 25), np.uint8), test=_grey(2)), r"images must be \[N, H, W\]"),
    "empty": (dict(train=_grey(4), test=np.zeros((0, 5, 5), np.uint8)), "key 'test': empty split"),
    "sizes": (dict(train=_grey(4), test=_grey(2, size=6)), "image sizes differ between splits"),
    "label length": (dict(train=_grey(4), test=_grey(2), train_labels=np.arange(3), test_labels=np.arange(2)),
                     "key 'train_labels': wrong length"),
    "label dtype": (dict(train=_grey(4), test=_grey(2), train_labels=np.arange(4.0), test_labels=np.arange(2)),
                    "must be integers"),
    "negative label": (dict(train=_grey(4), test=_grey(2), train_labels=np.array([0, 1, -1, 0]),
                            test_labels=np.arange(2)), "labels out of range: negative"),
    "unseen label": (dict(train=_grey(4), test=_grey(2), train_labels=np.array([0, 1, 1, 0]),
                          test_labels=np.array([0, 5])), "key 'test_labels': labels out of range"),
    "labels for some splits": (dict(train=_grey(4), test=_grey(2), train_labels=np.arange(4)),
                               "key 'test_labels': missing"),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_npz_malformed_files_raise_clear_errors(case, tmp_path):
    arrays, message = BAD_NPZ[case]
    path = _npz(tmp_path, **arrays)
    with pytest.raises(ValueError, match=message) as err:
        load_dataset(DataConfig(name="npz", path=path))
    assert path in str(err.value)


def test_npz_missing_file_and_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="nope.npz: file does not exist"):
        load_dataset(DataConfig(name="npz", path=str(tmp_path / "nope.npz")))
    with pytest.raises(ValueError, match="needs data.path"):
        load_dataset(DataConfig(name="npz"))
    path = tmp_path / "objects.npz"
    np.savez(path, train=np.array([None, 1], dtype=object), test=_grey(2))
    with pytest.raises(ValueError, match="cannot be read as an .npz of plain arrays"):
        load_dataset(DataConfig(name="npz", path=str(path)))


def test_worker_processes_give_the_same_batches_and_resume():
    """A worker process gives the in-process batches; its state, restored, gives the next ones again
    (a fresh iterator's restore: test_resume_from_state_yields_the_exact_next_batches)."""
    ds = load_dataset(DataConfig(name="digits"))
    expected = _take(train_iterator(ds, batch_size=32, seed=2), 6)
    it = train_iterator(ds, batch_size=32, seed=2, num_workers=1)
    try:
        assert _same_batches(_take(it, 3), expected[:3])
        state = it.get_state()
        assert _same_batches(_take(it, 2), expected[3:5])
        it.set_state(state)
        assert _same_batches(_take(it, 3), expected[3:])
    finally:
        it.close()

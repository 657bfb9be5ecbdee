"""Data: image data sets as host numpy arrays (datasets.py) and grain batch streams (pipeline.py)."""
import importlib.util

from dgm_jax.data.datasets import (DATASETS, ImageDataset, check_split, eval_seed, load_dataset, register_dataset,
                                   registered_datasets)
from dgm_jax.data.pipeline import eval_batches, restore_args, save_args, train_iterator
from dgm_jax.data.splits import RawSplits

# Sets defined in sibling modules register themselves with register_dataset
# when imported; import them here so that load_dataset knows every set as soon
# as dgm_jax.data is imported (synthetic.py may not exist yet).
if importlib.util.find_spec("dgm_jax.data.synthetic") is not None:
    from dgm_jax.data import synthetic  # noqa: F401

__all__ = ["DATASETS", "ImageDataset", "RawSplits", "check_split", "eval_batches", "eval_seed", "load_dataset",
           "register_dataset", "registered_datasets", "restore_args", "save_args", "train_iterator"]

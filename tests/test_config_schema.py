"""Typed configs: every experiment config validates, and typos are errors."""
import importlib
from pathlib import Path

import ml_collections
import pytest

from dgm_jax import config_schema

CONFIG_DIR = Path(__file__).resolve().parents[1] / "experiments" / "configs"
CONFIG_FILES = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in ("__init__", "base"))


def _variants(name: str) -> list[tuple[str, bool]]:
    """(variant, is_small) of a config file: '' and 'tiny', or for a file of table rows (ROWS)
    every row and its ',smoke' form."""
    module = importlib.import_module(f"experiments.configs.{name}")
    rows = getattr(module, "ROWS", None)
    if rows:
        return [(r, False) for r in rows] + [(f"{r},smoke", True) for r in rows]
    return [("", False), ("tiny", True)]


CASES = [(name, variant, small) for name in CONFIG_FILES for variant, small in _variants(name)]


@pytest.mark.parametrize("name,variant,small", CASES)
def test_every_experiment_config_validates(name, variant, small):
    module = importlib.import_module(f"experiments.configs.{name}")
    cfg = config_schema.from_config_dict(module.get_config(variant))
    assert isinstance(cfg, config_schema.Config)
    if small:
        assert cfg.train.num_steps <= 200


def test_table_rows_refuse_unknown_names():
    from experiments.configs import paper_table
    with pytest.raises(ValueError, match="unknown row 'nad'.*nade"):
        paper_table.get_config("nad")
    with pytest.raises(ValueError, match="unknown option 'tiny'"):
        paper_table.get_config("nade,tiny")


def test_unknown_key_is_an_error_with_suggestion():
    raw = config_schema.to_dict(config_schema.Config())
    raw["model"]["num_layer"] = 3
    with pytest.raises(config_schema.ConfigError, match=r"config.model.num_layer.*Did you mean 'num_layers'"):
        config_schema.from_config_dict(raw)


def test_wrong_type_is_an_error():
    raw = config_schema.to_dict(config_schema.Config())
    raw["train"]["batch_size"] = "64"
    with pytest.raises(config_schema.ConfigError, match=r"config.train.batch_size must be an int"):
        config_schema.from_config_dict(raw)


@pytest.mark.parametrize("section,key,value,match", [
    ("data", "name", "mnits", r"Did you mean 'mnist'.*Valid names"),
    ("train", "parallelism", "pjit", r"Valid names: pmap, shard_map"),
    ("data", "binarization", "random", r"Valid names: static, dynamic, threshold"),
])
def test_unknown_names_list_valid_ones(section, key, value, match):
    raw = config_schema.to_dict(config_schema.Config())
    raw[section][key] = value
    with pytest.raises(config_schema.ConfigError, match=match):
        config_schema.from_config_dict(raw)


def test_locked_config_dict_rejects_misspelled_override():
    from experiments.configs import quickstart
    cfg = quickstart.get_config()
    cfg.lock()
    with pytest.raises(AttributeError):
        cfg.model.num_layer = 3


def test_penalties_accept_tuples():
    raw = config_schema.to_dict(config_schema.Config())
    raw["penalties"] = (("l2", 1e-4, "kernels"), ("l1", 1e-5))
    cfg = config_schema.from_config_dict(ml_collections.ConfigDict(raw))
    assert cfg.penalties[0] == config_schema.PenaltyConfig("l2", 1e-4, "kernels")
    assert cfg.penalties[1].mask == "all"

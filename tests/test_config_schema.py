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


# ----------------------------------------------------------------------------- model sizes

@pytest.mark.parametrize("model,field,value,smallest", [
    ("pixelcnn", "first_kernel_size", 1, 3), ("gated_pixelcnn", "first_kernel_size", 1, 3),
    ("pixelcnn", "first_kernel_size", 4, 3), ("gated_pixelcnn", "kernel_size", 2, 1),
    ("pixelcnn", "kernel_size", 0, 1), ("gated_pixelcnn", "num_features", 0, 1),
    ("pixelcnn", "num_layers", -1, 0), ("gated_pixelcnn", "head_features", -4, 0),
])
def test_size_fields_that_break_a_model_are_refused_at_config_load(model, field, value, smallest):
    """A 1x1 first kernel (no tap left of or above the pixel: the PixelCNN would read no pixel, the
    gated one never its current row), an even kernel, zero features or a negative count: refused
    when the config is loaded, naming the field, the value and the smallest valid value."""
    raw = config_schema.to_dict(config_schema.Config())
    raw["model"] = config_schema.model_section(model)
    raw["model"][field] = value
    with pytest.raises(config_schema.ConfigError,
                       match=rf"config\.model\.{field}={value} .*{model}.*smallest valid value is {smallest}"):
        config_schema.from_config_dict(raw)


@pytest.mark.parametrize("model", ["pixelcnn", "gated_pixelcnn"])
def test_smallest_valid_sizes_build_a_complete_model(model):
    """At the smallest valid sizes (first kernel 3, later kernels 1, no extra layer, one feature) the
    outputs of pixel (r, c) read its left neighbour and the pixel above it, and not itself (Jacobian)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dgm_jax import models

    cfg = config_schema.model_config(model, num_features=1, num_layers=0, kernel_size=1, first_kernel_size=3)
    net = models.build_model(cfg, (4, 4, 1), num_levels=2)
    x = jnp.ones((1, 4, 4, 1), jnp.float32)
    params = jax.jit(net.init)(jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda p: jnp.abs(p) + 0.5, params)      # positive: no ReLU is off, no path is 0
    jac = np.asarray(jax.jit(jax.jacobian(lambda x: net.apply({"params": params}, x)[0, 2, 2, 0, 0]))(x))[0, ..., 0]
    assert jac[2, 1] != 0 and jac[1, 2] != 0 and jac[2, 2] == 0 and not jac[3].any() and not jac[2, 3:].any()


# ----------------------------------------------------------------------------- the model switched on the command line

def test_model_overrides_are_read_from_argv():
    from dgm_jax import cli_config
    argv = ["launch.py", "--config=x.py", "--config.model.name", "nade", "--config.model.num_hidden=4",
            "--config.model.name=made", "--noconfig.model.conditional", "--config.train.num_steps=3", "--",
            "--config.model.likelihood=categorical"]
    assert cli_config.model_overrides(argv) == ({"name": "made"}, ["num_hidden", "conditional"])


def _parse_launch_flags(monkeypatch, *overrides, config="experiments/configs/gated_pixelcnn.py:tiny"):
    """The locked config that cli_config's --config flag gives for a command line (in-process)."""
    from absl import flags

    from dgm_jax import cli_config
    argv = ["launch.py", f"--config={config}", *overrides]
    monkeypatch.setattr("sys.argv", argv)
    monkeypatch.chdir(CONFIG_DIR.parents[1])
    values = flags.FlagValues()
    cli_config.define_config_file("config", None, "test", flag_values=values)
    values(argv)
    return values.config


def test_switching_the_model_on_the_command_line_drops_the_files_model_fields(monkeypatch):
    """--config.model.name=made over a gated config: gated's own fields (not set by the user) are
    dropped, made's take their defaults and can be set in the same command; the rest of the file
    (data, training, common model fields) stays; the result validates."""
    cfg = _parse_launch_flags(monkeypatch, "--config.model.name=made", "--config.model.num_hidden=12",
                              "--config.model.conditional=True")
    assert set(cfg.model) == config_schema.model_keys("made")
    assert cfg.model.num_hidden == 12 and cfg.model.conditional and cfg.data.name == "digits"
    assert config_schema.from_config_dict(cfg).model.name == "made"
    with pytest.raises(AttributeError):
        cfg.model.first_kernel_size = 3                             # still locked
    # Shared fields keep the file's values; the likelihood switches the same way (and back).
    cfg = _parse_launch_flags(monkeypatch, "--config.model.name=pixelcnn", "--config.model.likelihood",
                              "discretized_logistic_mixture", "--config.model.num_mixtures=3")
    assert cfg.model.num_features == 8 and cfg.model.num_mixtures == 3
    back = config_schema.switch_model_overrides(cfg.model.to_dict(), likelihood="categorical")
    assert "num_mixtures" not in back and back["num_features"] == 8


@pytest.mark.parametrize("overrides,match", [
    (("--config.model.name=made", "--config.model.first_kernel_size=5"),
     r"--config\.model\.first_kernel_size does not apply to model 'made'.*belongs to pixelcnn, gated_pixelcnn"),
    (("--config.model.likelihood=categorical", "--config.model.num_mixtures=5"),
     r"num_mixtures does not apply to model 'gated_pixelcnn' with likelihood 'categorical'"),
    (("--config.model.name=mdae",), r"config\.model\.name='mdae' is not valid\. Did you mean 'made'"),
])
def test_a_field_the_user_set_that_the_new_model_lacks_is_an_error_naming_it(monkeypatch, overrides, match):
    from absl import flags
    with pytest.raises(flags.IllegalFlagValueError, match=match):
        _parse_launch_flags(monkeypatch, *overrides)

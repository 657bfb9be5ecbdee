"""The --config flag of the command-line tools: an experiment config file, locked, whose model can
be switched from the command line.

    from dgm_jax import cli_config
    cli_config.define_config_file("config", None, "Experiment config file.")

is ml_collections' ``config_flags.DEFINE_config_file(..., lock_config=True)`` with one change. A
locked ConfigDict accepts only the keys of the file's model Y, so ``--config.model.name=X`` would
leave Y's own fields (first_kernel_size, ...) in a section of model X, which the schema refuses,
and X's own fields could not be set. Here, when the command line sets ``--config.model.name`` or
``--config.model.likelihood``, the model section is switched right after the file is loaded and
before any override is applied (config_schema.switch_model_overrides): fields of Y that X does not
have are dropped (the user did not set them), X's own take their defaults, fields both have keep
the file's values. Then every ``--config.model.*`` override applies as usual, so X's own fields
can be set; one that X (with its likelihood) does not have is an error naming X.
"""
from __future__ import annotations

import re
import sys
from typing import Sequence

from absl import flags
from ml_collections import config_dict, config_flags

SWITCH_KEYS = ("name", "likelihood")


def model_overrides(argv: Sequence[str], flag: str = "config") -> tuple[dict[str, str], list[str]]:
    """({'name': X, 'likelihood': L}, as far as given, the last value winning; [other model keys set])
    from the ``--<flag>.model.<key>[=value]`` arguments of argv (``--key value`` too; none after '--')."""
    pattern = re.compile(r"^--?(?:no)?" + re.escape(flag) + r"\.model\.([^=.]+)(?:=(.*))?$", re.DOTALL)
    switch, keys = {}, []
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        match = pattern.match(arg)
        if match is None:
            continue
        key, value = match.groups()
        if key in SWITCH_KEYS:
            if value is None and i + 1 < len(argv):
                value = argv[i + 1]
            switch[key] = value
        elif key not in keys:
            keys.append(key)
    return switch, keys


def switch_model(config: config_dict.ConfigDict, argv: Sequence[str], flag: str = "config") -> config_dict.ConfigDict:
    """`config` (the file's, locked) with its model section switched as argv's overrides ask; locked.
    Unchanged when argv switches neither the model nor the likelihood."""
    switch, keys = model_overrides(argv, flag)
    if not switch or not isinstance(config, config_dict.ConfigDict) or "model" not in config:
        return config
    from dgm_jax import config_schema  # noqa: WPS433 - the registries import jax: not for --help
    section = config_schema.switch_model_overrides(config.model.to_dict(), switch.get("name"),
                                                   switch.get("likelihood"), keys, where=f"--{flag}.model")
    with config.unlocked():
        config.model = config_dict.ConfigDict(section)
    config.lock()
    return config


class _SwitchingParser(flags.ArgumentParser):
    """config_flags' file parser (loads and locks the file), then :func:`switch_model`."""

    def __init__(self, file_parser: flags.ArgumentParser, name: str):
        self._file_parser, self._name = file_parser, name

    def parse(self, argument):
        config = self._file_parser.parse(argument)
        argv = flags.FLAGS.read_flags_from_files(sys.argv, force_gnu=False)   # --flagfile expanded
        return switch_model(config, argv, self._name)

    def flag_type(self) -> str:
        return self._file_parser.flag_type()


def define_config_file(name: str, default: str | None, help_string: str, flag_values=flags.FLAGS):
    """config_flags.DEFINE_config_file(name, default, help_string, lock_config=True) whose model
    can be switched from the command line (see the module docstring). Returns the flag holder.
    (A default file, parsed when the flag is defined, is not switched: pass --<name> to switch.)"""
    holder = config_flags.DEFINE_config_file(name, default, help_string, flag_values=flag_values,
                                             lock_config=True)
    flag = flag_values[name]
    flag.parser = _SwitchingParser(flag.parser, name)
    return holder

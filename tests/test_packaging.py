"""The package as a user meets it: a light `import dgm_jax`, and an installable distribution."""
import os
import shutil
import subprocess
import sys
import zipfile

from conftest import REPO, xla_flags

# The suite's compilation cache (conftest.py): the rest of the environment is left out on purpose.
_CACHE = {k: os.environ[k] for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
          if k in os.environ}

HEAVY = ("orbax", "grain", "tensorboardX", "matplotlib", "tensorflow_datasets", "tensorflow")


def test_wheel_holds_every_subpackage_and_imports_light_from_elsewhere(tmp_path):
    """pip builds a distribution from pyproject.toml (what `pip install -e .` uses) that contains
    every module, and dgm_jax imports from it outside the checkout: `import dgm_jax` and building
    and initializing a model load none of the I/O libraries (checkpoints, input, plots, logging),
    which the data and assembly modules then import."""
    src = tmp_path / "src"                       # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO / "dgm_jax", src / "dgm_jax", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("dgm_jax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "dgm_jax").rglob("*.py")}
    assert shipped <= names, sorted(shipped - names)
    assert not any(n.startswith(("tests/", "experiments/")) for n in names)
    env_code = (
        "import sys, jax, jax.numpy as jnp\n"
        "import dgm_jax\n"
        "from dgm_jax import config_schema, models\n"
        "m = models.build_model(config_schema.model_config('gated_pixelcnn', num_features=4, num_layers=1), (4, 4, 1))\n"
        "jax.jit(m.init)(jax.random.key(0), jnp.zeros((1, 4, 4, 1)))\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r})))\n"
        "import dgm_jax.observations, dgm_jax.data, dgm_jax.assembly\n"
        "print(dgm_jax.__file__)\n")
    out = subprocess.run([sys.executable, "-c", env_code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
                              "XLA_FLAGS": xla_flags(), **_CACHE}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    light, where = out.stdout.strip().splitlines()[-2:]
    assert light == "[]", out.stdout
    assert str(wheel) in where

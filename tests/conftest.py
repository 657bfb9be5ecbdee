"""Shared fixtures: paths to the data beside the repository, and tiny configs."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BINARIZED_MNIST = SHARED_DATA / "binarized_mnist"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def tiny_config():
    """A seconds-long unconditional PixelCNN on sklearn digits (8x8, dynamic binarization):
    8 maps, 2 layers, 40 steps, Adam with cosine decay, EMA 0.99."""
    from experiments.configs import pixelcnn
    config = pixelcnn.get_config("tiny")
    config.optim.ema_decay = 0.99          # an EMA that moves within 40 steps
    config.train.eval_batch_size = 256
    return config


def run_python(code: str, *, devices: int = 1, timeout: int = 300, env_extra=None):
    """Runs `code` in a fresh interpreter with `devices` fake CPU devices; returns stdout."""
    import subprocess
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=str(REPO))
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout

"""PNG outputs of a run: the learning curve and image grids."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def learning_curve(records: list[dict], path: str | Path, title: str = "") -> None:
    """Train and validation NLL (nats/image) against step."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, style in (("train", "-"), ("validation", "o-")):
        pts = [(r["step"], r["nll"]) for r in records if r["split"] == split and r.get("nll") is not None]
        if pts:
            s, v = zip(*pts)
            ax.plot(s, v, style, label=f"{split} NLL", ms=4)
    ax.set_xlabel("step")
    ax.set_ylabel("NLL (nats / image)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def image_grid(images: np.ndarray, path: str | Path, ncols: int = 8, scale: int = 3, pad: int = 1) -> None:
    """Saves images [N, H, W, C] in [0, 1] as a grid PNG (one channel: 1 -> dark, digits on white; RGB as is)."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    if c not in (1, 3):
        images = images[..., :1]
        c = 1
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
    for i, img in enumerate(images):
        r, q = divmod(i, ncols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = 1.0 - img if c == 1 else img   # grey: dark strokes on white; colour as is
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    pixels = (np.clip(grid, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels[..., 0] if c == 1 else pixels).save(path)

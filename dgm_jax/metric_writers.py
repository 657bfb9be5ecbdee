"""Metrics of a run: one JSON line per record in metrics.jsonl, and TensorBoard events.

Each record is {"step": s, "split": "train" | "validation" | "test", name: value, ...}.
On resume the file is appended to; a reader keeps the last record per
(split, step), so steps repeated after a crash do not count twice.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tensorboardX import SummaryWriter


class MetricWriter:
    def __init__(self, workdir: str | Path, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(workdir) / "metrics.jsonl"
        self._tb = SummaryWriter(str(Path(workdir) / "tensorboard")) if enabled else None

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v)
                 for k, v in metrics.items()}
        record = {"step": int(step), "split": split, "time": time.time(), **clean}
        with open(self.path, "a") as f:
            f.write(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                for k, v in record.items()}) + "\n")
        for k, v in clean.items():
            if isinstance(v, float):
                self._tb.add_scalar(f"{split}/{k}", v, int(step))
        self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict]:
    """Records of metrics.jsonl, the last one kept for each (split, step), sorted by step."""
    latest: dict[tuple[str, int], dict] = {}
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            latest[(rec["split"], rec["step"])] = rec
    return sorted(latest.values(), key=lambda r: (r["step"], r["split"]))

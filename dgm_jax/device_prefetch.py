"""Keeps training batches in flight to the devices, and remembers the data position.

Each item is a group of k host batches stacked to [k, B, ...] (k optimizer
steps per dispatch) and put on the devices ahead of use (transfers are
asynchronous). Alongside each group we keep the iterator state *after* it, so
that a checkpoint records the position of the last batch actually consumed,
not of the batches waiting in the queue: a resumed run continues with the
next unseen batch.
"""
from __future__ import annotations

import collections
import copy
from typing import Any, Callable

import numpy as np


class DevicePrefetcher:
    def __init__(self, iterator, put: Callable[[dict], Any], size: int = 2):
        self._it = iterator
        self._put = put
        self._size = max(size, 1)
        self._queue: collections.deque = collections.deque()
        self._group = None
        self._consumed_state = copy.deepcopy(iterator.get_state())

    @property
    def state(self):
        """Iterator state after the last group handed out by next()."""
        return self._consumed_state

    def _fill(self) -> None:
        while len(self._queue) < self._size:
            host = [next(self._it) for _ in range(self._group)]
            stacked = {k: np.stack([b[k] for b in host]) for k in host[0]}
            self._queue.append((self._put(stacked), copy.deepcopy(self._it.get_state())))

    def next(self, k: int):
        """The next k batches, on the devices, shaped [k, B, ...]."""
        if k != self._group:
            # Group size changed (e.g. the last, shorter dispatch): rewind the
            # iterator to what was consumed and refill with the new size.
            self._it.set_state(copy.deepcopy(self._consumed_state))
            self._queue.clear()
            self._group = k
        self._fill()
        batch, self._consumed_state = self._queue.popleft()
        return batch

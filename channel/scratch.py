"""Frame-sized work buffers that one render thread reuses frame after frame.

A fresh array of a 2560x1440 frame is 11-44 MB; allocated and freed every frame, the C
allocator hands such blocks back to the kernel and takes them again, and every page of them
is faulted in anew (measured: 1,600-2,400 page faults and 8-20 ms of system time per frame).
Reusing the same memory gives the same values without that cost.
"""

from __future__ import annotations

import math

import numpy as np


class Scratch:
    """Named buffers, each grown when a larger one is asked for; not thread-safe (one per thread)."""

    def __init__(self) -> None:
        self._flat: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` over buffer ``name`` (its old contents are undefined)."""
        dt = np.dtype(dtype)
        n, key = math.prod(shape), (name, dt.str)
        flat = self._flat.get(key)
        if flat is None or flat.size < n:
            flat = self._flat[key] = np.empty(n + n // 4, dt)  # headroom: the sheets' box changes size
        return flat[:n].reshape(shape)

    def like(self, name: str, a: np.ndarray) -> np.ndarray:
        """``get(name, a.shape, a.dtype)``."""
        return self.get(name, a.shape, a.dtype)


def buffer(scratch: Scratch | None, name: str, like: np.ndarray) -> np.ndarray | None:
    """``scratch.like(name, like)``, or None without ``scratch`` (OpenCV then allocates the result)."""
    return None if scratch is None else scratch.like(name, like)

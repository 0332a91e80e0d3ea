"""Snapshot arrays read from .npy files, memory-mapped and shared by every process."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_mapped(path: Path) -> np.ndarray:
    """`path` memory-mapped read-only, as a plain ndarray over the mapping.

    A `np.memmap` runs Python code (`__getitem__`, `__array_finalize__`) on every indexing;
    at 100k chunks a query indexes these arrays about 40 times, which cost 0.6 ms. The view
    keeps the mapping alive and indexes at ndarray speed.
    """
    return np.load(path, allow_pickle=False, mmap_mode="r").view(np.ndarray)

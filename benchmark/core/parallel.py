"""A small process pool for per-sample work, with a progress bar."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["map_chunks", "default_workers", "progress"]


def default_workers() -> int:
    """Cores available to this process, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def progress(total: int, desc: str, unit: str = "img") -> tqdm:
    """A progress bar on stderr; hidden when stderr is not a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def map_chunks(
    fn: Callable[[Any], Any],
    items: Sequence[Any] | np.ndarray,
    *,
    workers: int = 1,
    desc: str = "",
    chunk_size: int = 64,
) -> list[Any]:
    """Apply ``fn`` to consecutive chunks of ``items``; results keep chunk order.

    ``fn`` must be picklable (a module-level function or a ``functools.partial``
    of one) when ``workers > 1``.
    """
    slices = _chunks(len(items), chunk_size)
    results: list[Any] = [None] * len(slices)
    with progress(len(items), desc) as bar:
        if workers <= 1 or len(slices) <= 1:
            for i, sl in enumerate(slices):
                results[i] = fn(items[sl])
                bar.update(sl.stop - sl.start)
            return results
        # spawn, not fork: forking a process that holds onnxruntime or torch
        # thread pools can deadlock the children.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(fn, items[sl]): (i, sl) for i, sl in enumerate(slices)}
            for fut in as_completed(futures):
                i, sl = futures[fut]
                results[i] = fut.result()
                bar.update(sl.stop - sl.start)
    return results

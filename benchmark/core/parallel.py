"""A small process pool for per-sample work, with progress on a terminal or in the log."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchmark.core.executors import LOST, Executor, LocalExecutor, current_executor, limited, sample_time_limit
from benchmark.core.numbers import format_number

__all__ = ["map_chunks", "default_workers", "progress", "Progress"]

_log = logging.getLogger("facesec.progress")
_log_failure = logging.getLogger("facesec.isolation")


def default_workers() -> int:
    """Cores available to this process, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


class Progress:
    """Progress of one piece of long work: a bar on a terminal, else periodic log lines.

    A run whose stderr is a file or a pipe (a batch job, CI) shows no bar; it
    gets one ``facesec.progress`` line with counts, rate and ETA at most every
    ``LOG_EVERY`` seconds, across all pieces of work (a sweep of many short
    stages logs as steadily as one long stage), plus a closing line for work
    that took longer than that.
    """

    #: Seconds between progress lines when stderr is not a terminal.
    LOG_EVERY = 30.0
    _last_line = 0.0  # shared by all instances: one line per period, whoever logs it

    def __init__(self, total: int, desc: str, unit: str = "img", *, log_lines: bool | None = None):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.done = 0
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)
        self._log = (not _isatty(sys.stderr)) if log_lines is None else log_lines
        self._start = time.monotonic()
        self._postfix = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self._bar.update(n)
        self.done += n
        if self._log and time.monotonic() - Progress._last_line >= self.LOG_EVERY:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs after the counts (a training loss), on the bar and in log lines."""
        self._bar.set_postfix(**values)
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        self._bar.close()
        elapsed = time.monotonic() - self._start
        if self._log and elapsed >= self.LOG_EVERY and self.done:
            _log.info("%s: done, %d %s in %s", self.desc, self.done, self.unit, _duration(elapsed))
            Progress._last_line = time.monotonic()

    def _line(self) -> None:
        elapsed = time.monotonic() - self._start
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "unknown"
        _log.info(
            "%s: %d/%d %s (%.0f%%), %.1f %s/s, ETA %s%s",
            self.desc, self.done, self.total, self.unit, pct, rate, self.unit, eta,
            f", {self._postfix}" if self._postfix else "",
        )  # fmt: skip
        Progress._last_line = time.monotonic()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress(total: int, desc: str, unit: str = "img") -> Progress:
    """A :class:`Progress` for ``total`` units of ``desc``."""
    return Progress(total, desc, unit)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def map_chunks(
    fn: Callable[[Any], Any],
    items: Sequence[Any] | np.ndarray,
    *,
    workers: int = 1,
    desc: str = "",
    chunk_size: int = 64,
    failure: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """Apply ``fn`` to consecutive chunks of ``items``; results keep chunk order.

    The chunks run on the run's executor (:func:`benchmark.core.executors.current_executor`:
    a local pool or a Dask cluster), else on a local pool of ``workers``
    processes. ``fn`` must be picklable (a module-level function or a
    ``functools.partial`` of one) when chunks leave the process.

    Args:
        fn: Work on one chunk.
        items: What to cut into chunks.
        workers: Pool size when no run executor is selected.
        desc: Name of the work (progress, warnings).
        chunk_size: Items per chunk.
        failure: For untrusted input (hostile codestreams): ``failure(items)``
            is the result standing for items whose work crashed its worker
            or ran past the per-sample time limit
            (:func:`benchmark.core.executors.sample_deadline`). Under a run
            executor the chunks then run isolated, and a chunk whose worker
            died is rerun in halves in a separate worker until the item at
            fault is found; it gets ``failure([item])`` and a warning, and
            the work goes on. Without a run executor (a bare library call)
            nothing is isolated.

    Returns:
        One result per chunk, in order. A chunk narrowed down after a crash
        contributes one result per piece instead, so concatenating the
        results still covers ``items`` in order.
    """
    slices = _chunks(len(items), chunk_size)
    results: list[list[Any]] = [[] for _ in slices]
    run_executor = current_executor()
    isolated = failure is not None and run_executor is not None
    executor: Executor = run_executor or LocalExecutor(workers=max(1, workers))
    if len(slices) <= 1 and not isolated:
        executor = LocalExecutor(workers=1)  # one chunk: no process to start
    call = functools.partial(limited, sample_time_limit(), fn) if isolated else fn
    name = desc or getattr(fn, "__name__", "work")
    isolation: LocalExecutor | None = None
    try:
        with progress(len(items), name) as bar:
            for i, result in executor.map(call, [items[sl] for sl in slices], isolated=isolated):
                if result is LOST:
                    assert failure is not None
                    isolation = isolation or LocalExecutor(workers=1)
                    results[i] = _narrow_down(call, items, slices[i], failure, isolation, name)
                else:
                    results[i] = [result]
                bar.update(slices[i].stop - slices[i].start)
    finally:
        if isolation is not None:
            isolation.close()
        if executor is not run_executor:
            executor.close()
    return [part for parts in results for part in parts]


def _narrow_down(
    call: Callable[[Any], Any],
    items: Sequence[Any] | np.ndarray,
    sl: slice,
    failure: Callable[[Any], Any],
    isolation: LocalExecutor,
    desc: str,
) -> list[Any]:
    """Rerun a lost chunk alone, then its halves, until the items at fault are found.

    A chunk lost only because another worker's crash took down the pool
    passes on its first rerun; one bad item costs about ``2 log2(chunk)`` reruns.
    """
    ((_, result),) = isolation.map(call, [items[sl]], isolated=True)
    if result is not LOST:
        return [result]
    if sl.stop - sl.start == 1:
        _log_failure.warning(
            "%s: item %d crashed its worker or ran past the %s s time limit; counted as failed",
            desc, sl.start, format_number(sample_time_limit()),
        )  # fmt: skip
        return [failure(items[sl])]
    mid = (sl.start + sl.stop) // 2
    return [
        *_narrow_down(call, items, slice(sl.start, mid), failure, isolation, desc),
        *_narrow_down(call, items, slice(mid, sl.stop), failure, isolation, desc),
    ]

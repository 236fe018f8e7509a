"""A small process pool for per-sample work, with progress on a terminal or in the log."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["map_chunks", "default_workers", "progress", "Progress", "die_with_parent"]

_log = logging.getLogger("facesec.progress")


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


def die_with_parent(parent: int) -> None:
    """Make this worker process end when process ``parent`` does, even by ``kill -9``.

    A pool's workers otherwise outlive a killed main process (each holds a
    model, ~160 MB) and ``protect`` workers go on writing files. On Linux the
    kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); a
    daemon thread that polls the parent's pid covers other systems and the
    race of a parent that died before the call.

    Args:
        parent: The pid of the process that started this worker.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="facesec-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


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
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = {pool.submit(fn, items[sl]): (i, sl) for i, sl in enumerate(slices)}
            for fut in as_completed(futures):
                i, sl = futures[fut]
                results[i] = fut.result()
                bar.update(sl.stop - sl.start)
    return results

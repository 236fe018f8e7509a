"""Where per-sample work runs: a local process pool (default) or a Dask cluster.

Work units are the chunks :func:`benchmark.core.parallel.map_chunks` cuts
(pure functions of their items); the content-addressed stage cache is the
hand-off between stages, so on a cluster it lives on a shared filesystem.
Results do not depend on the executor: chunks are gathered back in order.

A run selects its executor once (:func:`using`); components that cut work
into chunks (codecs, concealment, embedding) reach it through
:func:`current_executor` and never build pools of their own. Dask is not
written by hand here: ``dask.distributed`` schedules, retries lost workers
and talks to batch systems (``dask-jobqueue``); this module only adapts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextvars import ContextVar
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "EXECUTOR_NAMES",
    "ExecutorName",
    "ExecutorUnavailable",
    "Executor",
    "LocalExecutor",
    "DaskExecutor",
    "make_executor",
    "using",
    "current_executor",
    "die_with_parent",
]

ExecutorName = Literal["local", "dask"]
#: The executors a protocol or ``--executor`` may name.
EXECUTOR_NAMES: tuple[str, ...] = ("local", "dask")

_CURRENT: ContextVar[Executor | None] = ContextVar("facesec_executor", default=None)


class ExecutorUnavailable(RuntimeError):
    """An executor that cannot start here (a missing extra, an unreachable scheduler): one line."""


@runtime_checkable
class Executor(Protocol):
    """What runs chunks of work: ``workers`` in parallel, results as they complete."""

    #: How many chunks run at once (chunk sizes are cut for it).
    workers: int

    def map(self, fn: Callable[[Any], Any], chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Apply ``fn`` to every chunk; yield ``(index, result)`` as each completes."""
        ...

    def close(self) -> None:
        """Release processes or connections."""
        ...


class LocalExecutor:
    """A process pool on this machine (``spawn``: forking a process that holds
    onnxruntime or torch thread pools can deadlock the children); one worker
    runs in-process.

    Args:
        workers: Worker processes (>= 1).
    """

    def __init__(self, *, workers: int = 1):
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def map(self, fn: Callable[[Any], Any], chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self.workers <= 1 or len(chunks) <= 1:
            for i, chunk in enumerate(chunks):
                yield i, fn(chunk)
            return
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            futures = {pool.submit(fn, chunk): i for i, chunk in enumerate(chunks)}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()

    def close(self) -> None:
        """Nothing to release: each :meth:`map` owns its pool."""


class DaskExecutor:
    """Chunks as tasks of a ``dask.distributed`` cluster.

    Args:
        scheduler: Address of a running scheduler (``tcp://host:8786``, or a
            scheduler file's path ending in ``.json``); None starts an
            in-process ``LocalCluster`` of ``workers`` single-threaded worker
            processes.
        workers: Worker processes of the local cluster (>= 1); with a
            scheduler, how many chunks to cut for (default: the cluster's
            worker count when connecting).

    Raises:
        ExecutorUnavailable: the ``dask`` extra is not installed, or the
            scheduler cannot be reached.
    """

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorUnavailable("the dask executor needs dask.distributed: pip install -e '.[dask]'") from None
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.scheduler = scheduler
        self._cluster: Any = None
        try:
            if scheduler is None:
                n = int(workers or 2)
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
                self._client: Any = Client(self._cluster)
            elif scheduler.endswith(".json"):
                self._client = Client(scheduler_file=scheduler, timeout="30s")
            else:
                self._client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise ExecutorUnavailable(f"dask scheduler {scheduler or 'LocalCluster'}: {exc}") from None
        found = len(self._client.scheduler_info().get("workers", {}))
        self.workers = int(workers or found or 1)

    def __repr__(self) -> str:
        return f"DaskExecutor(scheduler={self.scheduler!r}, workers={self.workers})"

    def map(self, fn: Callable[[Any], Any], chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed as dask_completed

        if not chunks:
            return
        # pure=False: chunks are not deduplicated by Dask's token (the stage
        # cache already does that, with keys that include the code).
        futures = self._client.map(fn, list(chunks), pure=False)
        index = {fut.key: i for i, fut in enumerate(futures)}
        for fut, result in dask_completed(futures, with_results=True):
            yield index[fut.key], result

    def close(self) -> None:
        for thing in (getattr(self, "_client", None), self._cluster):
            if thing is not None:
                with contextlib.suppress(Exception):  # closing is best effort: the run is already over
                    thing.close()


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


def make_executor(name: str, *, workers: int, scheduler: str | None = None) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTOR_NAMES`).

    Raises:
        ValueError: an unknown name, or a scheduler given to the local executor.
        ExecutorUnavailable: as :class:`DaskExecutor`.
    """
    if name == "local":
        if scheduler is not None:
            raise ValueError("--scheduler needs --executor dask")
        return LocalExecutor(workers=workers)
    if name == "dask":
        return DaskExecutor(scheduler=scheduler, workers=workers)
    raise ValueError(f"unknown executor {name!r} (allowed: {', '.join(EXECUTOR_NAMES)})")


@contextlib.contextmanager
def using(executor: Executor) -> Iterator[Executor]:
    """Run the enclosed work on ``executor`` (restored on exit)."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)


def current_executor() -> Executor | None:
    """The executor selected by the innermost :func:`using`, else None."""
    return _CURRENT.get()

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

Work on untrusted input (decoding a codestream an attacker may have shaped)
runs *isolated*: always in worker processes, each sample under a time limit
(:func:`sample_deadline`: past it, the worker process is killed, since a
decoder stuck in C code cannot be interrupted), and a chunk whose worker
died is yielded as :data:`LOST` instead of failing the run;
:func:`benchmark.core.parallel.map_chunks` then narrows it down to the
sample at fault.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextvars import ContextVar
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "EXECUTOR_NAMES",
    "ExecutorName",
    "ExecutorUnavailable",
    "WorkerLost",
    "LOST",
    "DEFAULT_SAMPLE_TIME_LIMIT",
    "Executor",
    "LocalExecutor",
    "DaskExecutor",
    "make_executor",
    "using",
    "current_executor",
    "sample_time_limit",
    "sample_deadline",
    "limited",
    "die_with_parent",
    "init_worker",
]

ExecutorName = Literal["local", "dask"]
#: The executors a protocol or ``--executor`` may name.
EXECUTOR_NAMES: tuple[str, ...] = ("local", "dask")

_CURRENT: ContextVar[Executor | None] = ContextVar("facesec_executor", default=None)

#: Seconds one sample of isolated work may take before its worker is killed
#: (a 112 x 112 face decodes in milliseconds; this only catches a stuck decoder).
DEFAULT_SAMPLE_TIME_LIMIT = 60.0
_LIMIT: ContextVar[float] = ContextVar("facesec_sample_time_limit", default=DEFAULT_SAMPLE_TIME_LIMIT)
# Set in a worker process while it runs an isolated chunk; read by sample_deadline.
_WORKER_LIMIT: float | None = None


class ExecutorUnavailable(RuntimeError):
    """An executor that cannot start here (a missing extra, an unreachable scheduler): one line."""


class WorkerLost(RuntimeError):
    """A worker process died while running work that is not isolated (killed, or out of memory)."""


class _Lost:
    def __repr__(self) -> str:
        return "LOST"


#: What :meth:`Executor.map` yields, for an isolated chunk, in place of the
#: result of a chunk whose worker process died (a crash, or past the time limit).
LOST: Any = _Lost()


@runtime_checkable
class Executor(Protocol):
    """What runs chunks of work: ``workers`` in parallel, results as they complete."""

    #: How many chunks run at once (chunk sizes are cut for it).
    workers: int

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], *, isolated: bool = False
    ) -> Iterator[tuple[int, Any]]:
        """Apply ``fn`` to every chunk; yield ``(index, result)`` as each completes.

        Args:
            fn: A picklable function of one chunk.
            chunks: The work units.
            isolated: The chunks may crash or hang their worker (untrusted
                input): run them in worker processes even where one would
                do in-process, and yield ``(index, LOST)`` for a chunk whose
                worker died instead of raising.
        """
        ...

    def close(self) -> None:
        """Release processes or connections."""
        ...


class LocalExecutor:
    """A process pool on this machine (``spawn``: forking a process that holds
    onnxruntime or torch thread pools can deadlock the children).

    The pool starts at the first :meth:`map` that needs it and serves every
    later one until :meth:`close` (a run pays the workers' start-up once,
    and each worker loads a model once); a pool broken by a dead worker is
    replaced. Work that is not isolated runs in-process when one worker or
    one chunk would do.

    Args:
        workers: Worker processes (>= 1).
    """

    def __init__(self, *, workers: int = 1):
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._markers: str | None = None
        self._ids = itertools.count()

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], *, isolated: bool = False
    ) -> Iterator[tuple[int, Any]]:
        if not isolated and (self.workers <= 1 or len(chunks) <= 1):
            for i, chunk in enumerate(chunks):
                yield i, fn(chunk)
            return
        todo = list(range(len(chunks)))
        while todo:
            pool, markers = self._started()
            futures = {}
            for i in todo:
                marker = os.path.join(markers, str(next(self._ids)))
                call = functools.partial(_marked, marker, fn) if isolated else fn
                futures[pool.submit(call, chunks[i])] = (i, marker)
            lost: list[tuple[int, str]] = []
            for fut in as_completed(futures):
                i, marker = futures[fut]
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append((i, marker))
                    continue
                if isolated:
                    with contextlib.suppress(OSError):
                        os.unlink(marker)
                yield i, result
            if not lost:
                return
            self._discard()
            if not isolated:
                raise WorkerLost(
                    f"a worker process died ({len(lost)} unfinished chunk(s)): killed, or out of memory? "
                    "Try fewer --workers"
                )
            # The pool kills every worker when one dies: chunks that had
            # started are suspects (yielded LOST, narrowed down by the
            # caller); the others never ran and go to a fresh pool.
            started = [(i, m) for i, m in lost if os.path.exists(m)]
            for i, _ in sorted(started):
                yield i, LOST
            todo = sorted(i for i, m in lost if not os.path.exists(m))

    def _started(self) -> tuple[ProcessPoolExecutor, str]:
        if self._pool is None or self._markers is None:
            ctx = multiprocessing.get_context("spawn")
            self._markers = tempfile.mkdtemp(prefix="facesec-tasks-")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=init_worker, initargs=(os.getpid(),)
            )
        return self._pool, self._markers

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the workers and remove the task markers."""
        self._discard()
        if self._markers is not None:
            shutil.rmtree(self._markers, ignore_errors=True)
            self._markers = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _marked(marker: str, fn: Callable[[Any], Any], chunk: Any) -> Any:
    """Worker: leave a mark that this chunk started (read if the pool breaks), then run it."""
    with open(marker, "wb"):
        pass
    return fn(chunk)


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

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], *, isolated: bool = False
    ) -> Iterator[tuple[int, Any]]:
        from distributed import KilledWorker
        from distributed import as_completed as dask_completed

        if not chunks:
            return
        # pure=False: chunks are not deduplicated by Dask's token (the stage
        # cache already does that, with keys that include the code).
        futures = self._client.map(fn, list(chunks), pure=False)
        index = {fut.key: i for i, fut in enumerate(futures)}
        for fut in dask_completed(futures):
            # A task whose workers kept dying (Dask retries it on others
            # first) ends in KilledWorker: for isolated work, a lost chunk.
            if isolated and fut.status == "error" and isinstance(fut.exception(), KilledWorker):
                yield index[fut.key], LOST
                continue
            yield index[fut.key], fut.result()

    def close(self) -> None:
        for thing in (getattr(self, "_client", None), self._cluster):
            if thing is not None:
                with contextlib.suppress(Exception):  # closing is best effort: the run is already over
                    thing.close()


def sample_time_limit() -> float:
    """Seconds one sample of isolated work may take in this run (:func:`using`)."""
    return _LIMIT.get()


def limited(limit: float, fn: Callable[[Any], Any], chunk: Any) -> Any:
    """Worker: run ``fn(chunk)`` with :func:`sample_deadline` armed at ``limit`` seconds.

    Armed only in a child process (a pool or Dask worker): a main process is
    never killed by a deadline.
    """
    global _WORKER_LIMIT
    _WORKER_LIMIT = limit if multiprocessing.parent_process() is not None else None
    try:
        return fn(chunk)
    finally:
        _WORKER_LIMIT = None


@contextlib.contextmanager
def sample_deadline() -> Iterator[None]:
    """Bound one sample's work inside an isolated chunk.

    Past the run's :func:`sample_time_limit` the worker process ends
    (``SIGALRM`` at its default action: a decoder stuck in C code never
    returns to Python, so no exception could stop it); its chunk is then
    reported :data:`LOST` and the sample counted as failed. Outside an
    isolated chunk this does nothing.
    """
    limit = _WORKER_LIMIT
    if limit is None:
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


#: Thread pools of numerical libraries that a worker limits to one thread.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def init_worker(parent: int) -> None:
    """Start a pool worker: :func:`die_with_parent`, and one thread per numerical library.

    The pool is the parallelism: a worker whose BLAS or OpenMP runtime
    starts a thread per core oversubscribes the machine (measured: Fisher
    vectors, whose GMM posteriors are small matrix products, embed 35 faces/s
    on two workers with OpenBLAS's default threads and 171 with one). Dask's
    nanny sets the same variables in its workers.
    """
    die_with_parent(parent)
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    try:  # libraries already loaded (numpy's BLAS) read the variables only at load time
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a scikit-learn dependency
        return
    threadpool_limits(1)


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
    # sample_deadline relies on SIGALRM's default action (end the process).
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
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
def using(executor: Executor, *, sample_time_limit: float | None = None) -> Iterator[Executor]:
    """Run the enclosed work on ``executor`` (restored on exit).

    Args:
        executor: Where chunks run.
        sample_time_limit: Seconds per sample of isolated work (default
            :data:`DEFAULT_SAMPLE_TIME_LIMIT`).
    """
    if sample_time_limit is not None and not sample_time_limit > 0:
        raise ValueError(f"sample_time_limit must be > 0, got {sample_time_limit}")
    token = _CURRENT.set(executor)
    limit = _LIMIT.set(float(sample_time_limit or DEFAULT_SAMPLE_TIME_LIMIT))
    try:
        yield executor
    finally:
        _LIMIT.reset(limit)
        _CURRENT.reset(token)


def current_executor() -> Executor | None:
    """The executor selected by the innermost :func:`using`, else None."""
    return _CURRENT.get()

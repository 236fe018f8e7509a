"""Executors: a local pool and Dask give the same chunks back in order, and the same run."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.cache import Cache
from benchmark.core.executors import (
    DaskExecutor,
    Executor,
    ExecutorUnavailable,
    LocalExecutor,
    current_executor,
    make_executor,
    using,
)
from benchmark.core.parallel import map_chunks
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import ProtocolError, load_protocol

HOSTILE_CODEC = """\
import os, signal, time
from attacks.conceal import ConcealCodeblockAttack
from schemes.j2k import J2KScheme

CRASH, HANG = b"CRASH", b"HANG"

def _trap(data):
    if bytes(data) == CRASH:
        os.kill(os.getpid(), signal.SIGSEGV)
    if bytes(data) == HANG:
        time.sleep(600)

class TrappedJ2K(J2KScheme):
    def decode_one(self, data):
        _trap(data)
        return super().decode_one(data)

class TrappedConceal(ConcealCodeblockAttack):
    @staticmethod
    def rewrite(data, window, offset, /):
        _trap(data)
        return ConcealCodeblockAttack.rewrite(data, window, offset)
"""

PROTOCOL = """\
name: exec
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 6, seed: 0}
  folds: 2
recognizers: [{name: lbp, params: {radius: 1, cell: 14}}]
schemes: [{name: j2k, params: {window: 4, offset: 6}}]
attacks: [naive, conceal-codeblock]
views: [strength]
examples: 0
bootstrap: {n_boot: 0}
"""


def _square_all(chunk: list[int]) -> list[int]:
    return [x * x for x in chunk]


def test_local_executor_gives_every_chunk_once():
    got = dict(LocalExecutor(workers=1).map(_square_all, [[1, 2], [3], [4]]))
    assert got == {0: [1, 4], 1: [9], 2: [16]}
    assert isinstance(LocalExecutor(workers=2), Executor)


def _threads(chunk: list[int]) -> list[object]:
    import numpy  # noqa: F401  # its BLAS must be loaded to be counted
    from threadpoolctl import threadpool_info

    return [os.environ.get("OMP_NUM_THREADS"), sorted({p["num_threads"] for p in threadpool_info()})]


def test_pool_workers_run_numerical_libraries_on_one_thread():
    """The pool is the parallelism: a BLAS thread per core in every worker oversubscribes the machine."""
    executor = LocalExecutor(workers=2)
    try:
        got = dict(executor.map(_threads, [[0], [1]]))
    finally:
        executor.close()
    assert got == {0: ["1", [1]], 1: ["1", [1]]}


def test_map_chunks_uses_the_current_executor():
    class Recording(LocalExecutor):
        calls = 0

        def map(self, fn, chunks, *, isolated=False):  # noqa: ANN001, ANN202
            Recording.calls += 1
            return super().map(fn, chunks, isolated=isolated)

    with using(Recording(workers=1)) as ex:
        assert current_executor() is ex
        assert map_chunks(_square_all, list(range(7)), chunk_size=3) == [[0, 1, 4], [9, 16, 25], [36]]
    assert Recording.calls == 1 and current_executor() is None


def test_make_executor_refuses_what_cannot_work():
    with pytest.raises(ValueError, match="unknown executor 'ray'"):
        make_executor("ray", workers=1)
    with pytest.raises(ValueError, match="--scheduler needs --executor dask"):
        make_executor("local", workers=1, scheduler="tcp://h:8786")


def test_missing_dask_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ExecutorUnavailable, match=r"pip install -e '\.\[dask\]'"):
        DaskExecutor(workers=2)


def test_protocol_execution_block(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(PROTOCOL + "execution: {executor: dask, workers: 2}\n")
    assert load_protocol(p).model.execution.executor == "dask"
    p.write_text(PROTOCOL + "execution: {scheduler: tcp://h:8786}\n")
    with pytest.raises(ProtocolError, match="scheduler needs executor: dask"):
        load_protocol(p)


def _run(tmp_path: Path, name: str, executor: Executor) -> Path:
    p = tmp_path / "exec.yaml"
    p.write_text(textwrap.dedent(PROTOCOL))
    out = tmp_path / name
    try:
        run_protocol(
            load_protocol(p), RunOptions(out=out, cache=Cache(tmp_path / "c", enabled=False), executor=executor)
        )
    finally:
        executor.close()
    return out


def _comparable(results_path: Path) -> dict:
    data = json.loads(results_path.read_text())
    data.pop("provenance", None)  # times, host, versions
    data.pop("timing", None)
    return data


def test_dask_local_cluster_run_is_identical_to_a_local_run(tmp_path):
    pytest.importorskip("distributed")

    class Counting(DaskExecutor):
        chunks = 0

        def map(self, fn, chunks, *, isolated=False):  # noqa: ANN001, ANN202
            Counting.chunks += len(chunks)
            return super().map(fn, chunks, isolated=isolated)

    local = _run(tmp_path, "local", LocalExecutor(workers=2))
    dask = _run(tmp_path, "dask", Counting(workers=2))
    assert Counting.chunks >= 6  # protect, decode and conceal (72 faces: 2 chunks each) ran on the cluster
    scores = sorted(p.name for p in (local / "scores").iterdir())
    assert scores and scores == sorted(p.name for p in (dask / "scores").iterdir())
    for name in scores:
        assert (local / "scores" / name).read_bytes() == (dask / "scores" / name).read_bytes(), name
    assert _comparable(local / "results.json") == _comparable(dask / "results.json")


# --------------------------------------------------------------------------- hostile work

# Work that crashes its worker (SIGSEGV, as a decoder's memory bug would) or
# hangs in a way no Python exception can stop (SIGSTOP-like: sleeping in C).
HOSTILE = """\
import os, signal, time
from benchmark.core.executors import sample_deadline

def work(chunk):
    out = []
    for x in chunk:
        with sample_deadline():
            if x == -1:
                os.kill(os.getpid(), signal.SIGSEGV)
            if x == -2:
                time.sleep(600)
        out.append(x * 10)
    return out

def failed(items):
    return [None] * len(items)
"""

CRASH, HANG = -1, -2


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    (tmp_path / "hostile_work.py").write_text(HOSTILE)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get the parent's sys.path
    import hostile_work

    return hostile_work


def _hostile_items() -> list[int]:
    items = list(range(1, 21))
    items[4], items[13] = CRASH, HANG
    return items


def _expected(items: list[int]) -> list[int | None]:
    return [None if x < 0 else x * 10 for x in items]


def test_isolated_work_survives_a_crash_and_a_hang_and_counts_them(hostile, caplog):
    items = _hostile_items()
    with LocalExecutor(workers=2) as ex, using(ex, sample_time_limit=1.0), caplog.at_level("WARNING"):
        parts = map_chunks(hostile.work, items, chunk_size=4, failure=hostile.failed, desc="decode x")
        again = map_chunks(hostile.work, list(range(1, 9)), chunk_size=4, failure=hostile.failed)
    assert [x for part in parts for x in part] == _expected(items)
    assert [x for part in again for x in part] == _expected(list(range(1, 9)))  # the pool was replaced
    warned = [r.getMessage() for r in caplog.records if r.name == "facesec.isolation"]
    assert len(warned) == 2
    assert warned[0].startswith("decode x: item 4 crashed its worker or ran past the 1 s time limit")
    assert warned[1].startswith("decode x: item 13 ")


def test_work_that_is_not_isolated_still_fails_loudly_when_a_worker_dies(hostile):
    from benchmark.core.executors import WorkerLost

    with LocalExecutor(workers=2) as ex, pytest.raises(WorkerLost, match="worker process died"):
        dict(ex.map(hostile.work, [[1, 2], [CRASH], [3]]))


def test_hostile_codestreams_become_failed_samples_of_a_real_decode(tmp_path, monkeypatch):
    """The real decode and conceal paths: a stuck and a crashing codestream among real ones."""
    (tmp_path / "hostile_codec.py").write_text(HOSTILE_CODEC)
    monkeypatch.syspath_prepend(str(tmp_path))
    import hostile_codec

    from benchmark.core.keys import MasterKey
    from tests.images import wave_image

    scheme = hostile_codec.TrappedJ2K(window=4, offset=6)
    faces = np.stack([wave_image((112, 112, 3), seed=i) for i in range(6)])
    key = MasterKey.random().application("t")
    blobs = scheme.protect(faces, key, [f"s{i}" for i in range(6)], ["a"] * 6)
    hostile_blobs = [*blobs[:2], hostile_codec.CRASH, *blobs[2:4], hostile_codec.HANG, *blobs[4:]]
    clean_faces, clean_failed = scheme.decode(blobs)
    assert not clean_failed.any()
    with LocalExecutor(workers=2) as ex, using(ex, sample_time_limit=1.0):
        got, failed = scheme.decode(hostile_blobs)
        concealed = hostile_codec.TrappedConceal().attack(hostile_blobs, scheme)
    assert failed.tolist() == [False, False, True, False, False, True, False, False]
    keep = ~failed
    assert np.array_equal(got[keep], clean_faces)
    assert not got[failed].any()
    assert concealed.failed.tolist() == failed.tolist()


def test_dask_isolated_work_survives_a_crash_and_a_hang(hostile):
    pytest.importorskip("distributed")
    items = _hostile_items()
    ex = DaskExecutor(workers=2)
    try:
        with using(ex, sample_time_limit=1.0):
            parts = map_chunks(hostile.work, items, chunk_size=4, failure=hostile.failed)
    finally:
        ex.close()
    assert [x for part in parts for x in part] == _expected(items)


def test_an_image_file_that_kills_its_worker_is_skipped_with_a_reason(tmp_path, monkeypatch):
    """Align runs isolated: a file whose reading kills the worker (simulated: every run of a
    chunk holding it is reported lost, as a dead worker's is) is skipped with a reason, and
    the run goes on with the others."""
    from PIL import Image

    from benchmark.core import parallel
    from benchmark.core.executors import LOST
    from benchmark.data.datasets.synthetic import SyntheticFaces

    s = SyntheticFaces(n_subjects=4, n_images=3, seed=0).load(None)
    for sid, subj, img in zip(s.ids, s.subjects, s.images):
        (tmp_path / "faces" / subj).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "faces" / subj / (Path(sid).name + ".png"))
    poisoned = sorted((tmp_path / "faces").rglob("*.png"))[4]

    class DiesOnPoison(LocalExecutor):
        def map(self, fn, chunks, *, isolated=False):  # noqa: ANN001, ANN202
            for i, result in super().map(fn, chunks, isolated=isolated):
                yield i, LOST if isolated and any(Path(p) == poisoned for p in chunks[i]) else result

    monkeypatch.setattr(parallel, "LocalExecutor", DiesOnPoison)  # the narrowing-down executor too
    p = tmp_path / "p.yaml"
    p.write_text(
        f"name: f\ndataset: {{name: folder, root: {tmp_path / 'faces'}, folds: 2}}\n"
        "recognizers: [{name: lbp, params: {radius: 1, cell: 14}}]\nmetrics: [eer]\nbootstrap: {n_boot: 0}\n"
    )
    out = run_protocol(
        load_protocol(p),
        RunOptions(out=tmp_path / "run", cache=Cache(tmp_path / "c"), executor=DiesOnPoison(workers=1)),
    )
    dataset = out.results["dataset"]
    assert dataset["n_skipped"] == 1
    (skipped,) = dataset["skipped"]
    assert poisoned.stem in skipped["id"] and "crashed its worker or ran past the 60 s time limit" in skipped["reason"]

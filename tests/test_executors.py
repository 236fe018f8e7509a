"""Executors: a local pool and Dask give the same chunks back in order, and the same run."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

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


def test_map_chunks_uses_the_current_executor():
    class Recording(LocalExecutor):
        calls = 0

        def map(self, fn, chunks):  # noqa: ANN001, ANN202
            Recording.calls += 1
            return super().map(fn, chunks)

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

        def map(self, fn, chunks):  # noqa: ANN001, ANN202
            Counting.chunks += len(chunks)
            return super().map(fn, chunks)

    local = _run(tmp_path, "local", LocalExecutor(workers=2))
    dask = _run(tmp_path, "dask", Counting(workers=2))
    assert Counting.chunks >= 6  # protect, decode and conceal (72 faces: 2 chunks each) ran on the cluster
    scores = sorted(p.name for p in (local / "scores").iterdir())
    assert scores and scores == sorted(p.name for p in (dask / "scores").iterdir())
    for name in scores:
        assert (local / "scores" / name).read_bytes() == (dask / "scores" / name).read_bytes(), name
    assert _comparable(local / "results.json") == _comparable(dask / "results.json")

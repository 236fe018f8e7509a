"""Process pool and progress: results in order, workers die with their parent, progress in logs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark.core.executors import LOST, LocalExecutor, using
from benchmark.core.parallel import Progress, _narrow_down, map_chunks
from benchmark.engine.stages import _align_failed

REPO = Path(__file__).resolve().parents[1]


def test_map_chunks_keeps_chunk_order_serial():
    assert map_chunks(sum, list(range(10)), workers=1, chunk_size=3) == [3, 12, 21, 9]


def test_progress_logs_counts_rate_and_eta_when_not_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(Progress, "LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="facesec.progress")
    with Progress(10, "embed sface", unit="img", log_lines=True) as bar:
        bar.update(4)
        bar.set_postfix(loss="0.1234")
        bar.update(6)
    lines = [r.getMessage() for r in caplog.records if r.name == "facesec.progress"]
    assert lines[0].startswith("embed sface: 4/10 img (40%), ") and "ETA " in lines[0]
    assert lines[1].startswith("embed sface: 10/10 img (100%)") and lines[1].endswith(", loss=0.1234")
    assert lines[-1].startswith("embed sface: done, 10 img in ")


def test_progress_is_quiet_between_periods(caplog, monkeypatch):
    monkeypatch.setattr(Progress, "LOG_EVERY", 3600.0)
    monkeypatch.setattr(Progress, "_last_line", time.monotonic())
    caplog.set_level(logging.INFO, logger="facesec.progress")
    with Progress(5, "short", log_lines=True) as bar:
        bar.update(5)
    assert not [r for r in caplog.records if r.name == "facesec.progress"]


_HELPER = """
import os, time
from pathlib import Path

def record_and_sleep(chunk, folder):
    Path(folder, str(os.getpid())).touch()
    time.sleep(120)
    return chunk
"""

_PARENT = """
import functools, sys
sys.path.insert(0, {helper_dir!r})
from benchmark.core.parallel import map_chunks
import helper_mod

if __name__ == "__main__":
    map_chunks(functools.partial(helper_mod.record_and_sleep, folder={folder!r}), list(range(4)), workers=2, chunk_size=1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its new parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_workers_die_when_the_main_process_is_killed(tmp_path):
    (tmp_path / "helper_mod.py").write_text(textwrap.dedent(_HELPER))
    folder = tmp_path / "pids"
    folder.mkdir()
    script = tmp_path / "parent.py"
    script.write_text(_PARENT.format(helper_dir=str(tmp_path), folder=str(folder)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    parent = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.iterdir())) < 2:
            assert time.monotonic() < deadline, "workers did not start"
            assert parent.poll() is None, "the parent exited early"
            time.sleep(0.2)
        workers = [int(p.name) for p in folder.iterdir()]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        if parent.poll() is None:
            parent.kill()


class _AlwaysLost:
    """An isolation executor whose every chunk is lost (its worker crashed or ran past the limit)."""

    workers = 1

    def map(self, fn, chunks, *, isolated=False):
        return iter([(i, LOST) for i in range(len(chunks))])


@pytest.mark.parametrize("limit, shown", [(0.25, "0.25"), (0.5, "0.5"), (60.0, "60"), (1.5, "1.5")])
def test_time_limits_under_a_second_are_not_printed_as_0(caplog, limit, shown):
    with using(LocalExecutor(workers=1), sample_time_limit=limit), caplog.at_level("WARNING"):
        failed = _narrow_down(lambda x: x, [7], slice(0, 1), lambda items: "failed", _AlwaysLost(), "decode x")
        _, _, reasons = _align_failed([Path("a.png")])
    assert failed == ["failed"]
    (warned,) = [r.getMessage() for r in caplog.records if r.name == "facesec.isolation"]
    assert f"ran past the {shown} s time limit; counted as failed" in warned
    assert reasons == [f"reading or aligning it crashed its worker or ran past the {shown} s time limit"]

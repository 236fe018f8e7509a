"""A real browser opens a run report and a leaderboard: no console message, a screenshot that is not blank.

Headless Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it
where it can). Chromium logs every console message of the page to stderr as
``CONSOLE`` lines when started with ``--enable-logging=stderr``; it does not
tell errors from logs there, so the pages must log nothing at all (they
have no reason to). The tests skip, saying why, where Chromium is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.core.cache import Cache
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import load_protocol
from reports.leaderboard import make_leaderboard
from reports.render import write_report

PROTOCOL = """\
name: browser
notes: A tiny warping run for the browser test.
dataset:
  name: synthetic
  params: {n_subjects: 8, n_images: 4, seed: 1}
  folds: 2
  seed: 0
recognizers:
  - {name: lbp, params: {radius: 2}}
schemes:
  - warp_16_6
  - name: j2k
    params: {progression: layer, window: 4}
    grid: {offset: [0, 4]}
attacks: [naive]
views: [preservation, renewal, strength, linkage]
metrics: [eer, fnmr_at_fmr, d_prime, unlinkability]
bootstrap: {n_boot: 20, seed: 0}
"""

_CONSOLE = re.compile(r":CONSOLE[:(]")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium not found (install Debian's 'chromium' package to run the browser tests)")


def _open(page: Path, screenshot: Path) -> list[str]:
    """Load ``page`` headless; returns the console lines Chromium logged, after saving a screenshot."""
    cmd = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where the sandbox cannot start
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={screenshot.parent / 'profile'}",
        "--window-size=1280,1600",
        "--virtual-time-budget=3000",  # let the page's scripts run before the shot
        f"--screenshot={screenshot}",
        page.resolve().as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Chromium could not run here: {exc}")
    if not screenshot.exists():
        pytest.skip(f"Chromium could not run here (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return [line for line in proc.stderr.splitlines() if _CONSOLE.search(line)]


def _assert_not_blank(screenshot: Path) -> None:
    pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.int16)
    # Text, tables and figures: a good share of non-white pixels and many colours.
    non_white = np.mean(np.any(pixels < 235, axis=-1))
    colours = np.unique(pixels.reshape(-1, 3), axis=0).shape[0]
    assert non_white > 0.02, f"screenshot is almost blank ({non_white:.1%} non-white)"
    assert colours > 16, f"screenshot has {colours} colours"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    _chromium()  # skip before the run when there is no browser
    root = tmp_path_factory.mktemp("browser")
    protocol = root / "browser.yaml"
    protocol.write_text(PROTOCOL)
    out = root / "run"
    result = run_protocol(load_protocol(protocol), RunOptions(out=out, cache=Cache(root / "cache"), workers=1))
    write_report(result.results, out / "report.html")
    return out


def test_report_opens_without_console_messages(run_dir, tmp_path):
    shot = tmp_path / "report.png"
    console = _open(run_dir / "report.html", shot)
    assert console == [], console
    _assert_not_blank(shot)


def test_leaderboard_opens_without_console_messages(run_dir, tmp_path):
    board = tmp_path / "board"
    make_leaderboard([run_dir], board)  # with the shipped reported entries
    shot = tmp_path / "leaderboard.png"
    console = _open(board / "leaderboard.html", shot)
    assert console == [], console
    _assert_not_blank(shot)


def test_console_lines_are_caught(tmp_path):
    # The check itself: a page that throws is seen.
    page = tmp_path / "bad.html"
    page.write_text("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    console = _open(page, tmp_path / "bad.png")
    assert any("undefinedFunction" in line for line in console)

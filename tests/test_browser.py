"""A real browser opens a run report and a leaderboard: no console message, a screenshot that is not blank.

Headless Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it
where it can). Chromium logs every console message of the page to stderr as
``CONSOLE`` lines when started with ``--enable-logging=stderr``; it does not
tell errors from logs there, so the pages must log nothing at all (they
have no reason to). The tests skip, saying why, where Chromium is missing.
"""

from __future__ import annotations

import html
import json
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
certify:
  - {metric: delta_eer, view: preservation, max: 0.01}
  - {metric: sar_at_fmr_0.001, view: "strength:*", max: 0.01}
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


#: The first screen a reader sees (the acceptance size of issue 25).
FIRST_SCREEN = (1400, 900)

# Appended to a copy of the report (whose CSP is removed so that it may run): after layout, writes what the first
# screen shows into a <pre id="probe"> that --dump-dom prints. Headless Chromium's --dump-dom lays the page out
# at the window's width but reports a shorter innerHeight than a screenshot of the same size shows, so the height
# of the first screen is given.
_PROBE = """<script>
addEventListener("load", () => {
  const height = HEIGHT;
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= height; };
  const summary = document.querySelector("#summary-table");
  const certification = document.querySelector("#certification table");
  const rows = summary ? [...summary.querySelectorAll("tbody tr")] : [];
  const closedAbove = [...document.querySelectorAll("details:not([open])")].filter(
    (d) => summary && d.compareDocumentPosition(summary) & Node.DOCUMENT_POSITION_FOLLOWING);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    width: innerWidth,
    certification: certification !== null && shown(certification),
    schemes: [...new Set(rows.filter(shown).map((r) => r.querySelector("th a").textContent.trim()))],
    all_schemes: [...new Set(rows.map((r) => r.querySelector("th a").textContent.trim()))],
    closed_above: closedAbove.length,
  });
  document.body.append(probe);
});
</script>"""


def _first_screen(page: Path, work: Path) -> dict:
    """What a reader sees of ``page`` without scrolling or clicking, in a window of :data:`FIRST_SCREEN`."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    probed = work / "probed.html"
    probed.write_text(text.replace("</body>", _PROBE.replace("HEIGHT", str(FIRST_SCREEN[1])) + "</body>"))
    cmd = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={work / 'profile'}",
        "--window-size={},{}".format(*FIRST_SCREEN),
        "--virtual-time-budget=3000",
        "--dump-dom",
        probed.resolve().as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Chromium could not run here: {exc}")
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    if found is None:
        pytest.skip(f"Chromium could not run here (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")

    return json.loads(html.unescape(found.group(1)))


def _assert_verdict_and_summary_first(page: Path, work: Path) -> None:
    seen = _first_screen(page, work)
    assert seen["width"] == FIRST_SCREEN[0], seen
    assert seen["certification"], f"the verdict table is not on the first screen: {seen}"
    assert seen["closed_above"] == 0, f"collapsed blocks above the summary: {seen}"
    assert len(seen["all_schemes"]) >= 2, seen
    assert len(seen["schemes"]) >= 2, f"the first screen shows the summary of {seen['schemes']} only: {seen}"


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


def test_report_opens_with_the_verdict_and_the_summary(run_dir, tmp_path):
    _assert_verdict_and_summary_first(run_dir / "report.html", tmp_path)


@pytest.mark.slow
def test_quickstart_report_opens_with_the_verdict_and_the_summary(tmp_path):
    # The README's first command, as a new user runs it (a cold cache: minutes).
    _chromium()
    out = tmp_path / "quickstart"
    lp = load_protocol(Path(__file__).resolve().parents[1] / "protocols" / "quickstart.yaml")
    result = run_protocol(lp, RunOptions(out=out, cache=Cache(tmp_path / "cache"), workers=2))
    assert {c["verdict"] for c in result.results["certification"]} == {"PASS", "FAIL", "UNRESOLVED"}
    write_report(result.results, out / "report.html")
    _assert_verdict_and_summary_first(out / "report.html", tmp_path)

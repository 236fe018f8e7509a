"""Leaderboard over many runs: attacks ranked per scheme setting, schemes ranked by their strongest attack.

Inputs are ``results.json`` files of runs (*measured* figures) and small
YAML files, one per published figure (*reported* figures, see
``reports/reported/README.md``). Outputs are one self-contained HTML page
(inline CSS and a small inline row filter, nothing loaded from elsewhere,
Jinja2 autoescape), the same tables as Markdown, and two CSV files.

Rules the page keeps:

* Groups never mix datasets or recognizers: measured rows are grouped by
  dataset (name and the provenance ``dataset_fingerprint``, a content hash)
  and recognizer (name and parameters). Rows of several protocols in one
  group show their run and protocol, and every row links to its run's
  ``report.html`` and to its provenance (results file, git commit, version,
  creation time).
* Per (dataset, recognizer, scheme setting) attacks are ranked by the
  strength-view EER (attack output of the protected probe against the plain
  reference): the lower the EER, the stronger the attack; ties go to the
  higher SAR at the chosen FMR. Linkage D↔sys and maximal linkability,
  PSNR/SSIM of the attack output are shown beside, with CIs.
* The scheme table ranks scheme settings by their strongest known attack
  (the minimum strength EER over attacks): the security a scheme can claim
  is what survives the best attack.
* Reported figures are kept apart (their own section and badge) and are
  never ranked together with measured ones; where a reported figure is shown
  beside a measured one the conventions of both (EER interpolation, D↔sys
  bins, FMR targets) are shown, and any difference is spelled out.
* Runs on demo data (``dataset.demo``: the synthetic faces) are labelled
  "demo data" in every output and never set beside reported figures.

Figures stay numbers in every structure here; they are formatted only when
rendered. Outputs are written atomically, all at the end, so a bad input
never leaves a half-written leaderboard behind.

Modules, lowest first (each imports only those before it):

* :mod:`~reports.leaderboard.common`: the error type, metric types, value helpers;
* :mod:`~reports.leaderboard.entries`: the strict model of a reported entry and its YAML files;
* :mod:`~reports.leaderboard.runs`: finding and reading measured ``results.json`` files;
* :mod:`~reports.leaderboard.board`: grouping, ranking, conventions, comparisons (the data model);
* :mod:`~reports.leaderboard.render`: HTML, Markdown, CSV, writing, and :func:`make_leaderboard`.
"""

from reports.leaderboard.board import (
    DEFAULT_SAR_TARGET,
    HARNESS_BINS_RULE,
    HARNESS_EER_RULE,
    PROTOCOL_BINS_RULE,
    Comparison,
    Group,
    Leaderboard,
    Line,
    SchemeBoard,
    build_leaderboard,
    measured_conventions,
)
from reports.leaderboard.common import LeaderboardError
from reports.leaderboard.entries import (
    NOT_STATED,
    SHIPPED_REPORTED_DIR,
    Conventions,
    DatasetRef,
    EntryFile,
    RecognizerRef,
    ReportedEntry,
    ReportedMetrics,
    entry_paths,
    load_entries,
    load_entry,
)
from reports.leaderboard.render import (
    OUTPUT_FILES,
    make_leaderboard,
    render_csv,
    render_html,
    render_markdown,
    render_schemes_csv,
    write_leaderboard,
)
from reports.leaderboard.runs import Run, load_run, load_runs, results_paths

__all__ = [
    "SHIPPED_REPORTED_DIR",
    "DEFAULT_SAR_TARGET",
    "HARNESS_EER_RULE",
    "HARNESS_BINS_RULE",
    "PROTOCOL_BINS_RULE",
    "NOT_STATED",
    "OUTPUT_FILES",
    "LeaderboardError",
    "Conventions",
    "DatasetRef",
    "RecognizerRef",
    "ReportedMetrics",
    "ReportedEntry",
    "EntryFile",
    "Run",
    "Line",
    "SchemeBoard",
    "Group",
    "Comparison",
    "Leaderboard",
    "results_paths",
    "load_run",
    "load_runs",
    "entry_paths",
    "load_entry",
    "load_entries",
    "measured_conventions",
    "build_leaderboard",
    "render_html",
    "render_markdown",
    "render_csv",
    "render_schemes_csv",
    "write_leaderboard",
    "make_leaderboard",
]

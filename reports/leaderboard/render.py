"""Writing the leaderboard: one self-contained HTML page (Jinja2), the same tables as Markdown, two CSV files.

The page has inline CSS and a small inline row filter, nothing loaded from
elsewhere, and Jinja2 autoescape; Markdown cells escape user text. Figures
are formatted only here (:func:`reports.render.format_metric`). Everything
is rendered before anything is written, and each file is written
atomically, so a bad input never leaves a half-written leaderboard behind.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from benchmark.core.cache import atomic_write_text
from benchmark.core.strict_yaml import one_line
from benchmark.metrics.unlinkability import MAX_DEFAULT_BINS, MIN_BINS
from reports.leaderboard.board import (
    DEFAULT_SAR_TARGET,
    HARNESS_BINS_RULE,
    HARNESS_EER_RULE,
    Group,
    Leaderboard,
    Line,
    build_leaderboard,
)
from reports.leaderboard.common import PLAIN, LeaderboardError, Metrics, canonical, finite
from reports.leaderboard.entries import NOT_STATED, SHIPPED_REPORTED_DIR, Conventions, load_entries
from reports.leaderboard.runs import Run, load_runs
from reports.render import format_metric

__all__ = [
    "OUTPUT_FILES",
    "render_html",
    "render_markdown",
    "render_csv",
    "render_schemes_csv",
    "write_leaderboard",
    "make_leaderboard",
]

#: Names of the files :func:`write_leaderboard` writes into the output folder.
OUTPUT_FILES = ("leaderboard.html", "leaderboard.md", "leaderboard.csv", "schemes.csv")

_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
_TEMPLATE = "leaderboard.html.j2"
_DASH = "—"
_BINS_NOTE = (
    "Published D↔sys values use 100 equal-width bins over the pooled score range; the harness default "
    f"(n_mated // 10 bins, clipped to [{MIN_BINS}, {MAX_DEFAULT_BINS}]) reads up to about 0.1 lower on small sets."
)


# --------------------------------------------------------------------------- rendering helpers


def _format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _href(path: Path, out_dir: Path) -> str:
    """A link from the output folder to ``path``: relative where possible, URL-quoted."""
    target = Path(path).resolve()
    try:
        rel = os.path.relpath(target, Path(out_dir).resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return target.as_uri()
    return quote(Path(rel).as_posix())


def _metric(key: str, value: Any) -> str:
    return format_metric(key, value)


def _ci(key: str, metrics: Metrics | None) -> str:
    low, high = finite(metrics, key + "_ci_low"), finite(metrics, key + "_ci_high")
    if low is None and high is None:
        return ""
    return f"{format_metric(key, low)} – {format_metric(key, high)}"


def _get(metrics: Metrics | None, key: str) -> float | None:
    return finite(metrics, key)


def _fmr_text(target: float) -> str:
    return format_metric("fmr", target)


def _targets_text(targets: Sequence[float]) -> str:
    return ", ".join(_fmr_text(t) for t in targets) if targets else NOT_STATED


def _bins_text(conv: Conventions) -> str:
    if conv.bins is None:
        return conv.d_sys_bins
    return f"{conv.bins} bins: {conv.d_sys_bins}"


def _conventions_text(conv: Conventions) -> str:
    return (
        f"EER: {conv.eer_interpolation}; D↔sys / max. linkability: {_bins_text(conv)}; "
        f"FMR targets: {_targets_text(conv.fmr_targets)}"
    )


def _dataset_text(group: Group) -> str:
    parts = [group.dataset_name]
    if group.roots:
        parts.append(f"root {', '.join(group.roots)}")
    if group.fingerprint:
        parts.append(f"fingerprint {group.fingerprint[:12]}")
    elif not group.reported:
        parts.append("fingerprint unknown")
    if group.n_faces is not None:
        parts.append(f"{group.n_faces:,} faces")
    if group.n_subjects is not None:
        parts.append(f"{group.n_subjects:,} subjects")
    return " · ".join(parts)


def _dataset_short(group: Group) -> str:
    """Dataset name, with the last part of each root (measured) so that ``folder`` datasets read apart."""
    roots = [Path(root).name for root in group.roots if Path(root).name]
    return f"{group.dataset_name} ({', '.join(roots)})" if roots else group.dataset_name


def _recognizer_text(group: Group) -> str:
    params = _format_params(group.recognizer_params)
    return f"{group.recognizer} ({params})" if params else group.recognizer


def _split_text(run: Run) -> str:
    folds = _DASH if run.folds is None else str(run.folds)
    tests = ", ".join(map(str, run.test_folds)) or _DASH
    seed = _DASH if run.seed is None else str(run.seed)
    return f"folds {folds}, test folds [{tests}], seed {seed}"


def _source_text(line: Line) -> str:
    if line.run is not None:
        return f"{line.run.label} {line.run.protocol}"
    return ", ".join(item.path.name for item in line.entries)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        metric=lambda value, key: _metric(key, value),
        params=_format_params,
        short=lambda text, n=12: (text or "")[:n],
    )
    env.globals.update(
        get=_get,
        ci=_ci,
        fmr_text=_fmr_text,
        targets_text=_targets_text,
        bins_text=_bins_text,
        dataset_text=_dataset_text,
        dataset_short=_dataset_short,
        recognizer_text=_recognizer_text,
        split_text=_split_text,
        bins_note=_BINS_NOTE,
        harness_eer=HARNESS_EER_RULE,
        harness_bins=HARNESS_BINS_RULE,
        not_stated=NOT_STATED,
    )
    return env


def render_html(board: Leaderboard, out_dir: Path) -> str:
    """The leaderboard as one self-contained HTML page.

    Args:
        board: The leaderboard.
        out_dir: The folder the page will be written to (links are relative to it).

    Returns:
        The HTML text; identical inputs give identical text.
    """
    return _environment().get_template(_TEMPLATE).render(board=board, links=_links(board, out_dir))


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#!|~&])")


def _md(text: Any) -> str:
    """Cell text with Markdown and inline-HTML characters escaped (a name cannot inject markup)."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(str(text)))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def _md_value(key: str, metrics: Metrics | None) -> str:
    value = format_metric(key, _get(metrics, key))
    ci = _ci(key, metrics)
    return _md(f"{value} [{ci}]" if ci else value)


def _md_source(line: Line, links: Mapping[int, Mapping[str, str | None]]) -> str:
    if line.run is None:
        return _md(_source_text(line))
    report = links[line.run.index]["report"]
    text = _md(_source_text(line) + (" (demo data)" if line.run.demo else ""))
    return f"[{text}]({report})" if report else text


def _md_attack(line: Line) -> str:
    """The attack's name, with the flag of a learned attack stopped on a budget."""
    return _md(line.attack) + (f" ({_md(line.not_converged)})" if line.not_converged else "")


def _md_group(group: Group, board: Leaderboard, links: Mapping[int, Mapping[str, str | None]]) -> list[str]:
    sar = f"SAR @ FMR {_fmr_text(board.sar_target)}"
    badge = "**\\[reported\\]** " if group.reported else ""
    badge += "**\\[demo data\\]** " if group.demo else ""
    out = [f"### {badge}{_md(_dataset_text(group))} — recognizer {_md(_recognizer_text(group))}", ""]
    if group.reported:
        out += [f"Source: {_md(group.citation or '')}", ""]
        if group.url:
            out += [f"<{group.url}>", ""]
        if group.doi:
            out += [f"DOI <https://doi.org/{quote(group.doi)}>", ""]
        if group.dataset_description:
            out += [f"Dataset: {_md(group.dataset_description)}", ""]
        for note in group.notes:
            out += [f"Note: {_md(note)}", ""]
    if len(group.protocols) > 1:
        out += [f"Rows from {len(group.protocols)} protocols: {_md(', '.join(group.protocols))}.", ""]
    if group.splits_differ:
        out += ["The runs evaluated different splits (folds, test folds or seed): compare with care.", ""]
    for line in group.baselines:
        value = _md_value("eer", line.strength)
        out += [
            f"Baseline (no protection): EER {value} ({_md_source(line, links)}) \\[{board.footnote(line.conventions)}\\]",
            "",
        ]
    if group.schemes:
        out += ["Schemes ranked by their strongest known attack (1 = highest EER under its strongest attack):", ""]
        rows = []
        for scheme in group.schemes:
            s, m = scheme.strongest, scheme.most_linking
            rows.append(
                [
                    _md(scheme.rank if scheme.rank is not None else _DASH),
                    _md(scheme.scheme) + (f" ({_md(_format_params(scheme.params))})" if scheme.params else ""),
                    str(scheme.n_attacks),
                    _md_attack(s) if s else _DASH,
                    _md_value("eer", s.strength) if s else _DASH,
                    _md_value(board.sar_key, s.strength) if s else _DASH,
                    _md(m.attack) if m else _DASH,
                    _md_value("d_sys", m.linkage) if m else _DASH,
                    f"\\[{board.footnote(s.conventions)}\\]" if s else _DASH,
                    _md_source(s, links) if s else _DASH,
                ]
            )
        out += _md_table(
            [
                "Rank",
                "Scheme",
                "Attacks",
                "Strongest attack",
                "Its EER",
                f"Its {sar}",
                "Most linking attack",
                "Its D↔sys",
                "Conv.",
                "Source",
            ],
            rows,
        )
    for scheme in group.schemes:
        out += [f"#### Scheme {_md(scheme.scheme)}: attacks, strongest first (lowest strength EER)", ""]
        rows = [
            [
                _md(line.rank if line.rank is not None else _DASH),
                _md_attack(line),
                _md_value("eer", line.strength),
                _md_value(board.sar_key, line.strength),
                _md_value("d_sys", line.linkage),
                _md_value("linkability_max", line.linkage),
                _md_value("psnr", line.strength),
                _md_value("ssim", line.strength),
                f"\\[{board.footnote(line.conventions)}\\]",
                _md_source(line, links),
            ]
            for line in scheme.lines
        ]
        out += _md_table(
            [
                "Rank",
                "Attack",
                "Strength EER",
                sar,
                "Linkage D↔sys",
                "Max. linkability (bits)",
                "PSNR (dB)",
                "SSIM",
                "Conv.",
                "Source",
            ],
            rows,
        )
    return out


def render_markdown(board: Leaderboard, out_dir: Path) -> str:
    """The leaderboard as Markdown (same tables as the HTML page; user text escaped).

    Args:
        board: The leaderboard.
        out_dir: The folder the file will be written to (links are relative to it).

    Returns:
        The Markdown text.
    """
    links = _links(board, out_dir)
    out = [
        "# FaceSec Bench leaderboard",
        "",
        f"{len(board.runs)} measured run(s), {len(board.entries)} reported entr{'y' if len(board.entries) == 1 else 'ies'}. "
        "Attacks are ranked per (dataset, recognizer, scheme setting) by the strength-view EER: lower = stronger "
        "attack. Schemes are ranked by the EER under their strongest known attack. Reported figures are never ranked "
        "with measured ones; runs on demo data (synthetic faces) are labelled so and never set beside them. "
        "\\[n\\] refers to the conventions below.",
        "",
        "## Measured",
        "",
    ]
    if not board.measured:
        out += ["No measured results.", ""]
    for group in board.measured:
        out += _md_group(group, board, links)
    out += ["## Reported (published figures, not measured here)", ""]
    if not board.reported:
        out += ["No reported entries.", ""]
    for group in board.reported:
        out += _md_group(group, board, links)
    if board.comparisons:
        out += [
            "## Measured beside reported (not a ranking)",
            "",
            "Same scheme label and attack; datasets, recognizers and conventions may differ. " + _md(_BINS_NOTE),
            "",
        ]
        rows = [
            [
                _md(c.scheme),
                _md(c.reported.attack),
                _md(f"{c.reported_group.recognizer} · {_dataset_short(c.reported_group)}"),
                _md_value("eer", c.reported.strength),
                _md_value("d_sys", c.reported.linkage),
                f"\\[{board.footnote(c.reported.conventions)}\\]",
                _md(f"{_recognizer_text(c.measured_group)} · {_dataset_short(c.measured_group)}"),
                _md_value("eer", c.measured.strength),
                _md_value("d_sys", c.measured.linkage),
                f"\\[{board.footnote(c.measured.conventions)}\\]",
                _md_source(c.measured, links),
                _md(", ".join(c.differs) or "none"),
            ]
            for c in board.comparisons
        ]
        out += _md_table(
            [
                "Scheme",
                "Attack",
                "Reported: recognizer · dataset",
                "EER",
                "D↔sys",
                "Conv.",
                "Measured: recognizer · dataset",
                "EER",
                "D↔sys",
                "Conv.",
                "Run",
                "Conventions differ or unstated",
            ],
            rows,
        )
    out += ["## Conventions", "", _md(_BINS_NOTE), ""]
    out += [f"{i}. {_md(_conventions_text(conv))}" for i, conv in enumerate(board.conventions, start=1)]
    out += ["", "## Runs (provenance)", ""]
    if board.runs:
        rows = [
            [
                run.label,
                _md(run.protocol + (" (demo data)" if run.demo else "")),
                _md(_split_text(run)),
                f"[results.json]({links[run.index]['results']})",
                f"[report]({links[run.index]['report']})" if links[run.index]["report"] else _DASH,
                _md(run.git_commit or _DASH),
                _md(run.facesec_version or _DASH),
                _md(run.created or _DASH),
            ]
            for run in board.runs
        ]
        out += _md_table(["Run", "Protocol", "Split", "Results", "Report", "Git commit", "Version", "Created"], rows)
    else:
        out += ["No runs.", ""]
    if board.entries:
        out += ["## Reported entries", ""]
        out += [f"- {_md(item.path.name)}: {_md(item.entry.citation)}" for item in board.entries]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- CSV


def _csv_number(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


_LINE_FIGURES = ("eer", "eer_ci_low", "eer_ci_high")
_QUALITY = ("psnr", "psnr_ci_low", "psnr_ci_high", "ssim", "ssim_ci_low", "ssim_ci_high")
_LINKAGE = (
    "eer",
    "d_sys",
    "d_sys_ci_low",
    "d_sys_ci_high",
    "d_sys_null_high",
    "linkability_max",
    "linkability_max_ci_low",
    "linkability_max_ci_high",
)


def _group_columns(group: Group) -> list[str]:
    return [
        "reported" if group.reported else "measured",
        "true" if group.demo else "false",
        group.dataset_name,
        group.fingerprint or "",
        _csv_number(group.n_faces),
        _csv_number(group.n_subjects),
        group.recognizer,
        canonical(group.recognizer_params) if group.recognizer_params else "",
    ]


def _provenance_columns(line: Line, links: Mapping[int, Mapping[str, str | None]]) -> list[str]:
    conv = line.conventions
    run = line.run
    entry = line.entries[0].entry if line.entries else None
    return [
        conv.eer_interpolation,
        conv.d_sys_bins,
        _csv_number(conv.bins),
        ";".join(_csv_number(t) for t in conv.fmr_targets),
        run.label if run else "",
        run.protocol if run else "",
        (links[run.index]["results"] or "") if run else "",
        (links[run.index]["report"] or "") if run else "",
        (run.git_commit or "") if run else "",
        (run.facesec_version or "") if run else "",
        (run.created or "") if run else "",
        entry.citation if entry else "",
        (entry.url or "") if entry else "",
        (entry.doi or "") if entry else "",
        ";".join(item.path.name for item in line.entries),
    ]


_PROVENANCE_HEADER = [
    "eer_interpolation",
    "d_sys_bins_rule",
    "bins",
    "fmr_targets",
    "run",
    "protocol",
    "results",
    "report",
    "git_commit",
    "facesec_version",
    "created",
    "citation",
    "url",
    "doi",
    "entry_files",
]
_GROUP_HEADER = [
    "section",
    "demo_data",
    "dataset",
    "dataset_fingerprint",
    "n_faces",
    "n_subjects",
    "recognizer",
    "recognizer_params",
]


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _links(board: Leaderboard, out_dir: Path) -> dict[int, dict[str, str | None]]:
    return {
        run.index: {
            "results": _href(run.results_path, out_dir),
            "report": _href(run.report_path, out_dir) if run.report_path is not None else None,
        }
        for run in board.runs
    }


def render_csv(board: Leaderboard, out_dir: Path) -> str:
    """One CSV line per baseline and per attack line (measured, then reported); numbers as plain numbers.

    ``eer``, ``sar_at_fmr`` (at ``fmr``), ``psnr``, ``ssim`` are the strength
    view's (a baseline's own EER on ``line`` = ``baseline``); ``linkage_*``
    the linkage view's; ``rank`` is the attack's rank within its
    (section, dataset, recognizer, scheme); ``demo_data`` is ``true`` for
    lines measured on demo data (the synthetic faces).

    Args:
        board: The leaderboard.
        out_dir: The output folder (paths are relative to it).

    Returns:
        The CSV text.
    """
    links = _links(board, out_dir)
    header = [
        *_GROUP_HEADER,
        "scheme",
        "scheme_params",
        "line",
        "rank",
        "attack",
        *_LINE_FIGURES,
        "fmr",
        "sar_at_fmr",
        "sar_at_fmr_ci_low",
        "sar_at_fmr_ci_high",
        *_QUALITY,
        *(f"linkage_{k}" for k in _LINKAGE),
        "attacker_knowledge",
        "threshold_source",
        "not_converged",
        *_PROVENANCE_HEADER,
    ]
    sar = board.sar_key
    rows = []
    for group in (*board.measured, *board.reported):
        lines: list[tuple[str, str, Mapping[str, Any], Line]] = [
            ("baseline", PLAIN, {}, line) for line in group.baselines
        ]
        lines += [("attack", b.scheme, b.params, line) for b in group.schemes for line in b.lines]
        for kind, scheme, params, line in lines:
            s, k = line.strength, line.linkage
            rows.append(
                [
                    *_group_columns(group),
                    scheme,
                    canonical(params) if params else "",
                    kind,
                    _csv_number(line.rank),
                    line.attack,
                    *(_csv_number(_get(s, key)) for key in _LINE_FIGURES),
                    _csv_number(board.sar_target),
                    *(_csv_number(_get(s, sar + suffix)) for suffix in ("", "_ci_low", "_ci_high")),
                    *(_csv_number(_get(s, key)) for key in _QUALITY),
                    *(_csv_number(_get(k, key)) for key in _LINKAGE),
                    line.knowledge or "",
                    line.threshold_source or "",
                    line.not_converged or "",
                    *_provenance_columns(line, links),
                ]
            )
    return _csv_text(header, rows)


def render_schemes_csv(board: Leaderboard, out_dir: Path) -> str:
    """The scheme tables as CSV: one line per (section, dataset, recognizer, scheme setting).

    Args:
        board: The leaderboard.
        out_dir: The output folder (paths are relative to it).

    Returns:
        The CSV text; conventions and provenance are the strongest attack's.
    """
    links = _links(board, out_dir)
    header = [
        *_GROUP_HEADER,
        "scheme_rank",
        "scheme",
        "scheme_params",
        "n_attacks",
        "strongest_attack",
        "strongest_eer",
        "strongest_eer_ci_low",
        "strongest_eer_ci_high",
        "fmr",
        "strongest_sar_at_fmr",
        "most_linking_attack",
        "most_linking_d_sys",
        "most_linking_d_sys_ci_low",
        "most_linking_d_sys_ci_high",
        *_PROVENANCE_HEADER,
    ]
    rows = []
    for group in (*board.measured, *board.reported):
        for b in group.schemes:
            s, m = b.strongest, b.most_linking
            rows.append(
                [
                    *_group_columns(group),
                    _csv_number(b.rank),
                    b.scheme,
                    canonical(b.params) if b.params else "",
                    _csv_number(b.n_attacks),
                    s.attack if s else "",
                    *(_csv_number(_get(s.strength if s else None, key)) for key in _LINE_FIGURES),
                    _csv_number(board.sar_target),
                    _csv_number(_get(s.strength if s else None, board.sar_key)),
                    m.attack if m else "",
                    *(_csv_number(_get(m.linkage if m else None, key)) for key in _LINKAGE[1:4]),
                    *(_provenance_columns(s, links) if s else [""] * len(_PROVENANCE_HEADER)),
                ]
            )
    return _csv_text(header, rows)


# --------------------------------------------------------------------------- writing


def write_leaderboard(board: Leaderboard, out_dir: Path) -> list[Path]:
    """Render everything first, then write each file atomically into ``out_dir``.

    Args:
        board: The leaderboard.
        out_dir: Output folder (created if needed).

    Returns:
        The written paths, in :data:`OUTPUT_FILES` order.

    Raises:
        LeaderboardError: ``out_dir`` exists and is not a folder, or a file cannot be written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LeaderboardError(f"{out_dir}: --out exists and is not a folder")
    texts = [
        render_html(board, out_dir),
        render_markdown(board, out_dir),
        render_csv(board, out_dir),
        render_schemes_csv(board, out_dir),
    ]
    paths = [out_dir / name for name in OUTPUT_FILES]
    for path, text in zip(paths, texts):
        try:
            atomic_write_text(path, text, shared=True)
        except OSError as exc:
            raise LeaderboardError(f"{path}: cannot write: {one_line(str(exc))}") from None
    return paths


def make_leaderboard(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    reported: Sequence[Path] = (),
    shipped: bool = True,
    sar_target: float = DEFAULT_SAR_TARGET,
) -> tuple[Leaderboard, list[Path]]:
    """Load, build and write in one call (what ``facesec leaderboard`` runs).

    Args:
        inputs: Results files and run folders.
        out_dir: Output folder.
        reported: Extra entry files or folders.
        shipped: Also load :data:`SHIPPED_REPORTED_DIR`.
        sar_target: FMR of the SAR column.

    Returns:
        The leaderboard and the written paths.

    Raises:
        LeaderboardError: any bad input, before anything is written.
    """
    runs = load_runs(inputs)
    sources = [SHIPPED_REPORTED_DIR, *reported] if shipped else list(reported)
    entries = load_entries(sources)
    if not runs and not entries:
        raise LeaderboardError("nothing to show: no results given and no reported entries loaded")
    board = build_leaderboard(runs, entries, sar_target=sar_target)
    return board, write_leaderboard(board, out_dir)

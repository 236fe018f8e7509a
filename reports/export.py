"""Export a report's figures (PNG and PDF) and tables (CSV and LaTeX) to a folder, listed in ``index.json``.

The report hands every figure and table to one :class:`Collector`. A figure
becomes the page's PNG data URI either way; with an export folder it is
also written as ``<name>.png`` (the very bytes the page embeds) and
``<name>.pdf`` (vector). A table is plain data, a :class:`Table` of
numbers and strings, written as ``<name>.csv`` (raw numbers, full
precision, a confidence interval as two more columns) and ``<name>.tex``
(a LaTeX ``tabular`` of the numbers as the page shows them, escaped).
Every file is written atomically; ``index.json`` lists the figures and
the tables, each in the order the report made them. Identical results give
identical files. Files of an earlier export that this one does not make
are left in place (and out of the index).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import io
import json
import pickle
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from benchmark.core.cache import Cache, atomic_write_bytes, atomic_write_text
from benchmark.core.codeversion import code_version
from reports import plots
from reports.plots import figure_pdf, figure_png, png_data_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "INDEX_NAME",
    "Estimate",
    "Cell",
    "Table",
    "Formatter",
    "Collector",
    "slugify",
    "latex_escape",
    "table_csv",
    "table_latex",
]

INDEX_NAME = "index.json"
_SLUG_MAX = 80
_DASH = "—"


class Estimate(NamedTuple):
    """A number with its confidence interval (either bound may be missing) and how to format it.

    Attributes:
        value: The estimate, None when undefined.
        low: Lower CI bound, None when there is none.
        high: Upper CI bound, None when there is none.
        key: Metric key for formatting, overriding the column's (a column
            whose lines hold different metrics); ``""``: the column's.
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    key: str = ""


Cell = str | int | float | Estimate | None
#: Display text of a value: ``formatter(metric_key, value)``.
Formatter = Callable[[str, Any], str]


@dataclass(frozen=True)
class Table:
    """One table as plain data, shared by the CSV and LaTeX writers.

    Attributes:
        title: What the table shows (a caption; also names the files).
        header: Column headers.
        rows: One line per row, one :data:`Cell` per column.
        keys: Metric key per column, telling the LaTeX writer how to format
            numbers (``eer``: a percentage); ``""`` or missing: as is.
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    keys: Sequence[str] = field(default_factory=tuple)

    def key(self, column: int) -> str:
        """The metric key of ``column`` (``""`` when none is given)."""
        return self.keys[column] if column < len(self.keys) else ""


def _plain_format(key: str, value: Any) -> str:
    return _DASH if value is None else str(value)


def slugify(text: str, max_len: int = _SLUG_MAX) -> str:
    """A file-name-safe name for ``text``: lower-case ASCII letters, digits and single hyphens.

    Args:
        text: Any text (a figure title).
        max_len: Longest result; longer slugs are cut at a hyphen where possible.

    Returns:
        The slug; ``"item"`` when nothing of ``text`` survives.
    """
    # Accents go (ü -> u); other non-ASCII characters (↔, ·) separate words.
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c if c.isascii() else "" if unicodedata.combining(c) else " " for c in decomposed)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[:max_len]
        slug = (cut.rsplit("-", 1)[0] if "-" in cut[max_len // 2 :] else cut).strip("-")
    return slug or "item"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "—": "---",
    "–": "--",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "↔": r"$\leftrightarrow$",
    "′": r"$'$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
    "ω": r"$\omega$",
    "±": r"$\pm$",
    "…": r"\ldots{}",
    "\n": " ",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX table cell: special characters escaped, known symbols as commands.

    Args:
        text: Plain text.

    Returns:
        LaTeX source that typesets as ``text`` under pdfLaTeX without extra packages.
    """
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], text)


def _has_ci(cell: Cell) -> bool:
    return isinstance(cell, Estimate) and (cell.low is not None or cell.high is not None)


def _estimate_columns(table: Table) -> list[bool]:
    """Per column: whether any of its cells has a CI (the CSV then gives it two more columns)."""
    width = len(table.header)
    return [any(j < len(row) and _has_ci(row[j]) for row in table.rows) for j in range(width)]


def _csv_value(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, (int, float, str)) else str(value)


def _csv_cells(cell: Cell, expand: bool) -> list[str | int | float]:
    value = cell.value if isinstance(cell, Estimate) else cell
    if not expand:
        return [_csv_value(value)]
    if isinstance(cell, Estimate):
        return [_csv_value(cell.value), _csv_value(cell.low), _csv_value(cell.high)]
    return [_csv_value(value), "", ""]


def table_csv(table: Table) -> str:
    """``table`` as CSV: a header line, then raw values (None empty); a column with CIs is three columns.

    Args:
        table: The table.

    Returns:
        CSV text with ``\\n`` line ends.
    """
    expand = _estimate_columns(table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header: list[str] = []
    for name, wide in zip(table.header, expand):
        header += [name, f"{name} CI low", f"{name} CI high"] if wide else [name]
    writer.writerow(header)
    for row in table.rows:
        padded = [*row, *[None] * (len(table.header) - len(row))]
        line: list[str | int | float] = []
        for cell, wide in zip(padded, expand):
            line += _csv_cells(cell, wide)
        writer.writerow(line)
    return buf.getvalue()


def _latex_cell(cell: Cell, key: str, formatter: Formatter) -> str:
    if isinstance(cell, Estimate):
        key = cell.key or key
        text = formatter(key, cell.value)
        if cell.low is not None or cell.high is not None:
            text += f" [{formatter(key, cell.low)}, {formatter(key, cell.high)}]"
    elif isinstance(cell, str):
        text = cell
    else:
        text = formatter(key, cell)
    return latex_escape(text)


def _is_numeric(cell: Cell) -> bool:
    return isinstance(cell, (int, float, Estimate)) and not isinstance(cell, bool)


def table_latex(table: Table, formatter: Formatter = _plain_format) -> str:
    """``table`` as a LaTeX ``tabular`` (no packages needed): numbers right-aligned and formatted for reading.

    Args:
        table: The table.
        formatter: ``formatter(key, value)`` -> display text of a number
            (the report's own, so the LaTeX reads like the page).

    Returns:
        LaTeX source: a comment naming the table, then the ``tabular``.
    """
    width = len(table.header)
    numeric = [any(j < len(row) and _is_numeric(row[j]) for row in table.rows) for j in range(width)]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [
        f"% {latex_escape(table.title)}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\hline",
        " & ".join(latex_escape(h) for h in table.header) + " \\\\",
        "\\hline",
    ]
    for row in table.rows:
        padded = [*row, *[None] * (width - len(row))]
        cells = [_latex_cell(cell, table.key(j), formatter) for j, cell in enumerate(padded[:width])]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\hline", "\\end{tabular}", ""]
    return "\n".join(lines)


@functools.cache
def _matplotlib_version() -> str:
    return importlib.metadata.version("matplotlib")


@functools.cache
def _plot_code() -> str:
    return code_version(plots)


class Collector:
    """Collects a report's figures and tables; writes them to ``folder`` when one is given.

    Args:
        folder: Export folder (created when needed), or None to only make
            the page's data URIs.
        formatter: Display text of a number, for the LaTeX tables.
    """

    def __init__(
        self, folder: Path | None = None, *, formatter: Formatter = _plain_format, cache: Cache | None = None
    ) -> None:
        self.folder = None if folder is None else Path(folder)
        self.formatter = formatter
        self.cache = cache
        self.entries: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def _name(self, kind: str, title: str) -> str:
        """``<kind>-<title>`` as a slug (the kind once when the title starts with it), unique in this export."""
        titled, prefix = slugify(title), slugify(kind)
        base = titled if titled == prefix or titled.startswith(prefix + "-") else slugify(f"{kind} {title}")
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}-{n}"
        self._names.add(name)
        return name

    def figure(self, kind: str, title: str, build: Callable[[], Figure]) -> str:
        """Take one figure: its PNG data URI for the page, and its PNG and PDF files when exporting.

        Args:
            kind: What the figure is (``det``, ``sweep``...): the start of its file name.
            title: The figure's title, for the file name and the index.
            build: Makes the figure (a ``functools.partial`` of a
                :mod:`reports.plots` function): called only when the PNG is
                not in the figure cache, or when exporting (the PDF).

        Returns:
            ``"data:image/png;base64,..."``.
        """
        if self.folder is None:
            return png_data_uri(self._png(build))
        fig = build()
        png = figure_png(fig)
        name = self._name(kind, title)
        atomic_write_bytes(self.folder / f"{name}.png", png, shared=True)
        atomic_write_bytes(self.folder / f"{name}.pdf", figure_pdf(fig), shared=True)
        self.entries.append(
            {"type": "figure", "kind": kind, "name": name, "title": title, "files": [f"{name}.png", f"{name}.pdf"]}
        )
        return png_data_uri(png)

    def _png(self, build: Callable[[], Figure]) -> bytes:
        """The figure's PNG, from the figure cache when an identical figure was drawn before.

        Drawing needs matplotlib (about 0.5 s to import) and a few tenths of
        a second a figure: a warm rerun whose results did not change draws
        nothing. The key is the pickled call (function, arguments) with the
        code of the plotting modules and matplotlib's version.
        """
        if self.cache is None or not self.cache.enabled:
            return figure_png(build())
        try:
            call = pickle.dumps(build, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError):  # not a partial of a module function
            return figure_png(build())
        key = Cache.key("figure", hashlib.sha256(call).hexdigest(), [_matplotlib_version()], _plot_code())
        found = self.cache.load("figure", key)
        if found is not None:
            return found[0]["png"].tobytes()
        png = figure_png(build())
        self.cache.save("figure", key, {"png": np.frombuffer(png, np.uint8)}, {})
        return png

    def table(self, kind: str, table: Table) -> None:
        """Take one table: its CSV and LaTeX files when exporting (nothing otherwise).

        Args:
            kind: What the table is (``summary``, ``results``...): the start of its file name.
            table: The table.
        """
        if self.folder is None:
            return
        name = self._name(kind, table.title)
        atomic_write_text(self.folder / f"{name}.csv", table_csv(table), shared=True)
        atomic_write_text(self.folder / f"{name}.tex", table_latex(table, self.formatter), shared=True)
        self.entries.append(
            {
                "type": "table",
                "kind": kind,
                "name": name,
                "title": table.title,
                "columns": list(table.header),
                "files": [f"{name}.csv", f"{name}.tex"],
            }
        )

    def finish(self) -> Path | None:
        """Write ``index.json``: every exported figure and table, each in the order they came.

        Returns:
            The index's path, or None when not exporting.
        """
        if self.folder is None:
            return None
        index = {
            "description": "Figures (PNG, PDF) and tables (CSV, LaTeX) of a FaceSec Bench report.",
            "figures": [e for e in self.entries if e["type"] == "figure"],
            "tables": [e for e in self.entries if e["type"] == "table"],
        }
        path = self.folder / INDEX_NAME
        atomic_write_text(path, json.dumps(index, indent=2, ensure_ascii=False) + "\n", shared=True)
        return path

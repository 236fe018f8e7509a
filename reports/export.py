"""Export a report's figures (PNG and PDF) and tables (CSV and LaTeX) to a folder, listed in ``index.json``.

The report hands every figure and table to one :class:`Collector`. A figure
becomes the page's PNG data URI either way (100 dpi: a light page); with an
export folder it is also written as ``<name>.png`` (the same figure at
print resolution, 300 dpi: 1380x1260 px for a DET plot) and ``<name>.pdf``
(vector). A table is plain data, a :class:`Table` of numbers and strings,
written as ``<name>.csv`` (raw numbers, full precision, integers as
integers, a confidence interval as two more columns) and ``<name>.tex``
(LaTeX tables of the numbers as the page shows them, escaped, each
narrow enough for a page: a wide table is split by columns into parts that
repeat its leading columns, see :func:`table_latex`).
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
from reports.figures import PRINT_DPI
from reports.plots import figure_pdf, figure_png, png_data_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "INDEX_NAME",
    "LATEX_WIDTH",
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
#: Characters a line of an exported LaTeX table may take (see :func:`table_latex`).
LATEX_WIDTH = 100
# Column separation of a ``tabular`` (2 x \tabcolsep = 12 pt), in characters.
_LATEX_COLUMN_GAP = 3
# Text columns wider than this (characters) wrap in a ``p{}`` column.
_LATEX_WRAP = 40
# Metric keys of counts (``n_genuine``...): written as integers.
_COUNT_KEY = re.compile(r"n_")


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
        lead: How many leading columns name a row (scheme, recognizer...):
            every part of a LaTeX table split by columns repeats them.
        csv_only: Headers of columns left out of the LaTeX table (long free
            text such as parameters); the CSV has every column.
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    keys: Sequence[str] = field(default_factory=tuple)
    lead: int = 1
    csv_only: Sequence[str] = field(default_factory=tuple)

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


def _csv_value(value: Any, count: bool = False) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if count and isinstance(value, float) and value.is_integer():
        return int(value)  # a count read back as a float: "1800", never "1800.0"
    return value if isinstance(value, (int, float, str)) else str(value)


def _csv_cells(cell: Cell, expand: bool, key: str) -> list[str | int | float]:
    if isinstance(cell, Estimate):
        key = cell.key or key
    count = _COUNT_KEY.match(key) is not None
    value = cell.value if isinstance(cell, Estimate) else cell
    if not expand:
        return [_csv_value(value, count)]
    if isinstance(cell, Estimate):
        return [_csv_value(cell.value, count), _csv_value(cell.low, count), _csv_value(cell.high, count)]
    return [_csv_value(value, count), "", ""]


def table_csv(table: Table) -> str:
    """``table`` as CSV: a header line, then raw values (None empty); a column with CIs is three columns.

    Integers stay integers, and so does an integral value of a count column
    (metric key ``n_*``), whatever type it arrived as.

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
        for j, (cell, wide) in enumerate(zip(padded, expand)):
            line += _csv_cells(cell, wide, table.key(j))
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


def _latex_parts(widths: Sequence[int], lead: Sequence[int], rest: Sequence[int], budget: int) -> list[list[int]]:
    """Column indices of each part: the ``lead`` columns, then as many of ``rest`` as fit in ``budget`` characters."""
    base = sum(widths[j] + _LATEX_COLUMN_GAP for j in lead)
    parts: list[list[int]] = []
    chunk: list[int] = []
    used = base
    for j in rest:
        need = widths[j] + _LATEX_COLUMN_GAP
        if chunk and used + need > budget:
            parts.append([*lead, *chunk])
            chunk, used = [], base
        chunk.append(j)
        used += need
    parts.append([*lead, *chunk])
    return parts


def table_latex(table: Table, formatter: Formatter = _plain_format, width: int = LATEX_WIDTH) -> str:
    """``table`` as LaTeX ``tabular`` environments (no packages needed), each narrow enough for a page.

    Numbers are right-aligned and formatted for reading; text longer than
    40 characters wraps in a paragraph column (``p{0.40\\linewidth}`` at the
    default width). Columns named in ``table.csv_only`` are left out. A
    table wider than ``width`` characters
    (each column as wide as its longest cell or header, plus a gap) is split
    by columns into parts, each a ``tabular`` of its own that repeats the
    ``table.lead`` columns naming a row, so each can be set as its own
    table (or ``\\input`` as they are: a paragraph break and a
    ``\\medskip`` separate them). 100 characters fill a 16 cm text width in
    10 pt type; a single column wider than that still makes a part.

    Args:
        table: The table.
        formatter: ``formatter(key, value)`` -> display text of a number
            (the report's own, so the LaTeX reads like the page).
        width: Most characters a part's line may take.

    Returns:
        LaTeX source: per part, a comment naming the table (and the part),
        then its ``tabular``.
    """
    size = len(table.header)
    numeric = [any(j < len(row) and _is_numeric(row[j]) for row in table.rows) for j in range(size)]
    text = [
        [
            _latex_cell(cell, table.key(j), formatter)
            for j, cell in enumerate([*row, *[None] * (size - len(row))][:size])
        ]
        for row in table.rows
    ]
    header = [latex_escape(h) for h in table.header]
    # Measured on the typeset text: an escape such as \% prints one character.
    widths = [max(len(_plain_text(c)) for c in [header[j], *(line[j] for line in text)]) for j in range(size)]
    # Free text (a certification reason) wraps in a paragraph column instead of running off the page.
    wrap = [not numeric[j] and widths[j] > _LATEX_WRAP for j in range(size)]
    widths = [min(w, _LATEX_WRAP) if wrap[j] else w for j, w in enumerate(widths)]
    spec = [
        "r" if numeric[j] else f"p{{{_LATEX_WRAP / width:.2f}\\linewidth}}" if wrap[j] else "l" for j in range(size)
    ]
    shown = [j for j in range(size) if table.header[j] not in table.csv_only]
    lead = [j for j in shown if j < table.lead]
    parts = _latex_parts(widths, lead, [j for j in shown if j >= table.lead], width)
    blocks = []
    for n, columns in enumerate(parts, 1):
        title = table.title if len(parts) == 1 else f"{table.title} (part {n} of {len(parts)})"
        lines = [
            f"% {latex_escape(title)}",
            f"\\begin{{tabular}}{{{''.join(spec[j] for j in columns)}}}",
            "\\hline",
            " & ".join(header[j] for j in columns) + " \\\\",
            "\\hline",
        ]
        lines += [" & ".join(line[j] for j in columns) + " \\\\" for line in text]
        lines += ["\\hline", "\\end{tabular}", ""]
        blocks.append("\n".join(lines))
    return "\\par\\medskip\n\n".join(blocks)


def _plain_text(latex: str) -> str:
    """Roughly what ``latex`` prints: escapes and commands count as one character."""
    return re.sub(r"\\[a-zA-Z]+(\{\})?|\\.|\$[^$]*\$", "x", latex)


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
        """Take one figure: its PNG data URI for the page, and its print PNG and PDF files when exporting.

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
        atomic_write_bytes(self.folder / f"{name}.png", figure_png(fig, PRINT_DPI), shared=True)
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

"""Figure basics shared by every plot: the palette, deterministic PNG/PDF encoding and PNG data URIs.

Figures are :class:`matplotlib.figure.Figure` objects (no ``pyplot``); they
are encoded here with no version stamp and no creation date, so identical
figures give identical bytes: at the page's resolution (:data:`DPI`, light
inline images) or at print resolution (:data:`PRINT_DPI`, exported files). The plot kinds
themselves are in :mod:`reports.plots`.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "PALETTE",
    "MARKERS",
    "DPI",
    "PRINT_DPI",
    "PNG_DATA_URI_PREFIX",
    "figure_png",
    "figure_pdf",
    "png_data_uri",
    "figure_to_data_uri",
]

# Colour-blind-safe Okabe–Ito palette; recognizers keep one colour per report.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)

# Marker per series where colour already means something else (sweeps).
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
# Resolution of every figure and of the report's inline PNGs: light pages.
DPI = 100
# Resolution of exported PNGs: print quality. Figures are 3.4-4.6 in wide, a
# journal column is about 3.5 in, so a figure set at column width keeps ~300 dpi.
PRINT_DPI = 300
# Matplotlib otherwise writes its version into the PNG (and its version and
# the date into a PDF), which would make the report bytes depend on the
# installed matplotlib and the clock for identical results.
_PNG_METADATA = {"Software": None}
_PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}
PNG_DATA_URI_PREFIX = "data:image/png;base64,"


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Encode ``fig`` as deterministic PNG bytes.

    Args:
        fig: A figure built with :class:`matplotlib.figure.Figure`.
        dpi: Resolution: :data:`DPI` (the report's) or :data:`PRINT_DPI`
            (exported files); the figure's size in inches stays the same.

    Returns:
        The PNG file's bytes (their pHYs chunk records ``dpi``).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_PNG_METADATA)
    return buf.getvalue()


def figure_pdf(fig: Figure) -> bytes:
    """Encode ``fig`` as deterministic PDF bytes (vector, for papers).

    Args:
        fig: A figure built with :class:`matplotlib.figure.Figure`.

    Returns:
        The PDF file's bytes.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata=_PDF_METADATA)
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """``"data:image/png;base64,..."`` for PNG bytes.

    Args:
        png: A PNG file's bytes.

    Returns:
        The data URI.
    """
    return PNG_DATA_URI_PREFIX + base64.b64encode(png).decode("ascii")


def figure_to_data_uri(fig: Figure) -> str:
    """Encode ``fig`` as a deterministic PNG data URI.

    Args:
        fig: A figure built with :class:`matplotlib.figure.Figure`.

    Returns:
        ``"data:image/png;base64,..."``.
    """
    return png_data_uri(figure_png(fig))

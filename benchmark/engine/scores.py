"""Score files: the interface between recognition and metrics.

Bob-style CSV, one comparison per row, with the columns of :data:`COLUMNS`.
Scores are written with ``repr`` precision so that reading a file back gives
the very same floats.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.cache import atomic_write_text

__all__ = [
    "COLUMNS",
    "QUALITY_COLUMNS",
    "ScoreSet",
    "write_scores",
    "read_scores",
    "score_file_name",
    "quality_file_name",
    "write_quality",
    "read_quality",
]

COLUMNS = (
    "probe",
    "reference",
    "probe_subject",
    "reference_subject",
    "recognizer",
    "scheme",
    "attack",
    "view",
    "score",
)


@dataclass
class ScoreSet:
    """Scores of one (recognizer, scheme, attack, view) with their pairs."""

    probe: list[str]
    reference: list[str]
    probe_subject: list[str]
    reference_subject: list[str]
    recognizer: str
    scheme: str
    attack: str
    view: str
    score: np.ndarray

    @property
    def mated(self) -> np.ndarray:
        return np.array([a == b for a, b in zip(self.probe_subject, self.reference_subject)], dtype=bool)

    def genuine(self) -> np.ndarray:
        return self.score[self.mated]

    def impostor(self) -> np.ndarray:
        return self.score[~self.mated]


def _file_name(*parts: str) -> str:
    safe = lambda s: "".join(c if c.isalnum() or c in "-_=,." else "_" for c in s)  # noqa: E731
    return "__".join(safe(x) for x in parts) + ".csv"


def score_file_name(recognizer: str, scheme: str, attack: str, view: str) -> str:
    """A readable, filesystem-safe file name for one score set."""
    return _file_name(recognizer, scheme, attack, view)


def quality_file_name(scheme: str, attack: str, kind: str) -> str:
    """A readable, filesystem-safe file name for one attack's per-sample image quality."""
    return _file_name(scheme, attack, kind)


def write_scores(path: Path, scores: ScoreSet) -> None:
    """Write a score set atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    const = (scores.recognizer, scores.scheme, scores.attack, scores.view)
    for p, r, ps, rs, s in zip(
        scores.probe,
        scores.reference,
        scores.probe_subject,
        scores.reference_subject,
        scores.score.tolist(),
    ):
        writer.writerow((p, r, ps, rs, *const, repr(s)))
    atomic_write_text(path, buf.getvalue(), shared=True)


def read_scores(path: Path) -> ScoreSet:
    """Read a score file written by :func:`write_scores` (or any with its columns).

    Raises:
        ValueError: on missing columns or a non-numeric score, naming the line.
    """
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        cols: dict[str, list[str]] = {c: [] for c in COLUMNS}
        for row in reader:
            for c in COLUMNS:
                cols[c].append(row[c])
    try:
        score = np.array([float(s) for s in cols["score"]], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric score ({exc})") from None
    first = lambda c: cols[c][0] if cols[c] else ""  # noqa: E731
    return ScoreSet(
        cols["probe"],
        cols["reference"],
        cols["probe_subject"],
        cols["reference_subject"],
        first("recognizer"),
        first("scheme"),
        first("attack"),
        first("view"),
        score,
    )


QUALITY_COLUMNS = ("sample", "subject", "scheme", "attack", "failed", "psnr", "ssim")


def write_quality(
    path: Path, samples: list[str], subjects: list[str], scheme: str, attack: str, quality: dict[str, np.ndarray]
) -> None:
    """Write per-sample PSNR/SSIM of an attack's output atomically.

    ``failed`` is 0/1; PSNR and SSIM of a failed sample are empty fields, an
    identical reconstruction has PSNR ``inf``. Several runs (e.g. one per
    key) can be joined on ``sample`` to compare attacks image by image.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(QUALITY_COLUMNS)
    for sample, subject, failed, p, s in zip(samples, subjects, quality["failed"], quality["psnr"], quality["ssim"]):
        writer.writerow(
            [
                sample,
                subject,
                scheme,
                attack,
                int(failed),
                "" if failed else repr(float(p)),
                "" if failed else repr(float(s)),
            ]
        )
    atomic_write_text(path, buf.getvalue(), shared=True)


def read_quality(path: Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`write_quality`: ``sample`` (str array), ``failed``, ``psnr``, ``ssim``.

    Raises:
        ValueError: on missing columns or a bad number.
    """
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in QUALITY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    try:
        values = {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in ("psnr", "ssim")}
        failed = np.array([int(r["failed"]) for r in rows], dtype=bool)
    except ValueError as exc:
        raise ValueError(f"{path}: bad number ({exc})") from None
    return {"sample": np.array([r["sample"] for r in rows]), "failed": failed, **values}

"""Example faces for reports: for a few probe faces, the original beside what each attack made of it.

The research this project follows shows exactly such a figure (original,
naive decode, concealed, reconstructed). Images go into ``results.json`` as
PNG data URIs so the report, which only renders results, stays self-contained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.data.imageio import png_data_uri
from benchmark.engine.stages import ImageSet
from benchmark.engine.views import View

__all__ = ["pick_examples", "example_sets"]


def pick_examples(subjects: Sequence[str], victims: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` victim samples, one per subject, drawn reproducibly from ``seed``."""
    names = np.asarray(subjects, dtype=object)
    pool = sorted(set(names[victims]))
    chosen = np.random.default_rng(seed).permutation(len(pool))[:n]
    first = {s: int(np.flatnonzero(victims & (names == s))[0]) for s in (pool[i] for i in chosen)}
    return np.array(sorted(first.values()), np.int64)


def _columns(members: Sequence[View], picked: np.ndarray) -> list[tuple[str, ImageSet]]:
    """(column title, images) of one scheme: protected samples first, then each attack's output.

    A cancelable scheme's protected samples are images; an encrypted
    codestream is shown as a standard decoder shows it, which is the naive
    attack's output, so that column is titled as the protected sample. An
    attack output identical to the protected images (naive on a cancelable
    scheme) is not repeated.
    """
    protected = next((v.protected for v in members if v.protected is not None), None)
    columns: list[tuple[str, ImageSet]] = [] if protected is None else [("protected", protected)]
    for v in members:
        if v.kind != "strength" or v.attacked is None:
            continue
        if protected is not None and np.array_equal(v.attacked.images[picked], protected.images[picked]):
            continue
        title = "protected (naive decode)" if protected is None and v.attack == "naive" else v.attack
        columns.append((title, v.attacked))
    return columns


def example_sets(
    views: Sequence[View], plain: ImageSet, ids: Sequence[str], subjects: Sequence[str], picked: np.ndarray
) -> list[dict[str, Any]]:
    """One example set per scheme for ``picked`` samples: original, protected, each strength view's attack output.

    Schemes with nothing to show as an image (an encrypted codestream
    evaluated without any attack) get no set.
    """
    by_scheme: dict[str, list[View]] = {}
    for view in views:
        if view.scheme != "none":
            by_scheme.setdefault(view.scheme, []).append(view)
    out = []
    for scheme, members in by_scheme.items():
        columns = _columns(members, picked)
        if not columns:
            continue
        samples = []
        for i in picked:
            images: list[str | None] = [png_data_uri(plain.images[i])]
            images += [None if shown.failed[i] else png_data_uri(shown.images[i]) for _, shown in columns]
            samples.append({"id": ids[i], "subject": subjects[i], "images": images})
        out.append({"scheme": scheme, "columns": ["original"] + [title for title, _ in columns], "samples": samples})
    return out

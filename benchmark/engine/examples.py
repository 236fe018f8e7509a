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


def example_sets(
    views: Sequence[View], plain: ImageSet, ids: Sequence[str], subjects: Sequence[str], picked: np.ndarray
) -> list[dict[str, Any]]:
    """One example set per scheme: the original and each strength view's attack output for ``picked`` samples."""
    by_scheme: dict[str, list[View]] = {}
    for view in views:
        if view.kind == "strength" and view.attacked is not None:
            by_scheme.setdefault(view.scheme, []).append(view)
    out = []
    for scheme, members in by_scheme.items():
        columns = ["original"] + [v.attack for v in members]
        samples = []
        for i in picked:
            images: list[str | None] = [png_data_uri(plain.images[i])]
            for v in members:
                assert v.attacked is not None
                images.append(None if v.attacked.failed[i] else png_data_uri(v.attacked.images[i]))
            samples.append({"id": ids[i], "subject": subjects[i], "images": images})
        out.append({"scheme": scheme, "columns": columns, "samples": samples})
    return out

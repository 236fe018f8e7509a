"""Subject-disjoint folds and the comparison lists built from them.

Comparisons are (probe index, reference index, mated) triples over the usable
samples. Without a pairs file they are every mated pair inside each test fold
plus a seeded sample of non-mated pairs inside each test fold, capped in
total. With an LFW ``pairs.txt`` the file fixes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Comparisons",
    "PairsFileError",
    "subject_folds",
    "build_comparisons",
    "parse_pairs_file",
    "comparisons_from_pairs",
]

# Above this many candidate pairs in a fold, non-mated pairs are drawn by
# rejection sampling instead of enumerating all of them.
_ENUMERATE_LIMIT = 20_000_000


class PairsFileError(ValueError):
    """A malformed or unusable pairs file."""


@dataclass
class Comparisons:
    """Index arrays of the comparisons; ``mated`` is boolean."""

    probe: np.ndarray
    reference: np.ndarray
    mated: np.ndarray

    def __len__(self) -> int:
        return int(self.probe.size)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"probe": self.probe, "reference": self.reference, "mated": self.mated}


def subject_folds(subjects: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold index (0..k-1) of each sample; all samples of a subject share a fold.

    Subjects are shuffled with ``seed`` and dealt round-robin, so fold sizes in
    subjects differ by at most one.
    """
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: pos % k for pos, j in enumerate(order)}
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def _mated_pairs(idx: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(codes[idx], kind="stable")
    idx = idx[order]
    groups = np.split(idx, np.flatnonzero(np.diff(codes[idx])) + 1)
    ps, rs = [], []
    for g in groups:
        if g.size > 1:
            a, b = np.triu_indices(g.size, k=1)
            ps.append(g[a])
            rs.append(g[b])
    if not ps:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(ps), np.concatenate(rs)


def _nonmated_pairs(
    idx: np.ndarray, codes: np.ndarray, cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = idx.size
    if n * (n - 1) // 2 <= _ENUMERATE_LIMIT:
        a, b = np.triu_indices(n, k=1)
        keep = codes[idx[a]] != codes[idx[b]]
        a, b = a[keep], b[keep]
        if a.size > cap:
            pick = np.sort(rng.choice(a.size, size=cap, replace=False))
            a, b = a[pick], b[pick]
        return idx[a], idx[b]
    # Very large folds: draw pairs at random, keep distinct non-mated ones.
    found: set[tuple[int, int]] = set()
    while len(found) < cap:
        a = rng.integers(0, n, size=2 * cap)
        b = rng.integers(0, n, size=2 * cap)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        ok = (lo != hi) & (codes[idx[lo]] != codes[idx[hi]])
        for pair in zip(lo[ok].tolist(), hi[ok].tolist()):
            found.add(pair)
            if len(found) >= cap:
                break
    arr = np.array(sorted(found), dtype=np.int64)
    return idx[arr[:, 0]], idx[arr[:, 1]]


def build_comparisons(
    subjects: Sequence[str],
    folds: np.ndarray,
    test_folds: Sequence[int],
    max_nonmated: int,
    seed: int,
) -> Comparisons:
    """All mated pairs plus capped, seeded non-mated pairs, within test folds.

    The non-mated cap is shared between folds in proportion to their
    candidate pair counts.
    """
    codes = np.unique(np.asarray(subjects), return_inverse=True)[1]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    fold_idx = [np.flatnonzero(folds == f) for f in test_folds]
    sizes = np.array([i.size * (i.size - 1) // 2 for i in fold_idx], dtype=float)
    share = sizes / sizes.sum() if sizes.sum() else sizes
    probe, ref, mated = [], [], []
    for idx, frac in zip(fold_idx, share):
        mp, mr = _mated_pairs(idx, codes)
        cap = max(1, int(round(max_nonmated * frac)))
        np_, nr = _nonmated_pairs(idx, codes, cap, rng)
        probe += [mp, np_]
        ref += [mr, nr]
        mated += [np.ones(mp.size, bool), np.zeros(np_.size, bool)]
    return Comparisons(
        np.concatenate(probe).astype(np.int64),
        np.concatenate(ref).astype(np.int64),
        np.concatenate(mated),
    )


def parse_pairs_file(text: str) -> list[tuple[str, int, str, int]]:
    """Parse LFW ``pairs.txt``: mated ``name n1 n2``, non-mated ``a n1 b n2``.

    A first line of one or two integers (set count, pairs per set) is a header.

    Raises:
        PairsFileError: naming the first bad line.
    """
    pairs: list[tuple[str, int, str, int]] = []
    lines = text.splitlines()
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if lineno == 1 and 1 <= len(parts) <= 2 and all(p.isdigit() for p in parts):
            continue
        try:
            if len(parts) == 3:
                pairs.append((parts[0], int(parts[1]), parts[0], int(parts[2])))
            elif len(parts) == 4:
                pairs.append((parts[0], int(parts[1]), parts[2], int(parts[3])))
            else:
                raise ValueError
        except ValueError:
            raise PairsFileError(
                f"line {lineno}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {line.strip()!r}"
            ) from None
    if not pairs:
        raise PairsFileError("no pair in the file")
    return pairs


def comparisons_from_pairs(path: Path, ids: Sequence[str]) -> tuple[Comparisons, int]:
    """Comparisons fixed by an LFW pairs file, mapped onto sample ids.

    Sample ids must follow LFW's ``Name/Name_NNNN.ext`` naming. Pairs naming a
    missing or unusable image are dropped; their count is returned.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PairsFileError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    index: dict[tuple[str, int], int] = {}
    for i, sid in enumerate(ids):
        stem = Path(sid).stem
        name, _, num = stem.rpartition("_")
        if num.isdigit():
            index[(name, int(num))] = i
    probe, ref, mated, missing = [], [], [], 0
    for a, na, b, nb in parse_pairs_file(text):
        ia, ib = index.get((a, na)), index.get((b, nb))
        if ia is None or ib is None:
            missing += 1
            continue
        probe.append(ia)
        ref.append(ib)
        mated.append(a == b)
    if not probe:
        raise PairsFileError(f"no pair in {str(path)!r} names an image of the dataset")
    return (
        Comparisons(np.array(probe, np.int64), np.array(ref, np.int64), np.array(mated, bool)),
        missing,
    )

"""Folds, comparison lists and the LFW pairs parser."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.data.comparisons import (
    PairsFileError,
    build_comparisons,
    comparisons_from_pairs,
    parse_pairs_file,
    subject_folds,
)


def _subjects(n_subj=12, per=4):
    return [f"p{s}" for s in range(n_subj) for _ in range(per)]


def test_folds_are_subject_disjoint_and_seeded():
    subj = _subjects()
    f = subject_folds(subj, 4, seed=3)
    for s in set(subj):
        assert len(set(f[[i for i, x in enumerate(subj) if x == s]])) == 1
    assert np.array_equal(f, subject_folds(subj, 4, seed=3))
    assert not np.array_equal(f, subject_folds(subj, 4, seed=4))
    counts = np.bincount(f[::4], minlength=4)
    assert counts.max() - counts.min() <= 1


def test_all_mated_pairs_and_capped_nonmated():
    subj = _subjects()
    folds = subject_folds(subj, 2, 0)
    c = build_comparisons(subj, folds, [0, 1], max_nonmated=50, seed=0)
    assert c.mated.sum() == 12 * 6  # C(4,2) per subject
    assert (~c.mated).sum() == 50
    s = np.array(subj)
    assert np.all((s[c.probe] == s[c.reference]) == c.mated)
    assert np.all(folds[c.probe] == folds[c.reference])
    pairs = set(zip(c.probe.tolist(), c.reference.tolist()))
    assert len(pairs) == len(c)


def test_nonmated_uncapped_is_exhaustive():
    subj = _subjects(4, 2)
    folds = np.zeros(len(subj), int)
    c = build_comparisons(subj, folds, [0], max_nonmated=10**6, seed=0)
    assert (~c.mated).sum() == 8 * 7 // 2 - 4


def test_pairs_file_parsing(tmp_path):
    text = "2\t2\nAlice\t1\t2\nAlice\t1\tBob\t1\n"
    assert parse_pairs_file(text) == [("Alice", 1, "Alice", 2), ("Alice", 1, "Bob", 1)]
    p = tmp_path / "pairs.txt"
    p.write_text(text + "Carol 1 2\n")
    ids = ["Alice/Alice_0001.jpg", "Alice/Alice_0002.jpg", "Bob/Bob_0001.jpg"]
    c, missing = comparisons_from_pairs(p, ids)
    assert missing == 1 and c.mated.tolist() == [True, False]
    assert c.probe.tolist() == [0, 0] and c.reference.tolist() == [1, 2]


@pytest.mark.parametrize("bad", ["", "A 1\n", "A x 2\n", "A 1 B 2 C\n"])
def test_pairs_file_errors(bad):
    with pytest.raises(PairsFileError):
        parse_pairs_file(bad)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_pairs_parser_never_crashes(text):
    try:
        pairs = parse_pairs_file(text)
    except PairsFileError:
        return
    assert all(isinstance(p[1], int) and isinstance(p[3], int) for p in pairs)

"""Parameter constraints describe their bounds exactly, in every message that prints them."""

from __future__ import annotations

import pytest

from benchmark.core.component import Interval, Nullable


@pytest.mark.parametrize(
    "constraint, text",
    [
        (Interval(int, 0, 2**32 - 1), "[0, 4294967295]"),
        (Interval(int, 1_000, 10_000_000), "[1000, 10000000]"),
        (Interval(float, 0, 1e7, closed="right"), "(0, 10000000]"),
        (Interval(float, 0.001, 1.5), "[0.001, 1.5]"),
        (Interval(float, None, None), "[-inf, inf]"),
        (Nullable(Interval(int, 10, None, closed="left")), "[10, inf) or null"),
    ],
)
def test_bounds_are_printed_exactly(constraint, text):
    assert constraint.describe() == text


def test_a_refusal_names_the_exact_bound():
    assert Interval(int, 0, 2**32 - 1).check(2**32) == "is not in [0, 4294967295]"

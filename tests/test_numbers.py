"""Numbers in terminal and log lines: a few significant digits, rates as percentages."""

from __future__ import annotations

import pytest

from benchmark.core.numbers import format_bytes, format_number, format_value, is_rate


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.2861666666666667, "0.286"), (12.0, "12"), (1234.5, "1,234"), (999.7, "1,000"), (1.234e-5, "1.23e-05")],
)
def test_three_significant_digits_integers_as_integers(value, text):
    assert format_number(value) == text


def test_rates_are_percentages_other_metrics_are_not():
    assert format_value("eer", 0.2861666666666667) == "28.6%"
    assert format_value("sar_at_fmr_0.001_ci_high", 0.004) == "0.4%"
    assert format_value("d_sys", 0.97541) == "0.975"
    assert format_value("key_space_bits", 128.0) == "128"
    assert format_value("eer", None) == "n/a"
    assert not is_rate("sar_threshold_at_fmr_0.001") and is_rate("delta_eer")


def test_bytes_in_binary_units():
    assert [format_bytes(n) for n in (812, 3482, 612 * 2**20, int(2.1 * 2**30))] == [
        "812 B",
        "3.4 KiB",
        "612 MiB",
        "2.1 GiB",
    ]

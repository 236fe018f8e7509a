"""Score files round-trip exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.engine.scores import COLUMNS, ScoreSet, read_scores, score_file_name, write_scores


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30))
def test_round_trip(tmp_path_factory, values):
    n = len(values)
    s = ScoreSet(
        [f"a,{i}" for i in range(n)],
        [f'b"{i}' for i in range(n)],
        ["x"] * n,
        ["x" if i % 2 else "y" for i in range(n)],
        "lbp",
        "none",
        "none",
        "baseline",
        np.array(values, dtype=np.float64),
    )
    path = tmp_path_factory.mktemp("s") / "s.csv"
    write_scores(path, s)
    back = read_scores(path)
    assert np.array_equal(back.score, s.score)
    assert back.probe == s.probe and back.reference == s.reference
    assert back.mated.tolist() == s.mated.tolist()
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_missing_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("probe,score\na,1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_scores(p)


def test_file_name_is_safe():
    assert (
        score_file_name("lbp[radius=1]", "none", "none", "strength:naive")
        == "lbp_radius=1___none__none__strength_naive.csv"
    )


def test_quality_file_round_trips(tmp_path):
    from benchmark.engine.scores import QUALITY_COLUMNS, quality_file_name, read_quality, write_quality

    quality = {
        "psnr": np.array([23.25, np.inf, np.nan]),
        "ssim": np.array([0.5, 1.0, np.nan]),
        "failed": np.array([False, False, True]),
    }
    path = tmp_path / quality_file_name("lw4o6", "conceal-codeblock", "strength")
    write_quality(path, ["a/1", "a/2", "b/1"], ["a", "a", "b"], "lw4o6", "conceal-codeblock", quality)
    assert path.name == "lw4o6__conceal-codeblock__strength.csv"
    assert path.read_text().splitlines()[0] == ",".join(QUALITY_COLUMNS)
    back = read_quality(path)
    assert back["sample"].tolist() == ["a/1", "a/2", "b/1"] and back["failed"].tolist() == [False, False, True]
    np.testing.assert_array_equal(back["psnr"], quality["psnr"])
    np.testing.assert_array_equal(back["ssim"], quality["ssim"])
    (tmp_path / "bad.csv").write_text("sample,psnr\nx,1\n")
    with pytest.raises(ValueError, match="missing column"):
        read_quality(tmp_path / "bad.csv")

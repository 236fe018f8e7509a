"""Folder and ORL datasets list samples without decoding them."""

from __future__ import annotations

import pytest

from benchmark.core.component import ParamError
from benchmark.data.datasets.folder import DatasetError, FolderDataset, OrlDataset


def _touch(root, names):
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_listing_sorted_and_filtered(tmp_path):
    _touch(tmp_path, ["b/b_2.jpg", "b/b_10.jpg", "a/a_1.PNG", "a/notes.txt", "c/c_1.jpg"])
    s = FolderDataset(min_images=1).load(tmp_path)
    assert s.ids == ["a/a_1.PNG", "b/b_2.jpg", "b/b_10.jpg", "c/c_1.jpg"]
    assert s.subjects == ["a", "b", "b", "c"]
    s2 = FolderDataset(min_images=2).load(tmp_path)
    assert s2.subjects == ["b", "b"]
    assert FolderDataset(max_subjects=1).load(tmp_path).subjects == ["a"]


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        FolderDataset().load(tmp_path / "none")
    with pytest.raises(DatasetError, match="needs a root"):
        FolderDataset().load(None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image"):
        FolderDataset().load(tmp_path)
    with pytest.raises(ParamError):
        FolderDataset.from_params({"max_subjects": 0})
    with pytest.raises(ParamError):
        FolderDataset.from_params({"min_images": 0})


def test_orl_layout(tmp_path):
    _touch(tmp_path, ["s2/1.pgm", "s10/1.pgm", "s1/10.pgm", "s1/2.pgm", "README/1.pgm"])
    s = OrlDataset().load(tmp_path)
    assert s.ids == ["s1/2.pgm", "s1/10.pgm", "s2/1.pgm", "s10/1.pgm"]


def test_real_orl(orl_root):
    s = OrlDataset().load(orl_root)
    assert len(s) == 400 and len(set(s.subjects)) == 40

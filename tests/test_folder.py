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


def _linked_tree(tmp_path):
    """alice (2 images), bob (1), and links: an identity, a file out of the root, a file of another identity, a loop."""
    root = tmp_path / "data"
    _touch(root, ["alice/1.png", "alice/2.png", "bob/1.png", "pool.png"])
    _touch(tmp_path, ["outside/secret.png"])
    (root / "carol").symlink_to("alice")
    (root / "alice" / "3.png").symlink_to(tmp_path / "outside" / "secret.png")
    (root / "bob" / "2.png").symlink_to("../alice/1.png")
    (root / "bob" / "3.png").symlink_to("../pool.png")
    (root / "loop").symlink_to("loop")
    (root / "bob" / "4.png").symlink_to("4.png")
    return root


def test_symbolic_links_are_not_followed_but_listed_with_a_reason(tmp_path, caplog):
    root = _linked_tree(tmp_path)
    with caplog.at_level("WARNING", logger="benchmark.data.datasets.folder"):
        s = FolderDataset().load(root)
    assert s.ids == ["alice/1.png", "alice/2.png", "bob/1.png"] and s.subjects == ["alice", "alice", "bob"]
    never = "symbolic link (not followed)"
    links = ["alice/3.png", "bob/2.png", "bob/3.png", "bob/4.png", "carol", "loop"]
    assert sorted(s.skipped) == [(link, never) for link in links]
    (warned,) = [r.getMessage() for r in caplog.records]
    assert warned.startswith(f"dataset {root}: 6 symbolic link(s) left out (6 {never})")


def test_follow_links_inside_follows_links_within_the_root_never_listing_a_file_twice(tmp_path):
    root = _linked_tree(tmp_path)
    s = FolderDataset.from_params({"follow_links": "inside"}).load(root)
    # bob/3.png leads to a file no identity folder holds: followed. carol is alice again: nothing new.
    assert s.ids == ["alice/1.png", "alice/2.png", "bob/1.png", "bob/3.png"]
    assert sorted(s.skipped) == [
        ("alice/3.png", "symbolic link out of the dataset root (not followed)"),
        ("bob/2.png", "symbolic link to alice/1.png, listed already"),
        ("bob/4.png", "symbolic link that loops or leads nowhere"),
        ("carol/1.png", "symbolic link to alice/1.png, listed already"),
        ("carol/2.png", "symbolic link to alice/2.png, listed already"),
        ("carol/3.png", "symbolic link out of the dataset root (not followed)"),
        ("loop", "symbolic link that loops or leads nowhere"),
    ]


def test_follow_links_is_a_declared_parameter():
    assert FolderDataset().get_params()["follow_links"] == "never"
    assert OrlDataset(follow_links="inside").get_params()["follow_links"] == "inside"
    with pytest.raises(ParamError, match="follow_links"):
        FolderDataset.from_params({"follow_links": "always"})


def test_a_listing_without_links_lists_nothing_skipped(tmp_path):
    _touch(tmp_path, ["a/1.png", "b/1.png"])
    assert FolderDataset().load(tmp_path).skipped is None

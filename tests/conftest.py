"""Shared fixtures: the real data in ../shared/data, when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("FACESEC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def orl_root() -> Path:
    root = shared_data() / "orl"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root} (see README, 'Data')")
    return root


@pytest.fixture
def lfw_root() -> Path:
    root = shared_data() / "lfw-dev"
    if not root.is_dir():
        pytest.skip(f"real data absent: {root} (see README, 'Data')")
    return root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # Tests never touch the user's cache.
    monkeypatch.setenv("FACESEC_CACHE", str(tmp_path_factory.getbasetemp() / "facesec-cache"))


@pytest.fixture(scope="module")
def faces():
    """Twelve synthetic faces (6 subjects x 2): (images, ids, subjects)."""
    from benchmark.data.datasets.synthetic import SyntheticFaces

    s = SyntheticFaces(n_subjects=6, n_images=2, seed=3).load()
    return s.images, s.ids, s.subjects


@pytest.fixture
def decoder_spy(monkeypatch):
    """``spy(cls, method)``: the declared (width, height) of every file ``cls.method`` is handed, in a list.

    ``method`` is a scheme's ``decode_one`` or a concealment attack's static
    ``rewrite``; a file declaring another size than 112x112 fails the test
    before it is decoded (nothing huge is ever allocated).
    """
    from benchmark.codecs import declared_size

    def spy_on(cls, method: str) -> list:
        seen: list = []
        original = getattr(cls, method)

        def spy(*args):
            data = args[-1] if method == "decode_one" else args[0]
            seen.append(declared_size(data))
            if seen[-1] != (112, 112):
                pytest.fail(f"a file declaring {seen[-1]} reached the decoder")
            return original(*args)

        monkeypatch.setattr(cls, method, spy if method == "decode_one" else staticmethod(spy))
        return seen

    return spy_on

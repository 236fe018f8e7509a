"""Tests for the `naive` attack."""

from __future__ import annotations

import numpy as np
import pytest

from attacks.naive import NaiveAttack
from benchmark.core.component import ParamError, Scheme
from benchmark.core.keys import MasterKey
from benchmark.core.registry import ATTACKS
from schemes.noise import NoiseScheme


class _HalfBroken(Scheme):
    """A scheme whose standard decoder fails on every other sample."""

    def __init__(self) -> None:
        pass

    def decode(self, protected):
        failed = np.arange(len(protected)) % 2 == 1
        images = np.where(failed[:, None, None, None], 0, np.asarray(protected)).astype(np.uint8)
        return images, failed.astype(int)  # a sloppy decoder: ints, not bools


def test_registered_with_stated_knowledge():
    assert ATTACKS.get("naive") is NaiveAttack
    assert "no key" in NaiveAttack.knowledge and "Kerckhoffs" in NaiveAttack.knowledge
    assert NaiveAttack().get_params() == {}


def test_returns_the_protected_images_of_the_noise_scheme():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    scheme = NoiseScheme(sigma=15.0)
    protected = scheme.protect(images, MasterKey(bytes(32)).application("a"), list("abcd"), list("xxyy"))
    attacked, failed, _ = NaiveAttack().attack(protected, scheme)
    np.testing.assert_array_equal(attacked, protected)
    assert attacked.dtype == np.uint8 and failed.dtype == bool and not failed.any()


def test_decoder_failures_become_bool_flags():
    protected = np.full((4, 112, 112, 3), 7, np.uint8)
    attacked, failed, _ = NaiveAttack().attack(protected, _HalfBroken())
    assert failed.dtype == bool and failed.tolist() == [False, True, False, True]
    assert np.all(attacked[0] == 7)


def test_takes_no_parameters():
    with pytest.raises(ParamError):
        NaiveAttack.from_params({"strength": 1})

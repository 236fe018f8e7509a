"""Example faces: one reproducible victim sample per subject, every attack's output beside the original."""

from __future__ import annotations

import numpy as np

from benchmark.engine.examples import example_sets, pick_examples
from benchmark.engine.stages import ImageSet
from benchmark.engine.views import View, ViewPart


def test_pick_examples_one_victim_per_subject_reproducibly():
    subjects = [f"s{i // 4}" for i in range(40)]
    victims = np.array([i < 20 for i in range(40)])
    picked = pick_examples(subjects, victims, 3, seed=0)
    assert len(picked) == 3 and victims[picked].all()
    assert len({subjects[i] for i in picked}) == 3
    assert np.array_equal(picked, pick_examples(subjects, victims, 3, seed=0))
    assert len(pick_examples(subjects, victims, 50, seed=0)) == 5  # no more than the victim subjects


def test_example_sets_show_each_strength_view_and_mark_failures():
    n = 4
    plain = ImageSet("plain", "p", np.full((n, 112, 112, 3), 200, np.uint8), np.zeros(n, bool))
    attacked = ImageSet("a", "a", np.zeros((n, 112, 112, 3), np.uint8), np.array([False, True, False, False]))
    every = np.ones(n, bool)
    views = [
        View("strength:naive", "strength", "lw4o6", {}, "naive", [ViewPart(attacked, plain, every)], attacked),
        View("linkage:naive", "linkage", "lw4o6", {}, "naive", [ViewPart(attacked, attacked, every)]),
    ]
    (out,) = example_sets(views, plain, ["a/1", "b/1", "c/1", "d/1"], ["a", "b", "c", "d"], np.array([0, 1]))
    assert out["scheme"] == "lw4o6" and out["columns"] == ["original", "naive"]
    first, second = out["samples"]
    assert first["id"] == "a/1" and all(i.startswith("data:image/png;base64,") for i in first["images"])
    assert second["images"][1] is None  # the attack failed on that sample

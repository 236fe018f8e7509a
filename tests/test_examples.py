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
    assert out["scheme"] == "lw4o6" and out["columns"] == ["original", "protected (naive decode)"]
    first, second = out["samples"]
    assert first["id"] == "a/1" and all(i.startswith("data:image/png;base64,") for i in first["images"])
    assert second["images"][1] is None  # the attack failed on that sample


def test_cancelable_scheme_shows_protected_once_then_attacks():
    n = 3
    plain = ImageSet("plain", "p", np.full((n, 8, 8, 3), 200, np.uint8), np.zeros(n, bool))
    warped = ImageSet("w", "w", np.full((n, 8, 8, 3), 90, np.uint8), np.zeros(n, bool))
    restored = ImageSet("r", "r", np.full((n, 8, 8, 3), 180, np.uint8), np.zeros(n, bool))
    every = np.ones(n, bool)
    views = [
        View(
            "preservation", "preservation", "warp_16_6", {}, "none", [ViewPart(warped, warped, every)], protected=warped
        ),
        # naive on a cancelable scheme shows the protected images as they are: not repeated
        View(
            "strength:naive",
            "strength",
            "warp_16_6",
            {},
            "naive",
            [ViewPart(warped, plain, every)],
            warped,
            protected=warped,
        ),
        View(
            "strength:inpaint",
            "strength",
            "warp_16_6",
            {},
            "inpaint",
            [ViewPart(restored, plain, every)],
            restored,
            protected=warped,
        ),
    ]
    (out,) = example_sets(views, plain, ["a/1", "b/1", "c/1"], ["a", "b", "c"], np.array([0, 2]))
    assert out["columns"] == ["original", "protected", "inpaint"]
    assert all(len(s["images"]) == 3 for s in out["samples"])


def test_no_example_set_without_anything_to_show():
    n = 2
    plain = ImageSet("plain", "p", np.zeros((n, 8, 8, 3), np.uint8), np.zeros(n, bool))
    views = [View("preservation", "preservation", "lw4o6", {}, "none", [ViewPart(plain, plain, np.ones(n, bool))])]
    assert example_sets(views, plain, ["a/1", "b/1"], ["a", "b"], np.array([0])) == []

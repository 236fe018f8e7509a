"""Tests of benchmark.recognizers.fisher (``fv-sift``, ``fv-brief``) and of fitting recognizers in runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.cache import Cache
from benchmark.core.component import FittedRecognizer, ParamError
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import ProtocolError, load_protocol
from benchmark.engine.stages import Engine, ImageSet, fit_recognizer_stage
from benchmark.metrics.verification import eer
from benchmark.recognizers.fisher import FisherBRIEFRecognizer, FisherSIFTRecognizer, grid_centres
from benchmark.recognizers.lbp import FACE_SIZE

CLASSES = [FisherSIFTRecognizer, FisherBRIEFRecognizer]
# Small models: the tests are about behaviour, not about the best figure.
SMALL = {"step": 8, "size": 16, "n_components": 8, "pca_dim": 16}


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic faces of 12 subjects x 5 images, and their subject codes."""
    samples = SyntheticFaces(n_subjects=12, n_images=5, seed=3).load()
    assert samples.images is not None
    return samples.images, np.unique(samples.subjects, return_inverse=True)[1]


def test_grid_lies_inside_the_face():
    for size, step in [(16, 4), (16, 8), (9, 5), (64, 56)]:
        centres = grid_centres(size, step)
        assert len(centres) == ((FACE_SIZE - size) // step + 1) ** 2
        assert centres.min() >= size / 2 and centres.max() <= FACE_SIZE - size / 2


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.registry_name)
def test_transform_needs_a_fitted_model(cls, faces):
    with pytest.raises(ValueError, match="fitted"):
        cls(**SMALL).transform(faces[0][:2])
    with pytest.raises(ValueError, match="training faces"):
        cls(**SMALL).fit(faces[0][:0], [])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.registry_name)
def test_fisher_vectors_shape_norm_and_state_round_trip(cls, faces):
    images, subjects = faces
    model = cls(**SMALL).fit(images[:20], [str(s) for s in subjects[:20]])
    assert model.is_fitted() and model.fit(images[:20], None) is model
    feats = model.transform(images[20:26])
    d = SMALL["pca_dim"] + 2  # PCA dimensions and the patch position
    assert feats.shape == (6, SMALL["n_components"] * (2 * d + 1)) and feats.dtype == np.float32
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)  # improved FV: L2-normalised
    restored = cls(**SMALL).load_state(model.state_arrays())
    assert np.array_equal(restored.transform(images[20:26]), feats)
    # Fitting is deterministic for a seed.
    again = cls(**SMALL).fit(images[:20], None)
    assert all(np.array_equal(a, b) for a, b in zip(again.state_arrays().values(), model.state_arrays().values()))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.registry_name)
def test_parameters_that_cannot_work_are_refused(cls):
    with pytest.raises(ParamError) as info:
        cls.from_params({"pca_dim": cls.raw_dims + 1})
    assert info.value.param == "pca_dim"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.registry_name)
def test_vectors_separate_identities_of_subjects_never_fitted(cls, faces):
    """Fit on 6 subjects, compare the other 6: mated pairs score higher than chance could make them.

    The margin is statistical, not a figure of this data: under chance
    (scores independent of identity) a one-sided Mann-Whitney test on these
    60 mated and 375 non-mated pairs gives p < 1e-4 once in 10,000 draws.
    """
    from scipy.stats import mannwhitneyu

    images, subjects = faces
    train = subjects < 6
    model = cls(**SMALL).fit(images[train], None)
    feats, codes = model.transform(images[~train]), subjects[~train]
    i, j = np.triu_indices(len(codes), 1)
    scores = model.compare(feats[i], feats[j])
    mated = codes[i] == codes[j]
    assert mated.sum() == 60 and (~mated).sum() == 375
    assert mannwhitneyu(scores[mated], scores[~mated], alternative="greater").pvalue < 1e-4
    assert eer(scores[mated], scores[~mated]) < 0.5


def test_fitting_refuses_an_evaluated_subject(tmp_path, faces):
    images, subjects = faces
    names = [f"s{c}" for c in subjects]
    plain = ImageSet("plain", "k", images, np.zeros(len(images), bool))
    evaluated = subjects == 0
    train = subjects <= 1  # subject 0 on both sides
    engine = Engine(Cache(tmp_path), workers=1)
    with pytest.raises(ValueError, match="evaluated subject"):
        fit_recognizer_stage(engine, "fv", FisherSIFTRecognizer(**SMALL), plain, train, names, evaluated)


PROTOCOL = """\
name: fitted
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 4, seed: 1}
  folds: 3
  seed: 0
recognizers:
  - {name: fv-sift, params: {step: 8, n_components: 8, pca_dim: 16}}
  - {name: fv-brief, params: {step: 8, n_components: 8, pca_dim: 16}}
metrics: [eer]
"""


def _run(protocol: Path, out: Path, cache: Path):
    return run_protocol(load_protocol(protocol), RunOptions(out=out, cache=Cache(cache), workers=1))


def test_runs_fit_one_model_per_fold_on_the_other_folds_and_reuse_it(tmp_path, monkeypatch):
    protocol = tmp_path / "fitted.yaml"
    protocol.write_text(PROTOCOL)
    seen: list[tuple[str, set[str]]] = []
    for cls in CLASSES:
        original = cls.fit

        def spy(self, images=None, subjects=None, _original=original):
            seen.append((self.registry_name, set(subjects or [])))
            return _original(self, images, subjects)

        monkeypatch.setattr(cls, "fit", spy)
    first = _run(protocol, tmp_path / "a", tmp_path / "cache")
    fits = [r for r in first.engine.records if r.stage == "fit"]
    assert sorted(r.label for r in fits) == sorted(f"{n}@fold{f}" for n in ("fv-sift", "fv-brief") for f in range(3))
    assert len(seen) == 6
    # Each fold's model saw only subjects of the other folds: never one it embeds.
    results = json.loads(first.results_path.read_text())
    for row in results["rows"]:
        scores = (first.results_path.parent / row["score_file"]).read_text().splitlines()[1:]
        assert scores and 0 <= row["metrics"]["eer"] < 0.5
    folds = _folds(first)
    assert sorted(name for name, _ in seen) == ["fv-brief"] * 3 + ["fv-sift"] * 3
    for _, trained in seen:
        evaluated = [subjects for subjects in folds if not subjects & trained]
        assert len(evaluated) == 1 and not evaluated[0] & trained  # exactly one fold left out, disjoint
    # A second run reuses every fitted model (and everything else).
    seen.clear()
    second = _run(protocol, tmp_path / "b", tmp_path / "cache")
    assert seen == [] and all(r.hit for r in second.engine.records if r.stage == "fit")
    assert [r["metrics"] for r in results["rows"]] == [r["metrics"] for r in second.results["rows"]]


def _folds(run) -> list[set[str]]:
    """Subjects of each fold of a run, from its score files (comparisons stay inside a fold)."""
    groups: list[set[str]] = []
    for row in run.results["rows"]:
        lines = (run.results_path.parent / row["score_file"]).read_text().splitlines()
        header = lines[0].split(",")
        p, r = header.index("probe_subject"), header.index("reference_subject")
        for line in lines[1:]:
            cells = line.split(",")
            pair = {cells[p], cells[r]}
            hit = [g for g in groups if g & pair]
            merged = set().union(pair, *hit)
            groups = [g for g in groups if not g & pair] + [merged]
    return groups


def test_protocols_without_folds_are_refused_for_fitted_recognizers(tmp_path):
    protocol = tmp_path / "fitted.yaml"
    protocol.write_text(PROTOCOL.replace("folds: 3", "folds: 1"))
    with pytest.raises(ProtocolError, match="folds"):
        load_protocol(protocol)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a 1 2\n")
    protocol.write_text(PROTOCOL.replace("  folds: 3\n", f"  pairs: {pairs}\n"))
    with pytest.raises(ProtocolError, match="pairs"):
        load_protocol(protocol)


def test_fitted_recognizers_declare_the_contract():
    for cls in CLASSES:
        assert issubclass(cls, FittedRecognizer)

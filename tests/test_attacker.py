"""The declared attacker: subject-disjoint training data, own keys, cached models, located errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.cache import Cache
from benchmark.core.keys import MasterKey
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.engine.attacker import (
    Attacker,
    AttackerFaces,
    Group,
    LeakError,
    _split,
    find_overlap,
    impostor_threshold,
)
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import AttackerSpec, ProtocolError, load_protocol
from benchmark.engine.stages import Engine, ImageSet

PROTOCOL = """\
name: learned
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 3, seed: 2}
  folds: 4
  test_folds: [0]
  seed: 0
recognizers: [{name: lbp, params: {radius: 2}}]
schemes: [noise]
attacks:
  - naive
  - {name: inpaint, params: {depth: 1, width: 2, epochs: 1, batch_size: 8, device: cpu}}
attacker:
  source: folds
  keys_per_face: 2
views: [strength, linkage]
metrics: [eer]
face_quality: [detector]
examples: 2
bootstrap: {n_boot: 0}
"""


def _write(tmp_path: Path, text: str = PROTOCOL, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _run(path: Path, tmp_path: Path, overrides=(), out: str = "out") -> dict:
    lp = load_protocol(path, list(overrides))
    res = run_protocol(lp, RunOptions(out=tmp_path / out, cache=Cache(tmp_path / "cache"), workers=1))
    return json.loads(res.results_path.read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learned")
    return tmp, _run(_write(tmp), tmp)


def test_run_declares_the_attacker_and_its_model(first_run):
    _, results = first_run
    attacker = results["attacker"]
    assert attacker["source"] == "folds" and attacker["keys_per_face"] == 2 and attacker["subject_disjoint"]
    # 12 subjects x 3 images in 4 folds: fold 0 (3 subjects) is attacked, folds 1-3 train.
    assert attacker["n_faces"] == 27 and attacker["n_subjects"] == 9
    (model,) = results["trained_models"]
    assert model["attack"] == "inpaint" and model["scheme"] == "noise" and not model["cached"]
    assert model["n_train_faces"] + model["n_val_faces"] == 27
    assert model["n_pairs"] == 2 * model["n_train_faces"]
    assert len(model["history"]) == 1 and model["history"][0]["val_loss"] is not None
    rows = {r["view"]: r for r in results["rows"]}
    assert {"strength:naive", "strength:inpaint", "linkage:inpaint"} <= set(rows)
    knowledge = rows["strength:inpaint"]["attacker_knowledge"]
    assert "own random key" in knowledge and "no victim subject" in knowledge
    assert (
        rows["strength:naive"]["attacker_knowledge"]
        == "protected samples and scheme parameters (Kerckhoffs); no key; no training data"
    )


def test_quality_examples_and_face_quality_cover_victims_only(first_run):
    tmp, results = first_run
    with open(tmp / "out" / "quality" / "noise__inpaint__strength.csv") as f:
        quality_rows = list(csv.DictReader(f))
    assert len(quality_rows) == 9  # the three subjects of fold 0, three images each
    assert len({r["subject"] for r in quality_rows}) == 3
    victims = {r["subject"] for r in quality_rows}
    (examples,) = results["examples"]
    # noise is an image-domain scheme: its protected face is what naive sees, shown once.
    assert examples["columns"] == ["original", "protected", "inpaint"]
    assert len(examples["samples"]) == 2 and {s["subject"] for s in examples["samples"]} <= victims
    assert all(img.startswith("data:image/png;base64,") for s in examples["samples"] for img in s["images"])
    fq = {(q["scheme"], q["attack"]): q for q in results["face_quality"]}
    assert set(fq) == {("none", "none"), ("noise", "naive"), ("noise", "inpaint")}
    assert all(q["n"] + q["failed"] == 9 for q in fq.values())


def test_rerun_reuses_the_model_and_a_changed_parameter_retrains(first_run):
    tmp, results = first_run
    again = _run(_write(tmp), tmp, out="again")
    assert again["trained_models"][0]["cached"]
    assert again["trained_models"][0]["model_key"] == results["trained_models"][0]["model_key"]
    assert again["rows"] == results["rows"]
    changed = _run(_write(tmp), tmp, ["attacks.1.params.width=3"], out="changed")
    assert not changed["trained_models"][0]["cached"]
    assert changed["trained_models"][0]["model_key"] != results["trained_models"][0]["model_key"]


def test_rotation_trains_one_model_per_fold(tmp_path):
    text = PROTOCOL.replace("  test_folds: [0]\n", "").replace("  source: folds\n", "  source: folds\n  rotate: true\n")
    results = _run(_write(tmp_path, text), tmp_path)
    models = results["trained_models"]
    assert [m["fold"] for m in models] == [0, 1, 2, 3]
    assert all(m["n_train_faces"] + m["n_val_faces"] == 27 for m in models)
    assert "one model per test fold" in results["rows"][-1]["attacker_knowledge"]


def _face_folder(root: Path, n_subjects: int, n_images: int) -> Path:
    """Synthetic faces as PNG files, subjects ``other-sNNN`` (never a victim's name)."""
    from PIL import Image

    s = SyntheticFaces(n_subjects=n_subjects, n_images=n_images, seed=7).load()
    for image, sid in zip(s.images, s.ids):
        path = root / f"other-{sid}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return root


def test_separate_attacker_dataset(tmp_path):
    root = _face_folder(tmp_path / "attacker", 9, 3)
    text = PROTOCOL.replace("  source: folds\n", f"  source: dataset\n  dataset: {{name: folder, root: {root}}}\n")
    results = _run(_write(tmp_path, text), tmp_path)
    assert results["attacker"]["source"] == "dataset" and results["attacker"]["n_faces"] == 27
    assert str(root) in results["attacker"]["description"]


def _save(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


# The victims: fold 0 of 12 synthetic subjects (seed 2) in 4 folds, s005, s006 and s009, as image
# files like the attacker's, so that both sides are aligned alike (an identical file, identically).
_VICTIMS = SyntheticFaces(n_subjects=12, n_images=3, seed=2)


@pytest.fixture(scope="module")
def overlap_data(tmp_path_factory):
    """Victim files, and an attacker of eight strangers (three faces each) with two victims under other names.

    ``renamed`` holds victim s005's faces re-encoded as JPEG: no identical face, only the
    recognizer can tell. ``other-s007`` is a stranger whose folder also holds a copy of one
    file of victim s006's: most of its scores are a stranger's, only the content can tell.
    """
    from PIL import Image

    tmp = tmp_path_factory.mktemp("overlap")
    root = _face_folder(tmp / "attacker", 8, 3)
    s = _VICTIMS.load()
    for image, sid in zip(s.images, s.ids):
        _save(tmp / "victims" / f"{sid}.png", image)
        if sid.startswith("s005/"):
            (root / "renamed").mkdir(exist_ok=True)
            Image.fromarray(image).save(root / "renamed" / f"{sid[5:]}.jpg", quality=90)
    shutil.copy(tmp / "victims" / "s006" / "01.png", root / "other-s007" / "copy.png")
    return tmp / "victims", root


def _dataset_protocol(data: tuple[Path, Path], overlap: str = "") -> str:
    victims, root = data
    block = f"  source: dataset\n  dataset: {{name: folder, root: {root}}}\n" + (
        f"  overlap: {overlap}\n" if overlap else ""
    )
    text = PROTOCOL.replace("  source: folds\n", block).replace("views: [strength, linkage]\n", "views: [strength]\n")
    text = text.replace("face_quality: [detector]\nexamples: 2\n", "")
    return text.replace(
        "  name: synthetic\n  params: {n_subjects: 12, n_images: 3, seed: 2}\n", f"  name: folder\n  root: {victims}\n"
    )


@pytest.fixture(scope="module")
def overlap_run(tmp_path_factory, overlap_data):
    tmp = tmp_path_factory.mktemp("overlap-run")
    return _run(_write(tmp, _dataset_protocol(overlap_data)), tmp)


def test_a_victim_under_another_name_is_dropped_by_face(overlap_run):
    attacker = overlap_run["attacker"]
    overlap = attacker["overlap"]
    assert overlap["policy"] == "drop" and overlap["recognizer"] == "lbp"
    matches = {m["attacker_subject"]: m for m in overlap["matches"]}
    assert set(matches) == {"renamed", "other-s007"}
    assert matches["renamed"]["victim_subject"] == "s005" and matches["renamed"]["n_identical"] == 0
    assert matches["renamed"]["score"] > overlap["threshold"]
    # Three victims of three faces: 27 impostor scores, too few for FMR 1e-4, so their maximum.
    assert overlap["n_impostor"] == 27 and not overlap["fmr_supported"]
    assert overlap["n_subjects_dropped"] == 2 and overlap["n_faces_dropped"] == 3 + 4
    assert attacker["n_faces"] == 21 and attacker["n_subjects"] == 7
    assert "2 subject(s) (7 faces) dropped" in attacker["description"]
    (model,) = overlap_run["trained_models"]
    assert model["n_train_faces"] + model["n_val_faces"] == 21


def test_identical_faces_under_other_names_are_found(overlap_run):
    """A stranger's folder holding one file of a victim's: found by content, whatever the recognizer scores."""
    (match,) = [m for m in overlap_run["attacker"]["overlap"]["matches"] if m["attacker_subject"] == "other-s007"]
    assert match["victim_subject"] == "s006" and match["n_identical"] == 1


def test_a_victim_under_another_name_is_refused_with_overlap_refuse(tmp_path, overlap_data):
    message = _error(tmp_path, _dataset_protocol(overlap_data, "refuse"))
    assert "attacker.overlap: 2 attacker subject(s) match a victim subject by face" in message
    assert "'other-s007' -> 's006'" in message


def test_the_report_names_the_matched_subjects(overlap_run, first_run):
    from reports.render import render_report

    html = render_report(overlap_run)
    section = html[html.index('<section id="attacker-overlap">') :]
    section = section[: section.index("</section>")]
    assert "2 attacker subject(s) matched a victim subject by face" in section
    assert "the victims&#39; 27 impostor scores (too few for that FMR: their maximum)" in section
    assert "7 of their faces dropped before training" in section
    assert "<td>renamed</td><td>s005</td>" in section and "<td>other-s007</td><td>s006</td>" in section
    # The evaluation dataset's own folds need no face check: no section.
    assert 'id="attacker-overlap"' not in render_report(first_run[1])


def test_identical_faces_without_a_recognizer():
    found = find_overlap(
        None,
        victim_features=None,
        victim_subjects=["v1", "v1", "v2", "v2", "v3"],
        victim_hashes=[f"h{i}" for i in range(5)],
        attacker_features=None,
        attacker_subjects=["a", "a", "b", "c"],
        attacker_hashes=["x", "h2", "h4", "y"],
    )
    assert found["threshold"] is None
    assert [(m["attacker_subject"], m["victim_subject"], m["score"], m["n_identical"]) for m in found["matches"]] == [
        ("a", "v2", None, 1),
        ("b", "v3", None, 1),
    ]


def test_impostor_threshold_at_an_fmr_and_below_what_the_data_supports():
    scores = np.random.default_rng(0).permutation(20_000).astype(float)
    # 20,000 impostor scores at FMR 1e-4: two may lie above the threshold.
    assert impostor_threshold(scores, 20_000, 1e-4) == (19_997.0, True)
    assert impostor_threshold(scores[-5:], 20_000, 1e-4) == (float(np.sort(scores[-5:])[-3]), True)
    assert impostor_threshold(scores[:10_000], 10_000, 1e-4)[1]
    # 100 scores cannot show a rate of 1e-4: the strictest threshold they support is their maximum.
    assert impostor_threshold(scores[:100], 100, 1e-4) == (float(scores[:100].max()), False)


# --------------------------------------------------------------------------- errors: one located line


def _error(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(ProtocolError) as info:
        lp = load_protocol(_write(tmp_path, text), list(overrides))
        run_protocol(lp, RunOptions(out=tmp_path / "out", cache=Cache(tmp_path / "cache"), workers=1))
    message = str(info.value)
    assert "\n" not in message
    assert not (tmp_path / "out" / "results.json").exists()
    return message


def test_learned_attack_without_attacker(tmp_path):
    text = PROTOCOL.split("attacker:")[0] + "views: [strength]\n"
    assert "p.yaml:12: attacks[1].name: inpaint learns from the attacker's own faces" in _error(tmp_path, text)


def test_attacker_without_learned_attack(tmp_path):
    message = _error(tmp_path, PROTOCOL, ["attacks=[naive]"])
    assert "attacker: no attack learns" in message


def test_folds_source_needs_a_fold_left_for_the_attacker(tmp_path):
    message = _error(tmp_path, PROTOCOL.replace("  test_folds: [0]\n", ""))
    assert "p.yaml:13: attacker.source:" in message and "test_folds covers all 4" in message


def test_missing_attacker_dataset(tmp_path):
    text = PROTOCOL.replace("  source: folds\n", "  source: dataset\n  dataset: {name: folder, root: /no/such/dir}\n")
    assert "attacker.dataset.root: '/no/such/dir' does not exist" in _error(tmp_path, text)


def test_too_small_attacker_dataset(tmp_path):
    root = _face_folder(tmp_path / "few", 3, 2)
    text = PROTOCOL.replace("  source: folds\n", f"  source: dataset\n  dataset: {{name: folder, root: {root}}}\n")
    message = _error(tmp_path, text)
    assert "attacker.dataset.root:" in message and "need at least 16" in message


def test_attacker_dataset_sharing_victim_subjects(tmp_path):
    text = PROTOCOL.replace(
        "  source: folds\n", "  source: dataset\n  dataset: {name: synthetic, params: {n_subjects: 12, n_images: 3}}\n"
    )
    message = _error(tmp_path, text)
    assert "attacker.dataset.root: shares 3 subject(s) with the victims" in message


def test_bad_attacker_block_is_located(tmp_path):
    text = PROTOCOL.replace("  keys_per_face: 2\n", "  keys_per_face: 0\n")
    assert "p.yaml:15: attacker.keys_per_face: 0 is not >= 1" in _error(tmp_path, text)
    text = PROTOCOL.replace("  source: folds\n", "  source: dataset\n")
    assert "source: dataset needs a dataset" in _error(tmp_path, text)


# --------------------------------------------------------------------------- units


def _faces(subjects: list[str]) -> AttackerFaces:
    n = len(subjects)
    plain = ImageSet("attacker", "k", np.zeros((n, 112, 112, 3), np.uint8), np.zeros(n, bool))
    return AttackerFaces(plain, [f"{s}/{i}" for i, s in enumerate(subjects)], subjects, "test faces")


def test_a_training_set_holding_a_victim_subject_is_refused(tmp_path):
    faces = _faces(["a", "a", "b", "c"])
    victims = ["c", "d"]
    spec = AttackerSpec(source="folds")
    engine = Engine(Cache(tmp_path / "c"))
    ok = Group(np.array([0, 1]), np.array([2]), np.array([False, True]))
    Attacker(engine, spec, faces, [ok], victims)  # the model attacks "d" only: fine
    leak = Group(np.array([0, 1]), np.array([2, 3]), np.array([True, True]))
    with pytest.raises(LeakError, match="victim subject"):
        Attacker(engine, spec, faces, [leak], victims)


def test_validation_holds_out_whole_subjects():
    subjects = [f"s{i // 3}" for i in range(30)]
    fit, val = _split(subjects, np.arange(30), 0.2, seed=0)
    assert len(fit) + len(val) == 30 and 6 <= len(val) <= 9
    assert not {subjects[i] for i in fit} & {subjects[i] for i in val}
    assert np.array_equal(_split(subjects, np.arange(30), 0.2, seed=0)[1], val)


def test_attacker_key_is_independent_of_victim_keys():
    assert MasterKey.attacker(0) != MasterKey.evaluation(0)
    assert MasterKey.attacker(0) == MasterKey.attacker(0)
    assert MasterKey.attacker(0).source == "attacker"


def test_a_new_attacker_key_every_faces_per_key_faces(tmp_path):
    lp = load_protocol(_write(tmp_path), ["attacker.faces_per_key=10"])
    res = run_protocol(lp, RunOptions(out=tmp_path / "out", cache=Cache(tmp_path / "cache"), workers=1))
    protects = {r.label for r in res.engine.records if r.stage == "protect" and r.label.startswith("attacker:")}
    # 27 attacker faces in runs of 10: three runs, each under its own key, for each of the two key indices.
    assert len(protects) == 6
    assert {p.rsplit("/", 2)[-2:][0] for p in protects} == {"attacker-key-0", "attacker-key-1"}
    assert json.loads(res.results_path.read_text())["attacker"]["faces_per_key"] == 10


def test_listed_training_settings_take_turns_run_by_run(tmp_path):
    """train_on [noise 0, noise 80]: runs of faces_per_key faces alternate between the two settings."""
    from attacks.finetune import FineTuneAttack
    from benchmark.core.registry import SCHEMES

    rng = np.random.default_rng(0)
    subjects = [f"s{i // 2}" for i in range(8)]
    faces = _faces(subjects)
    faces.plain.images[:] = rng.integers(0, 256, faces.plain.images.shape, dtype=np.uint8)
    spec = AttackerSpec(source="folds", keys_per_face=1, faces_per_key=2)
    group = Group(np.arange(8), np.arange(0), np.zeros(2, bool))
    attacker = Attacker(Engine(Cache(tmp_path / "c")), spec, faces, [group], ["x", "y"])
    listed = [{"name": "noise", "params": {"sigma": 0.0}}, {"name": "noise", "params": {"sigma": 80.0}}]
    attack = FineTuneAttack(train_on=listed, device="cpu")
    settings = attacker._train_settings(attack, SCHEMES.get("noise")(), "noise")
    assert settings[0].startswith("train-") and len(settings[1]) == 2
    (images,) = attacker._attacker_inputs(attack, settings)
    same = [np.array_equal(images.images[i], faces.plain.images[i]) for i in range(8)]
    assert same == [True, True, False, False, True, True, False, False]
    # Without train_on, the setting attacked is the only one.
    assert attacker._train_settings(FineTuneAttack(), SCHEMES.get("noise")(), "noise")[0] == "noise"


def test_attacker_keys_depend_on_the_faces_not_on_cache_keys(tmp_path):
    """A code edit changes every cache key; the attacker's keys (hence its training data) must not change with it."""
    from attacks.finetune import FineTuneAttack
    from benchmark.core.registry import SCHEMES

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    spec = AttackerSpec(source="folds", keys_per_face=1, faces_per_key=2)
    group = Group(np.arange(4), np.arange(0), np.zeros(2, bool))
    scheme = SCHEMES.get("noise")()
    outputs = []
    for cache_key in ("code-version-1", "code-version-2"):
        plain = ImageSet("attacker", cache_key, images.copy(), np.zeros(4, bool))
        faces = AttackerFaces(plain, [f"s{i}/0" for i in range(4)], [f"s{i}" for i in range(4)], "test faces")
        attacker = Attacker(Engine(Cache(tmp_path / cache_key)), spec, faces, [group], ["x", "y"])
        settings = attacker._train_settings(FineTuneAttack(), scheme, "noise")
        outputs.append(attacker._attacker_inputs(FineTuneAttack(), settings)[0].images)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], images)  # the noise was applied


# --------------------------------------------------------------------------- how a trained model stopped


def test_the_stop_of_a_history_is_summarised_for_the_trained_models_block():
    from benchmark.engine.attacker import stop_summary

    converged = [
        {"epoch": 1, "kept": False},
        {"epoch": 2, "kept": True},
        {"epoch": 3, "kept": False, "stop": "plateau"},
    ]
    assert stop_summary(converged) == {"stopped": "converged", "budget": None, "epochs": 3, "best_epoch": 2}
    minutes = [{"epoch": 0, "kept": False}, {"epoch": 1, "kept": True, "stop": "max_minutes"}]
    assert stop_summary(minutes) == {"stopped": "budget", "budget": "minutes", "epochs": 1, "best_epoch": 1}
    assert stop_summary([{"epoch": 5, "stop": "max_epochs"}])["budget"] == "epochs"
    # Histories written before plateau stopping do not say.
    assert stop_summary([{"epoch": 1}]) == {"stopped": None, "budget": None, "epochs": 1, "best_epoch": None}


def test_each_trained_model_records_why_it_stopped(first_run):
    """The protocol's one-epoch budget (``epochs: 1``, the deprecated alias) ran out: ``budget``, by epochs."""
    _, results = first_run
    (model,) = results["trained_models"]
    assert (model["stopped"], model["budget"], model["epochs"], model["best_epoch"]) == ("budget", "epochs", 1, 1)
    assert model["history"][-1]["stop"] == "max_epochs"

"""``finetune``: margin heads, learning on held-out identities, determinism, the pipeline's rows and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from attacks.finetune import FineTuneAttack, margin_logits, pair_eer, probe_reference_eer
from benchmark.core.cache import Cache
from benchmark.core.component import ParamError, RecognizerAttack
from benchmark.core.keys import MasterKey
from benchmark.core.registry import ATTACKS, SCHEMES
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.engine.pipeline import RunOptions, run_protocol
from benchmark.engine.protocol import ProtocolError, load_protocol
from benchmark.engine.scores import read_scores
from benchmark.metrics.irreversibility import SAR_TARGETS, operating_threshold
from benchmark.metrics.verification import eer, target_key
from benchmark.recognizers.onnx import SFaceRecognizer

needs_sface = pytest.mark.skipif(SFaceRecognizer().available() is not None, reason="SFace model not installed")


# --------------------------------------------------------------------------- heads and helpers


def test_arcface_adds_the_margin_to_the_true_class_angle_only():
    import torch

    cos = torch.tensor([[0.8, 0.1, -0.2], [0.0, 0.5, 0.3]])
    labels = torch.tensor([0, 1])
    out = margin_logits(cos, labels, "arcface", 10.0, 0.3)
    assert out[0, 0].item() == pytest.approx(10 * math.cos(math.acos(0.8) + 0.3), rel=1e-5)
    assert out[1, 1].item() == pytest.approx(10 * math.cos(math.acos(0.5) + 0.3), rel=1e-5)
    np.testing.assert_allclose(out[0, 1:].numpy(), [1.0, -2.0], rtol=1e-6)
    np.testing.assert_allclose(out[1, [0, 2]].numpy(), [0.0, 3.0], rtol=1e-6)


def test_cosface_subtracts_the_margin_from_the_true_class_cosine():
    import torch

    cos = torch.tensor([[0.8, 0.1]])
    out = margin_logits(cos, torch.tensor([0]), "cosface", 30.0, 0.35)
    np.testing.assert_allclose(out.numpy(), [[30 * 0.45, 3.0]], rtol=1e-6)


def test_arcface_target_stays_monotonic_past_pi():
    """Near theta = pi the fallback keeps the target logit decreasing in the angle."""
    import torch

    cos = torch.linspace(-1.0, 1.0, 201)[:, None]
    out = margin_logits(cos, torch.zeros(201, dtype=torch.long), "arcface", 1.0, 0.5)[:, 0]
    assert torch.all(out[1:] >= out[:-1])


def test_pair_eer():
    feats = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    assert pair_eer(feats, np.array([0, 0, 1, 1])) == 0.0
    assert pair_eer(feats, np.array([0, 1, 2, 3])) is None  # no mated pair
    assert pair_eer(feats[:2], np.array([0, 0])) is None


def test_probe_reference_eer_never_compares_a_face_with_itself():
    """Probe i and reference i are the same face: only i != j pairs count, mated or not."""
    feats = np.eye(4, dtype=np.float32)  # every face scores 1 with itself, 0 with any other
    labels = np.array([0, 0, 1, 1])
    # Off the diagonal all 12 scores are 0 (4 mated, 8 non-mated): chance level.
    assert probe_reference_eer(feats, feats, labels) == eer(np.zeros(4), np.zeros(8))
    # A protected probe close to other faces of its subject only, and to no plain face of another.
    probes = np.array([[0.6, 0.8], [0.6, 0.8], [0.8, 0.6], [0.8, 0.6]], np.float32)
    refs = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], np.float32)
    assert probe_reference_eer(probes, refs, labels) == 0.0
    assert probe_reference_eer(probes, refs, np.array([0, 1, 2, 3])) is None  # no mated pair


# --------------------------------------------------------------------------- parameters


def test_registered_as_a_recognizer_attack_beside_sface():
    cls = ATTACKS.get("finetune")
    assert cls is FineTuneAttack and issubclass(cls, RecognizerAttack)
    assert set(cls.recognizers) == {"sface", "sface-torch"}


def test_label_names_the_training_settings():
    assert FineTuneAttack().label() == "finetune"
    listed = [
        {"name": "j2k", "params": {"window": 4, "offset": 0}},
        {"name": "j2k", "params": {"window": 4, "offset": 4, "progression": "resolution"}},
    ]
    attack = FineTuneAttack(train_on=listed, head="cosface")
    assert attack.label() == "finetune[lw4o0,rw4o4]-cosface"
    assert attack.train_schemes() == [("j2k", {"window": 4, "offset": 0}), ("j2k", listed[1]["params"])]
    assert FineTuneAttack().train_schemes() is None


@pytest.mark.parametrize(
    ("params", "where", "what"),
    [
        ({"input": "finetune"}, "input", "learned attack"),
        ({"input": "nope"}, "input", "not a registered attack"),
        ({"train_on": []}, "train_on", "empty"),
        ({"train_on": [{"name": "nope"}]}, "train_on.0.name", "not a registered scheme"),
        ({"train_on": [{"name": "j2k", "params": {"window": 200}}]}, "train_on.0.params.window", ""),
        ({"train_on": [{"name": "j2k", "extra": 1}]}, "train_on.0", "mapping"),
        ({"train_on": ["j2k"]}, "train_on.0", "mapping"),
        ({"train_blocks": 0}, "train_blocks", ""),
        ({"head": "softmax"}, "head", ""),
    ],
)
def test_bad_parameters_name_the_field(params, where, what):
    with pytest.raises(ParamError) as err:
        FineTuneAttack.from_params(params)
    assert err.value.param == where and what in str(err.value)


def test_unfitted_embed_is_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        FineTuneAttack().embed(np.zeros((1, 112, 112, 3), np.uint8))


# --------------------------------------------------------------------------- learning


def _protected_split():
    """Generated faces of 24 subjects, lightly encrypted (lw1o0) under an attacker key and decoded naively.

    Subjects 0-17 train, 18-23 are held out; the plain faces come last.
    """
    samples = SyntheticFaces(n_subjects=24, n_images=5, seed=1).load()
    images = np.asarray(samples.images)
    scheme = SCHEMES.get("j2k").from_params({"progression": "layer", "window": 1, "offset": 0})
    key = MasterKey.attacker(0).application("test")
    decoded = ATTACKS.get("naive")().attack(scheme.protect(images, key, samples.ids, samples.subjects), scheme).images
    codes = np.unique(np.asarray(samples.subjects), return_inverse=True)[1]
    held = codes >= 18
    return decoded, codes, held, images


@pytest.fixture(scope="module")
def split():
    return _protected_split()


@needs_sface
def test_training_is_deterministic_and_state_round_trips(split):
    """Same seed, same thread count: the same weights, bit for bit."""
    x, y, held, _ = split
    one = FineTuneAttack(device="cpu", max_epochs=1).fit(x[~held], y[~held])
    two = FineTuneAttack(device="cpu", max_epochs=1).fit(x[~held], y[~held])
    state = one.state_arrays()
    assert state.keys() == two.state_arrays().keys()
    for k, v in state.items():
        np.testing.assert_array_equal(v, two.state_arrays()[k], err_msg=k)
    restored = FineTuneAttack(device="cpu", max_epochs=1).load_state(state, one.history_)
    np.testing.assert_allclose(restored.embed(x[:6]), one.embed(x[:6]), atol=1e-6)


@needs_sface
def test_validation_keeps_the_best_epoch_including_the_pretrained_model(split):
    x, y, held, plain = split
    attack = FineTuneAttack(device="cpu", max_epochs=2).fit(
        x[~held], y[~held], val_inputs=x[held], val_labels=y[held], val_references=plain[held]
    )
    history = attack.history_
    assert history[0]["epoch"] == 0 and history[0]["loss"] is None
    kept = [h for h in history if h["kept"]]
    assert len(kept) == 1
    assert kept[0]["val_eer"] == min(h["val_eer"] for h in history)
    # Selected on what the model is judged on: protected probes vs plain references of other faces,
    # both embedded by the model (the kept epoch's weights are the fitted model's).
    probes, refs = attack.embed(x[held]), attack.embed(plain[held])
    judged = probe_reference_eer(probes, refs, y[held])
    assert kept[0]["val_eer"] == pytest.approx(judged, abs=1e-9)
    assert judged != pytest.approx(pair_eer(probes, y[held]), abs=1e-9)  # not protected vs protected
    with pytest.raises(ValueError, match="val_references"):
        FineTuneAttack(device="cpu", max_epochs=1).fit(x[~held], y[~held], val_inputs=x[held], val_labels=y[held])


# --------------------------------------------------------------------------- in a protocol

PROTOCOL = """\
name: finetune
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 3, seed: 2}
  folds: 4
  test_folds: [0]
  seed: 0
recognizers: [sface, {name: lbp, params: {radius: 2}}]
schemes: [{name: j2k, params: {window: 1, offset: 0}}]
attacks:
  - naive
  - {name: finetune, params: {epochs: 1, device: cpu}}
  - name: finetune
    params:
      epochs: 1
      device: cpu
      train_on: [{name: j2k, params: {window: 2, offset: 0}}, {name: j2k, params: {window: 2, offset: 2}}]
  - {name: finetune, params: {max_epochs: 1, device: cpu, input: conceal-codeblock}}
attacker:
  source: folds
  keys_per_face: 1
  faces_per_key: 8
views: [strength, linkage]
metrics: [eer]
bootstrap: {n_boot: 0}
"""


def _run(tmp_path: Path, text: str = PROTOCOL) -> dict:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    res = run_protocol(load_protocol(path), RunOptions(out=tmp_path / "out", cache=Cache(tmp_path / "cache")))
    return json.loads(res.results_path.read_text())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("finetune")


@pytest.fixture(scope="module")
def results(run_dir):
    return _run(run_dir)


@needs_sface
def test_rows_stand_beside_the_base_recognizer_only(results):
    rows = {(r["recognizer"], r["view"]): r for r in results["rows"]}
    listed = "finetune[lw2o0,lw2o2]"
    for attack in ("finetune", listed, "finetune(conceal-codeblock)"):
        for view in (f"strength:{attack}", f"linkage:{attack}"):
            assert ("sface", view) in rows and ("lbp", view) not in rows
    assert ("lbp", "strength:naive") in rows and ("sface", "strength:naive") in rows
    knowledge = rows[("sface", f"strength:{listed}")]["attacker_knowledge"]
    assert "base model sface" in knowledge and "window=2, offset=2" in knowledge
    assert "no victim subject in any training set (checked)" in knowledge
    assert "the setting attacked" in rows[("sface", "strength:finetune")]["attacker_knowledge"]


@needs_sface
def test_trained_models_are_declared_and_disjoint_from_the_victims(results):
    models = {m["attack"]: m for m in results["trained_models"]}
    assert set(models) == {"finetune", "finetune[lw2o0,lw2o2]", "finetune(conceal-codeblock)"}
    assert models["finetune(conceal-codeblock)"]["params"]["input"] == "conceal-codeblock"
    assert all(m["kind"] == "recognizer" for m in models.values())
    assert models["finetune"]["scheme"] == "lw1o0" and models["finetune[lw2o0,lw2o2]"]["scheme"] is None
    assert results["attacker"]["subject_disjoint"] is True
    # 12 subjects in 4 folds: the attacker trains on 9 subjects (minus validation), never the 3 victims'.
    assert all(m["n_train_subjects"] <= 9 for m in models.values())
    # Its images are naive's: no quality columns or example column of its own.
    assert results["examples"][0]["columns"] == ["original", "protected (naive decode)"]


@needs_sface
def test_fine_tuned_rows_are_measured_at_their_own_baselines_thresholds(results, run_dir):
    """SAR thresholds and ΔEER of a fine-tuned recognizer's rows come from plain vs plain through *that* model."""
    rows = {(r["recognizer"], r["view"]): r for r in results["rows"]}
    assert rows[("sface", "strength:naive")]["threshold_source"] == "baseline of sface"
    assert rows[("lbp", "strength:naive")]["threshold_source"] == "baseline of lbp"
    assert "baseline_score_file" not in rows[("sface", "strength:naive")]
    pretrained = read_scores(run_dir / "out" / rows[("sface", "baseline")]["score_file"])
    for attack in ("finetune", "finetune[lw2o0,lw2o2]", "finetune(conceal-codeblock)"):
        row = rows[("sface", f"strength:{attack}")]
        assert row["threshold_source"] == f"baseline of {attack} (plain vs plain through the fine-tuned model)"
        own = read_scores(run_dir / "out" / row["baseline_score_file"])
        assert rows[("sface", f"linkage:{attack}")]["baseline_score_file"] == row["baseline_score_file"]
        assert own.probe == pretrained.probe and own.reference == pretrained.reference
        assert not np.allclose(own.score, pretrained.score)  # another model's scores
        attacked = read_scores(run_dir / "out" / row["score_file"])
        m = row["metrics"]
        for t in SAR_TARGETS:
            threshold = operating_threshold(own.genuine(), own.impostor(), t)
            assert m[f"sar_threshold_at_fmr_{target_key(t)}"] == threshold
            assert m[f"sar_threshold_fmr_at_fmr_{target_key(t)}"] == np.mean(own.impostor() >= threshold) <= t
            assert m[f"sar_at_fmr_{target_key(t)}"] == np.mean(attacked.genuine() >= threshold)
        assert m["delta_eer"] == pytest.approx(m["eer"] - eer(own.genuine(), own.impostor()), abs=1e-12)


@needs_sface
def test_fine_tuned_baseline_is_scored_with_the_fine_tuned_features(results, run_dir):
    """The own baseline's scores are cosines of the fitted model's embeddings, not the pretrained model's."""
    model = next(m for m in results["trained_models"] if m["attack"] == "finetune")
    loaded = Cache(run_dir / "cache").load("train", model["model_key"])
    assert loaded is not None
    arrays, meta = loaded
    tuned = FineTuneAttack.from_params(model["params"]).load_state(arrays, meta["history"])
    samples = SyntheticFaces(n_subjects=12, n_images=3, seed=2).load()
    index = {sid: i for i, sid in enumerate(samples.ids)}
    row = next(r for r in results["rows"] if r["view"] == "strength:finetune")
    own = read_scores(run_dir / "out" / row["baseline_score_file"])
    images = np.asarray(samples.images)
    probe, ref = [np.array([index[s] for s in ids]) for ids in (own.probe, own.reference)]
    feats = tuned.embed(images)
    np.testing.assert_allclose(own.score, np.einsum("ij,ij->i", feats[probe], feats[ref]), atol=1e-5)
    pretrained = SFaceRecognizer().transform(images)
    assert not np.allclose(own.score, np.einsum("ij,ij->i", pretrained[probe], pretrained[ref]), atol=1e-3)


def test_protocol_without_the_base_recognizer_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.replace("recognizers: [sface, ", "recognizers: ["))
    with pytest.raises(ProtocolError) as err:
        load_protocol(path)
    assert "p.yaml:12: attacks[1].name: finetune fine-tunes sface / sface-torch" in str(err.value)


def test_train_on_errors_point_into_the_protocol(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.replace("window: 2, offset: 2", "window: 2, offset: 200"))
    with pytest.raises(ProtocolError) as err:
        load_protocol(path)
    assert "attacks[2].params.train_on.1.params.offset" in str(err.value)


@pytest.mark.slow
def test_fine_tuning_beats_the_pretrained_recognizer_on_real_faces(orl_root, tmp_path):
    """ORL, lw6o0: the victims' strength and linkage EERs fall below the pretrained recognizer's."""
    text = f"""
dataset: {{name: orl, root: {orl_root}, folds: 4, test_folds: [0]}}
recognizers: [sface]
schemes: [{{name: j2k, params: {{progression: layer, window: 6, offset: 0}}}}]
attacks: [naive, {{name: finetune, params: {{device: cpu}}}}]
attacker: {{source: folds, keys_per_face: 2, validation: 0.2}}
views: [strength, linkage]
bootstrap: {{n_boot: 0}}
"""
    rows = {r["view"]: r["metrics"]["eer"] for r in _run(tmp_path, text)["rows"]}
    assert rows["strength:finetune"] < rows["strength:naive"], rows
    assert rows["linkage:finetune"] < rows["linkage:naive"], rows


@needs_sface
def test_whole_network_fine_tuning_runs_and_gpu_default_is_the_whole_network(monkeypatch):
    """train_blocks 14 (the GPU default) trains from the input; on the CPU the default is 2 stages."""
    faces = np.asarray(SyntheticFaces(n_subjects=3, n_images=2, seed=0).load().images)
    labels = np.repeat(np.arange(3), 2)
    whole = FineTuneAttack(device="cpu", train_blocks=14, max_epochs=1, batch_size=6).fit(faces, labels)
    assert whole.label() == "finetune-b14" and whole.embed(faces).shape == (6, 128)
    assert any(k.startswith("0.0.") for k in whole.state_arrays())  # the stem is among the trained weights
    assert FineTuneAttack(device="cpu").trained_stages() == 2
    monkeypatch.setattr(FineTuneAttack, "resolved_device", lambda self: "cuda")
    assert FineTuneAttack().trained_stages() == 14

"""The keyless input attack that learned attacks start from; ``finetune`` keeps its best epoch and learns."""

from __future__ import annotations

import numpy as np
import pytest

from attacks.finetune import FineTuneAttack, probe_reference_eer
from attacks.learned import Stopping, input_attack_named
from benchmark.core.component import LearnedAttack, ParamError
from benchmark.core.keys import MasterKey
from benchmark.core.registry import ATTACKS, SCHEMES
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.recognizers.onnx import SFaceRecognizer
from benchmark.recognizers.sface_torch import load_sface_torch


def test_a_keyless_attack_is_built_with_its_defaults():
    attack = input_attack_named("conceal-codeblock")
    assert attack.registry_name == "conceal-codeblock" and not isinstance(attack, LearnedAttack)


@pytest.mark.parametrize(
    ("name", "what"), [("inpaint", "learned attack"), ("finetune", "learned attack"), ("x", "not a registered")]
)
def test_learned_or_unknown_inputs_are_refused(name, what):
    with pytest.raises(ParamError) as err:
        input_attack_named(name)
    assert err.value.param == "input" and what in str(err.value)


# --------------------------------------------------------------------------- finetune: best epoch, learning

needs_sface = pytest.mark.skipif(SFaceRecognizer().available() is not None, reason="SFace model not installed")


@needs_sface
@pytest.mark.parametrize(("scripted", "best"), [([0.3, 0.25, 0.1, 0.2], 2), ([0.1, 0.2, 0.15, 0.3], 0)])
def test_finetune_keeps_the_epoch_of_the_lowest_validation_eer(faces, monkeypatch, scripted, best):
    """The kept weights are the best epoch's (epoch 0, the pretrained model, included), not the last one's.

    Every validation EER ends in :func:`benchmark.metrics.verification.eer`,
    whatever comparisons it is made of; it is replaced by a scripted,
    non-monotone sequence that also snapshots the network being trained.
    """
    import torch

    import attacks.finetune as finetune

    nets: list[torch.nn.Module] = []
    snapshots: list[dict[str, torch.Tensor]] = []

    def load() -> torch.nn.Module:
        nets.append(load_sface_torch())
        return nets[-1]

    def scripted_eer(genuine, impostor) -> float:
        snapshots.append({k: v.detach().clone() for k, v in nets[-1].state_dict().items()})
        return scripted[len(snapshots) - 1]

    monkeypatch.setattr(finetune, "load_sface_torch", load)
    monkeypatch.setattr(finetune, "eer", scripted_eer)
    images, _, subjects = faces
    labels = np.unique(np.asarray(subjects), return_inverse=True)[1]
    train = labels < 3
    attack = FineTuneAttack(device="cpu", max_epochs=3, batch_size=6)
    vx, vy = images[~train], labels[~train]
    attack.fit(images[train], labels[train], val_inputs=vx, val_labels=vy, val_references=vx)
    assert len(snapshots) == 4, "one validation EER per epoch, epoch 0 included"
    assert [h["val_eer"] for h in attack.history_] == scripted
    assert [h["kept"] for h in attack.history_] == [e == best for e in range(4)]
    kept = attack.net_.state_dict()
    for epoch, snap in enumerate(snapshots):
        same = all(torch.equal(kept[k], snap[k]) for k in kept)
        assert same == (epoch == best), epoch  # every epoch's weights differ, so only the best one matches


@needs_sface
def test_finetune_beats_the_pretrained_recognizer_on_held_out_subjects():
    """Protected probes of held-out subjects against their plain faces: the fine-tuned SFace errs less.

    The protection is the ``noise`` scheme at sigma 60, one key-seeded pattern
    per subject (so the attacker learns the noise from 32 patterns, not two);
    the attacker protects 16 subjects under two keys of its own and the
    victims' 8 subjects under a third. Measured EER 0.219 -> 0.200. The input
    attack is ``naive`` (the noisy face as a viewer shows it).
    """
    samples = SyntheticFaces(n_subjects=24, n_images=4, seed=1).load()
    images, subjects, ids = np.asarray(samples.images), np.asarray(samples.subjects), np.asarray(samples.ids)
    labels = np.unique(subjects, return_inverse=True)[1]
    held = labels >= 16
    scheme = SCHEMES.get("noise").from_params({"sigma": 60.0, "per_subject": True})
    naive = ATTACKS.get("naive")()

    def protect(mask: np.ndarray, key: int) -> np.ndarray:
        app = MasterKey.attacker(key).application("test")
        return naive.attack(scheme.protect(images[mask], app, list(ids[mask]), list(subjects[mask])), scheme).images

    x = np.concatenate([protect(~held, 0), protect(~held, 1)])
    y = np.concatenate([labels[~held], labels[~held]])
    probes, plain, victims = protect(held, 2), images[held], labels[held]
    tuned = FineTuneAttack(device="cpu", max_epochs=3).fit(x, y)
    # Without validation faces the last epoch is kept.
    assert [h["epoch"] for h in tuned.history_] == [0, 1, 2, 3] and tuned.history_[-1]["kept"]
    pretrained = SFaceRecognizer()
    after = probe_reference_eer(tuned.embed(probes), tuned.embed(plain), victims)
    before = probe_reference_eer(pretrained.transform(probes), pretrained.transform(plain), victims)
    # Margin: one mated comparison's share of the EER (8 subjects x 4 x 3 = 96 pairs), so a
    # difference within the resolution of this small set does not count as learning.
    n_mated = 8 * 4 * 3
    assert after < before - 1 / n_mated, (after, before)


# --------------------------------------------------------------------------- when training stops


def _stopping(curve, start=None, **params):
    """Run :class:`Stopping` over a scripted validation curve: the epochs run, the reason and the rates used."""
    from types import SimpleNamespace

    from attacks.inpaint import InpaintAttack

    attack = InpaintAttack(**params)
    optimiser = SimpleNamespace(param_groups=[{"lr": 1.0}, {"lr": 10.0}])
    stopping = Stopping(attack, optimiser, start=start)
    rates = []
    for epoch, score in enumerate(curve, 1):
        rates.append([g["lr"] for g in optimiser.param_groups])
        if stopping.step(epoch, score):
            return epoch, stopping.reason, rates
    return len(curve), None, rates


def test_slow_progress_that_adds_up_counts_as_progress():
    """0.6 % a step: no step alone is a 1 % gain on the last best, but two together are."""
    curve = [0.994**k for k in range(12)]
    assert _stopping(curve, max_epochs=12, patience=2, lr_patience=None)[:2] == (12, "max_epochs")
    # 0.3 % a step: two steps add up to 0.6 %, under 1 %: a plateau after epoch 3.
    assert _stopping([0.997**k for k in range(12)], max_epochs=12, patience=2)[:2] == (3, "plateau")
    # The same curve with an absolute threshold of 0.001 (a gain of about 0.003 a step): no plateau.
    slow = [0.997**k for k in range(12)]
    assert _stopping(slow, max_epochs=12, patience=2, min_delta=0.001, min_delta_mode="absolute")[:2] == (
        12,
        "max_epochs",
    )


def test_every_lr_patience_flat_epochs_halve_every_rate():
    flat = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    epochs, reason, rates = _stopping(flat, max_epochs=50, patience=6, lr_patience=2)
    assert (epochs, reason) == (7, "plateau")  # epoch 1 sets the best; six flat epochs follow
    assert rates == [[1.0, 10.0]] * 3 + [[0.5, 5.0]] * 2 + [[0.25, 2.5]] * 2


def test_a_pretrained_score_is_the_first_best():
    """A fine-tune that never beats the pretrained model's validation EER stops on a plateau."""
    assert _stopping([0.3, 0.3, 0.3, 0.1], start=0.3, max_epochs=50, patience=3)[:2] == (3, "plateau")
    # No validation: no plateau, whatever the patience.
    assert _stopping([None] * 5, max_epochs=5, patience=1)[:2] == (5, "max_epochs")


@needs_sface
def test_finetune_stops_on_a_plateau_and_keeps_the_pretrained_model(faces, monkeypatch):
    """Validation EER never better than the pretrained model's: a plateau after ``patience`` epochs."""
    import attacks.finetune as finetune

    scripted = iter([0.3, 0.3, 0.31, 0.3, 0.1, 0.1])
    monkeypatch.setattr(finetune, "eer", lambda genuine, impostor: next(scripted))
    images, _, subjects = faces
    labels = np.unique(np.asarray(subjects), return_inverse=True)[1]
    train = labels < 3
    vx, vy = images[~train], labels[~train]
    attack = FineTuneAttack(device="cpu", max_epochs=20, patience=3, batch_size=6)
    attack.fit(images[train], labels[train], val_inputs=vx, val_labels=vy, val_references=vx)
    assert [h["epoch"] for h in attack.history_] == [0, 1, 2, 3]
    assert attack.history_[-1]["stop"] == "plateau" and attack.history_[0]["kept"]

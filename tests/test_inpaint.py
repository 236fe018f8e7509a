"""``inpaint``: the UNet learns (held-out faces get closer to the originals), deterministically, and validates."""

from __future__ import annotations

import numpy as np
import pytest

from attacks.inpaint import InpaintAttack, build_unet, from_planes, to_planes
from benchmark.core.component import ParamError
from benchmark.data.datasets.synthetic import SyntheticFaces
from schemes.noise import NoiseScheme


def _small_faces(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic faces shrunk to ``size`` (learning is tested on small images: CPU time)."""
    from skimage.transform import resize

    s = SyntheticFaces(n_subjects=24, n_images=6, seed=5).load()
    small = resize(s.images, (len(s.images), size, size, 3), anti_aliasing=True, preserve_range=True)
    return np.rint(small).astype(np.uint8), np.asarray(s.subjects)


def _encrypt_like(faces: np.ndarray, seed: int) -> np.ndarray:
    """A keyed degradation: 40% of the pixels replaced by keystream noise, a new key per call."""
    rng = np.random.default_rng(seed)
    out = faces.copy()
    hit = rng.random(faces.shape[:3]) < 0.4
    noise = rng.integers(0, 256, faces.shape[:3], dtype=np.uint8)
    for c in range(3):
        out[..., c][hit] = noise[hit]
    return out


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


@pytest.fixture(scope="module")
def split():
    faces, subjects = _small_faces()
    held = np.isin(subjects, np.unique(subjects)[-6:])  # whole subjects held out
    return faces, held


def test_learning_beats_the_input_attack_on_held_out_subjects():
    """Whole subjects held out: the network's output is closer to their originals than its input is.

    The protection is a keyed corruption (``_encrypt_like``: 40% of the pixels
    replaced by keystream noise); what the input attack (a viewer, as ``naive``
    is for such a scheme) shows is the corrupted face itself. The attacker
    trains under two keys of its own; the held-out victims' faces are corrupted
    under a third. Images are 24x24 to keep this in the default suite.
    """
    faces, subjects = _small_faces(24)
    held = np.isin(subjects, np.unique(subjects)[-6:])
    train = ~held
    x = np.concatenate([_encrypt_like(faces[train], 1), _encrypt_like(faces[train], 2)])
    y = np.concatenate([faces[train], faces[train]])
    attack = InpaintAttack(depth=1, width=8, max_epochs=3, batch_size=16, device="cpu").fit(x, y)
    probe = _encrypt_like(faces[held], 99)
    input_error = _mse(probe, faces[held])
    learned_error = _mse(attack.reconstruct(probe), faces[held])
    # The margin is a baseline, not a number: beating the input alone could be
    # done by ignoring it and drawing the attacker's mean face, which holds no
    # victim information; the network must beat that too, so it reads its input.
    mean_face = np.broadcast_to(np.rint(faces[train].mean(axis=0)).astype(np.uint8), probe.shape)
    mean_error = _mse(mean_face, faces[held])
    assert learned_error < min(input_error, mean_error), (learned_error, input_error, mean_error)
    assert [h["epoch"] for h in attack.history_] == [1, 2, 3]


def test_training_is_deterministic_for_a_seed(split):
    faces, held = split
    x, y = _encrypt_like(faces[~held], 1), faces[~held]

    def fit(seed: int) -> dict[str, np.ndarray]:
        return (
            InpaintAttack(depth=1, width=4, max_epochs=1, batch_size=16, seed=seed, device="cpu")
            .fit(x, y)
            .state_arrays()
        )

    a, b, c = fit(0), fit(0), fit(1)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_validation_loss_picks_the_best_epoch_and_state_round_trips(split, monkeypatch):
    """The kept weights are those of the epoch with the lowest validation loss, neither the first nor the last.

    The per-epoch validation is replaced by a scripted, non-monotone sequence
    (best at epoch 2 of 3) that also snapshots the weights it is asked about:
    real validation losses of a short run fall monotonically, which a
    keep-the-last-epoch fit would pass too.
    """
    import torch

    faces, held = split
    x, y = _encrypt_like(faces[~held], 1), faces[~held]
    vx, vy = _encrypt_like(faces[held], 2), faces[held]
    scripted = [0.3, 0.1, 0.2]
    snapshots: list[dict[str, torch.Tensor]] = []

    def loss(self, net, inputs, originals, *_):
        assert inputs is vx and originals is vy
        snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return scripted[len(snapshots) - 1]

    monkeypatch.setattr(InpaintAttack, "_loss", loss)
    attack = InpaintAttack(depth=1, width=4, max_epochs=3, batch_size=16, device="cpu")
    attack.fit(x, y, val_inputs=vx, val_originals=vy)
    assert [h["val_loss"] for h in attack.history_] == scripted
    kept = attack.net_.state_dict()
    assert all(torch.equal(kept[k], snapshots[1][k]) for k in kept)
    # The epochs' weights differ, so the check above tells epoch 2 from the others.
    assert not all(torch.equal(kept[k], snapshots[2][k]) for k in kept)
    assert not all(torch.equal(kept[k], snapshots[0][k]) for k in kept)
    out = attack.reconstruct(vx)
    clone = InpaintAttack(**attack.get_params()).load_state(attack.state_arrays(), attack.history_)
    assert np.array_equal(clone.reconstruct(vx), out)


def test_unet_keeps_any_input_size():
    import torch

    net = build_unet(3, 2, 1).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 37, 50))
    assert out.shape == (2, 1, 37, 50)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_planes_round_trip():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8), 3, axis=3)
    assert np.array_equal(from_planes(to_planes(grey, grey=True)), grey)
    rgb = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(from_planes(to_planes(rgb, grey=False)), rgb)


def test_input_must_be_a_registered_keyless_attack():
    with pytest.raises(ParamError, match="did you mean 'naive'"):
        InpaintAttack.from_params({"input": "naiv"})
    with pytest.raises(ParamError, match="learned attack"):
        InpaintAttack.from_params({"input": "inpaint"})
    assert InpaintAttack.from_params({"input": "conceal-codeblock"}).input_attack().registry_name == "conceal-codeblock"


def test_compatibility_is_the_input_attacks():
    noise = NoiseScheme()
    assert InpaintAttack().incompatibility(noise) is None
    assert InpaintAttack(input="conceal-codeblock").incompatibility(noise) is not None


def test_unfitted_reconstruct_is_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        InpaintAttack().reconstruct(np.zeros((1, 16, 16, 3), np.uint8))


def test_attack_runs_the_input_attack_then_the_network(faces):
    images, ids, subjects = faces
    from benchmark.core.keys import MasterKey

    scheme = NoiseScheme()
    key = MasterKey.attacker(0).application("test")
    protected = scheme.protect(images, key, ids, subjects)
    attack = InpaintAttack(depth=1, width=2, max_epochs=1, batch_size=4, device="cpu").fit(
        np.asarray(protected), images
    )
    result = attack.attack(protected, scheme)
    assert result.images.shape == images.shape and result.images.dtype == np.uint8
    assert not result.failed.any() and result.counters == {}
    assert np.array_equal(result.images, attack.reconstruct(np.asarray(protected)))


def test_every_registered_scheme_can_be_attacked_through_the_naive_decode():
    from benchmark.core.registry import SCHEMES

    for name, cls in SCHEMES.items():
        assert InpaintAttack().incompatibility(cls()) is None, name


@pytest.mark.slow
def test_reconstruction_beats_the_naive_decode_on_real_faces(orl_root, tmp_path):
    """ORL, lw4o6, 10 epochs: held-out victims' reconstructions are closer to the originals than their naive decode."""
    import json

    from benchmark.core.cache import Cache
    from benchmark.engine.pipeline import RunOptions, run_protocol
    from benchmark.engine.protocol import load_protocol

    protocol = tmp_path / "p.yaml"
    protocol.write_text(
        f"""
dataset: {{name: orl, root: {orl_root}, folds: 4, test_folds: [0]}}
recognizers: [lbp]
schemes: [{{name: j2k, params: {{window: 4, offset: 6}}}}]
attacks: [naive, {{name: inpaint, params: {{epochs: 10, device: cpu}}}}]
attacker: {{source: folds}}
views: [strength]
bootstrap: {{n_boot: 0}}
"""
    )
    lp = load_protocol(protocol)
    res = run_protocol(lp, RunOptions(out=tmp_path / "out", cache=Cache(tmp_path / "cache"), workers=2))
    rows = {
        r["attack"]: r["metrics"] for r in json.loads(res.results_path.read_text())["rows"] if r["attack"] != "none"
    }
    assert rows["inpaint"]["psnr"] > rows["naive"]["psnr"], rows
    assert rows["inpaint"]["ssim"] > rows["naive"]["ssim"], rows


# ----------------------------------------------------------------- identity-aware loss (loss: mse+identity)


def _sface_missing() -> str | None:
    from benchmark.recognizers.sface_torch import SFaceTorchRecognizer

    return SFaceTorchRecognizer().available()


needs_sface = pytest.mark.skipif(_sface_missing() is not None, reason="SFace model not installed")


@pytest.fixture(scope="module")
def faces112():
    """Four synthetic 112x112 faces of two subjects (SFace's input size)."""
    s = SyntheticFaces(n_subjects=2, n_images=2, seed=7).load()
    assert s.images.shape[1:3] == (112, 112)
    return s.images


@pytest.fixture(scope="module")
def sface():
    """SFace in torch, loaded once (reading and dequantising the file takes seconds)."""
    from benchmark.recognizers.sface_torch import load_sface_torch

    return load_sface_torch().requires_grad_(False)


@pytest.fixture
def one_thread():
    """One torch thread: SFace's small batches run several times faster so on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@needs_sface
@pytest.mark.parametrize("grey", [True, False])
def test_identity_loss_is_zero_for_the_same_faces_and_positive_for_others(faces112, sface, one_thread, grey):
    import torch

    from attacks.inpaint import identity_loss

    target = torch.from_numpy(to_planes(faces112, grey))
    assert float(identity_loss(sface, target.clone(), target)) == pytest.approx(0, abs=1e-5)
    other = torch.from_numpy(to_planes(np.roll(faces112, 1, axis=0), grey)).requires_grad_(True)
    loss = identity_loss(sface, other, target)
    assert 0 < float(loss.detach()) <= 2
    loss.backward()
    # The gradient reaches the reconstruction, not the frozen recognizer.
    assert other.grad is not None and float(other.grad.abs().sum()) > 0
    assert all(p.grad is None for p in sface.parameters())


@needs_sface
def test_identity_loss_refuses_faces_sface_cannot_take(sface):
    import torch

    from attacks.inpaint import identity_loss

    planes = torch.rand(2, 1, 32, 32)
    with pytest.raises(ValueError, match="112x112"):
        identity_loss(sface, planes, planes)


@needs_sface
def test_identity_fit_trains_the_unet_through_a_frozen_sface(faces112, sface, one_thread, monkeypatch):
    """The identity term changes what the UNet learns; SFace's weights and statistics stay those of the file."""
    import copy

    import torch

    import attacks.inpaint as inpaint

    loaded: list[torch.nn.Module] = []

    def spy(model=None):
        # A trainable copy in train mode: fit itself must freeze it.
        loaded.append(copy.deepcopy(sface).train().requires_grad_(True))
        return loaded[-1]

    monkeypatch.setattr(inpaint, "load_sface_torch", spy)
    x, y = _encrypt_like(faces112, 1), faces112

    def fit(loss: str) -> dict[str, np.ndarray]:
        params = dict(depth=1, width=4, max_epochs=1, batch_size=2, device="cpu", loss=loss, identity_weight=1.0)
        return InpaintAttack(**params).fit(x, y).state_arrays()

    plain, identity = fit("mse"), fit("mse+identity")
    assert len(loaded) == 1  # only the identity loss loads SFace
    assert not all(np.array_equal(plain[k], identity[k]) for k in plain)
    used = loaded[0]
    assert not used.training and not any(p.requires_grad for p in used.parameters())
    fresh = sface.state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in used.state_dict().items())


@needs_sface
def test_the_identity_term_uses_precomputed_embeddings_and_a_subset_of_the_batch(faces112, sface, one_thread):
    """Embedding the originals once gives the same term; ``identity_batch`` takes the term on the first k pairs only."""
    import torch

    from attacks.inpaint import _Objective, identity_loss, sface_embed

    target = torch.from_numpy(to_planes(faces112, True))
    output = torch.from_numpy(to_planes(np.roll(faces112, 1, axis=0), True))
    want = sface_embed(sface, target)
    assert float(identity_loss(sface, output, None, want)) == pytest.approx(float(identity_loss(sface, output, target)))
    mse = float(torch.nn.functional.mse_loss(output, target))
    whole = float(_Objective(sface, 0.5, None)(output, target, want))
    first = float(_Objective(sface, 0.5, 1)(output, target, want))
    assert whole == pytest.approx(mse + 0.5 * float(identity_loss(sface, output, target)))
    assert first == pytest.approx(mse + 0.5 * float(identity_loss(sface, output[:1], target[:1])))
    assert first != pytest.approx(whole)  # the four faces' terms differ, so the subset is seen


@needs_sface
def test_the_identity_models_validation_loss_is_its_training_objective(faces112, sface, one_thread, monkeypatch):
    """Early stopping and the kept epoch judge the identity model by MSE plus the identity term, not MSE alone."""
    import attacks.inpaint as inpaint

    monkeypatch.setattr(inpaint, "load_sface_torch", lambda model=None: sface)
    x, y = _encrypt_like(faces112, 1), faces112
    params = dict(depth=1, width=4, max_epochs=1, batch_size=2, device="cpu", seed=3)
    plain = InpaintAttack(**params).fit(x, y, val_inputs=x, val_originals=y)
    weighted = InpaintAttack(**params, loss="mse+identity", identity_weight=1.0)
    weighted.fit(x, y, val_inputs=x, val_originals=y)
    mse = float(np.mean((weighted._forward(weighted.net_, x) - to_planes(y, True)) ** 2))
    assert weighted.history_[0]["val_loss"] > mse + 1e-3  # the term of four faces, weighted 1
    assert plain.history_[0]["val_loss"] > 0


def test_loss_is_a_parameter_of_the_model_and_of_the_knowledge():
    mse, identity = InpaintAttack(), InpaintAttack(loss="mse+identity")
    # get_params keys the cached model and rebuilds the attack in the training stage.
    assert mse.get_params()["loss"] == "mse" and identity.get_params()["loss"] == "mse+identity"
    assert InpaintAttack(**identity.get_params()).loss == "mse+identity"
    assert InpaintAttack(identity_weight=0.5).get_params() != mse.get_params()
    assert "SFace" not in mse.describe_knowledge()
    assert identity.describe_knowledge().startswith(InpaintAttack.knowledge)
    assert "public pretrained recognizer (SFace) for an identity loss" in identity.describe_knowledge()


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"loss": "identity"}, r"loss: 'identity' is not one of \{'mse', 'mse\+identity'\}"),
        ({"loss": "MSE"}, "loss: 'MSE' is not one of"),
        ({"identity_weight": 0.0}, r"identity_weight: 0.0 is not in \(0, 100\]"),
        ({"identity_weight": -1.0}, "identity_weight: -1.0 is not in"),
        ({"identity_weight": "0.1"}, "identity_weight: '0.1' is not a finite number"),
        ({"identity_weight": float("nan")}, "identity_weight: nan is not a finite number"),
    ],
)
def test_bad_loss_parameters_are_refused(params, problem):
    with pytest.raises(ParamError, match=problem):
        InpaintAttack.from_params(params)


def test_the_identity_loss_is_refused_without_sface(monkeypatch):
    from benchmark.recognizers.sface_torch import SFaceTorchRecognizer

    monkeypatch.setattr(SFaceTorchRecognizer, "available", lambda self: "SFace file missing")
    with pytest.raises(ParamError, match="SFace file missing"):
        InpaintAttack.from_params({"loss": "mse+identity"})
    assert InpaintAttack.from_params({"loss": "mse"}).loss == "mse"


# --------------------------------------------------------------------------- training to convergence, within a budget


def _tiny(split) -> tuple[np.ndarray, ...]:
    """32 training and 8 validation pairs of 16x16 faces: what stops training is scripted, not learned."""
    faces, held = split
    small = faces[:, ::2, ::2]
    x, y = _encrypt_like(small[~held][:32], 1), small[~held][:32]
    return x, y, _encrypt_like(small[held][:8], 2), small[held][:8]


def _scripted_fit(monkeypatch, split, curve, **params):
    """Fit on the split with the per-epoch validation loss replaced by ``curve`` (one value per epoch)."""
    x, y, vx, vy = _tiny(split)
    calls: list[int] = []

    def loss(self, net, inputs, originals, *_):
        calls.append(1)
        return curve[len(calls) - 1]

    monkeypatch.setattr(InpaintAttack, "_loss", loss)
    attack = InpaintAttack(depth=1, width=2, batch_size=32, device="cpu", **params)
    return attack.fit(x, y, val_inputs=vx, val_originals=vy)


def test_a_validation_plateau_stops_training_early_and_halves_the_rate_first(monkeypatch, split):
    """Flat after epoch 2 (a gain under 1 % is no gain): stop after ``patience`` flat epochs, well before the budget."""
    curve = [0.5, 0.3, 0.299, 0.3, 0.31, 0.2, 0.1]  # the late drop is never reached
    attack = _scripted_fit(monkeypatch, split, curve, max_epochs=50, patience=3, lr_patience=2, learning_rate=1e-3)
    history = attack.history_
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[-1]["stop"] == "plateau" and all("stop" not in h for h in history[:-1])
    # Two flat epochs (3, 4) halve the rate for epoch 5.
    assert [h["lr"] for h in history] == [1e-3, 1e-3, 1e-3, 1e-3, 5e-4]
    # The kept weights are the lowest loss's (epoch 3, 0.299), though that gain did not count as progress.
    assert [h["kept"] for h in history] == [False, False, True, False, False]


def test_a_curve_that_keeps_improving_stops_on_the_epochs_budget(monkeypatch, split):
    curve = [0.5 * 0.9**k for k in range(10)]
    attack = _scripted_fit(monkeypatch, split, curve, max_epochs=4, patience=2)
    assert [h["epoch"] for h in attack.history_] == [1, 2, 3, 4]
    assert attack.history_[-1]["stop"] == "max_epochs" and attack.history_[-1]["kept"]
    assert {h["lr"] for h in attack.history_} == {attack.learning_rate}  # never flat: never halved


def test_the_minutes_budget_stops_training(monkeypatch, split):
    """A clock that runs 25 s per epoch: a 1-minute budget ends after the third epoch (75 s), not the budget of 50."""
    import attacks.learned as learned

    clock = {"now": 1000.0}

    class FakeTime:
        @staticmethod
        def perf_counter() -> float:
            return clock["now"]

    monkeypatch.setattr(learned, "time", FakeTime)
    curve = [0.5 * 0.9**k for k in range(50)]
    x, y, vx, vy = _tiny(split)
    calls: list[int] = []

    def loss(self, net, inputs, originals, *_):
        calls.append(1)
        clock["now"] += 25.0
        return curve[len(calls) - 1]

    monkeypatch.setattr(InpaintAttack, "_loss", loss)
    attack = InpaintAttack(depth=1, width=2, batch_size=32, device="cpu", max_epochs=50, max_minutes=1.0)
    attack.fit(x, y, val_inputs=vx, val_originals=vy)
    assert len(attack.history_) == 3 and attack.history_[-1]["stop"] == "max_minutes"


def test_without_validation_only_a_budget_stops_training(split):
    x, y, _, _ = _tiny(split)
    attack = InpaintAttack(depth=1, width=2, batch_size=32, device="cpu", max_epochs=2, patience=1).fit(x, y)
    assert [h["val_loss"] for h in attack.history_] == [None, None]
    assert attack.history_[-1]["stop"] == "max_epochs" and attack.history_[-1]["kept"]


def test_epochs_is_a_deprecated_alias_of_max_epochs():
    with pytest.warns(FutureWarning, match="max_epochs"):
        attack = InpaintAttack.from_params({"epochs": 7})
    from attacks.learned import Stopping

    assert Stopping(attack).max_epochs == 7
    with pytest.raises(ParamError, match="deprecated alias") as err:
        InpaintAttack.from_params({"epochs": 7, "max_epochs": 9})
    assert err.value.param == "epochs"
    with pytest.raises(ParamError) as err:
        InpaintAttack.from_params({"min_delta": 1.5})
    assert err.value.param == "min_delta"
    InpaintAttack.from_params({"min_delta": 1.5, "min_delta_mode": "absolute"})


# --------------------------------------------------------------------------- chains and listed training settings


def test_label_names_a_non_default_input_and_the_training_settings():
    assert InpaintAttack().label() == "inpaint"
    assert InpaintAttack(input="conceal-codeblock").label() == "inpaint(conceal-codeblock)"
    listed = [
        {"name": "j2k", "params": {"window": 4, "offset": 6}},
        {"name": "j2k", "params": {"window": 4, "offset": 6, "progression": "resolution"}},
    ]
    attack = InpaintAttack.from_params({"input": "conceal-codeblock", "train_on": listed})
    assert attack.label() == "inpaint(conceal-codeblock)[lw4o6,rw4o6]"
    assert attack.train_schemes() == [("j2k", listed[0]["params"]), ("j2k", listed[1]["params"])]
    assert InpaintAttack().train_schemes() is None


@pytest.mark.parametrize(
    ("params", "where", "what"),
    [
        ({"train_on": []}, "train_on", "empty"),
        ({"train_on": [{"name": "nope"}]}, "train_on.0.name", "not a registered scheme"),
        ({"train_on": [{"name": "j2k", "params": {"window": 200}}]}, "train_on.0.params.window", ""),
        ({"train_on": ["j2k"]}, "train_on.0", "mapping"),
        ({"input": "conceal-codeblock", "train_on": [{"name": "noise"}]}, "train_on.0", "input conceal-codeblock"),
    ],
)
def test_bad_training_settings_name_the_field(params, where, what):
    with pytest.raises(ParamError) as err:
        InpaintAttack.from_params(params)
    assert err.value.param == where and what in str(err.value)


CHAIN_PROTOCOL = """\
name: chains
dataset:
  name: synthetic
  params: {n_subjects: 12, n_images: 2, seed: 2}
  folds: 4
  test_folds: [0]
  seed: 0
recognizers: [{name: lbp, params: {radius: 2}}]
schemes:
  - {name: j2k, params: {window: 4, offset: 6}}
  - {name: j2k, params: {window: 4, offset: 6, progression: resolution}}
attacks:
  - conceal-codeblock
  - {name: inpaint, params: {input: conceal-codeblock, depth: 1, width: 2, epochs: 1, batch_size: 8, device: cpu}}
  - name: inpaint
    params:
      depth: 1
      width: 2
      epochs: 1
      batch_size: 8
      device: cpu
      train_on: [{name: j2k, params: {window: 4, offset: 6}}, {name: j2k, params: {window: 4, offset: 6, progression: resolution}}]
attacker: {source: folds, keys_per_face: 1, faces_per_key: 4}
views: [strength]
metrics: [eer]
bootstrap: {n_boot: 0}
"""
CHAIN = "inpaint(conceal-codeblock)"
LISTED = "inpaint[lw4o6,rw4o6]"


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    """A tiny run of a chain and of a model trained on two listed settings; counts the networks fitted."""
    import json

    from benchmark.core.cache import Cache
    from benchmark.engine.pipeline import RunOptions, run_protocol
    from benchmark.engine.protocol import load_protocol

    tmp = tmp_path_factory.mktemp("chains")
    path = tmp / "p.yaml"
    path.write_text(CHAIN_PROTOCOL)
    fitted: list[str] = []
    real_fit = InpaintAttack.fit

    def counting_fit(self, *args, **kwargs):
        fitted.append(self.label())
        return real_fit(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(InpaintAttack, "fit", counting_fit)
        res = run_protocol(load_protocol(path), RunOptions(out=tmp / "out", cache=Cache(tmp / "cache"), workers=1))
    return tmp / "out", json.loads(res.results_path.read_text()), fitted


def test_a_chain_runs_with_rows_and_score_files_of_its_own(chain_run):
    out, results, _ = chain_run
    rows = {(r["scheme"], r["view"]): r for r in results["rows"]}
    for scheme in ("lw4o6", "rw4o6"):
        chain = rows[(scheme, f"strength:{CHAIN}")]
        assert chain["attack"] == CHAIN
        assert (scheme, "strength:conceal-codeblock") in rows
        assert (out / chain["score_file"]).is_file()
        assert chain["score_file"] != rows[(scheme, "strength:conceal-codeblock")]["score_file"]
        assert (out / "quality" / f"{scheme}__inpaint_conceal-codeblock___strength.csv").is_file()
    assert CHAIN in results["examples"][0]["columns"]
    from reports.render import render_report

    assert f"strength:{CHAIN}" in render_report(results)


def test_one_model_trained_on_listed_settings_serves_every_setting_attacked(chain_run):
    _, results, fitted = chain_run
    models = [m for m in results["trained_models"] if m["attack"] == LISTED]
    (model,) = models  # one model for both schemes
    assert model["scheme"] is None and "progression=resolution" in model["trained_on"]
    # The chain trains per setting attacked; the listed model once.
    assert sorted(fitted) == sorted([CHAIN, CHAIN, LISTED])
    assert {m["scheme"] for m in results["trained_models"] if m["attack"] == CHAIN} == {"lw4o6", "rw4o6"}
    rows = {(r["scheme"], r["view"]) for r in results["rows"]}
    assert {("lw4o6", f"strength:{LISTED}"), ("rw4o6", f"strength:{LISTED}")} <= rows


def test_the_scheme_ranking_takes_the_minimum_over_every_attack_chains_included(chain_run):
    """The summary's and the leaderboard's strongest attack per scheme is the lowest strength EER of all rows."""
    from reports.leaderboard import build_leaderboard, load_entries, load_runs
    from reports.summary import summary_table

    out, results, _ = chain_run
    strength = [r for r in results["rows"] if r["view"].startswith("strength:")]
    assert {r["attack"] for r in strength} == {"conceal-codeblock", CHAIN, LISTED}
    lowest = {s: min(r["metrics"]["eer"] for r in strength if r["scheme"] == s) for s in ("lw4o6", "rw4o6")}
    table = summary_table(results)
    assert table is not None
    header = list(table.header)
    for line in table.rows:
        shown = line[header.index("EER (strength)")]
        assert (shown[0] if isinstance(shown, (tuple, list)) else shown) == lowest[line[0]]
    (group,) = build_leaderboard(load_runs([out / "results.json"]), load_entries([])).measured
    for board in group.schemes:
        assert board.n_attacks == 3 and {line.attack for line in board.lines} >= {CHAIN, LISTED}
        assert board.strongest is not None
        assert board.strongest.value("strength", "eer") == lowest[board.scheme]

"""Registry behaviour and a conformance test over every registered component."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from benchmark.core.component import Component, FittedRecognizer, ParamError
from benchmark.core.registry import RECOGNIZERS, Registry, UnknownComponentError, all_registries

ALL = [(kind, name, cls) for kind, reg in all_registries().items() for name, cls in reg.items()]


def test_every_kind_has_builtins():
    for kind in ("recognizer", "dataset", "metric"):
        assert len(all_registries()[kind]) > 0


def test_did_you_mean():
    with pytest.raises(UnknownComponentError, match=r"did you mean 'lbp'"):
        RECOGNIZERS.get("lpb")


def test_an_unknown_parameter_is_named_unknown_with_a_suggestion():
    # The name is what is wrong, not its value: "n_subject: 10 is not a parameter" read as if 10 were.
    lbp = RECOGNIZERS.get("lbp")
    for build in (lambda: lbp.from_params({"radios": 2}), lambda: lbp().set_params(radios=2)):
        with pytest.raises(ParamError) as info:
            build()
        assert (info.value.param, info.value.value) == ("radios", 2)
        assert str(info.value).startswith("radios: unknown parameter; did you mean 'radius'? (allowed: ")
    with pytest.raises(ParamError, match=r"^zzz: unknown parameter \(allowed: "):
        lbp.from_params({"zzz": 1})


def test_duplicate_registration_rejected():
    reg = Registry("metric", Component)

    @reg.register("x")
    class A(Component):
        pass

    with pytest.raises(ValueError, match="already registered"):

        @reg.register("x")
        class B(Component):
            pass


def test_entry_points_are_loaded(monkeypatch):
    import benchmark.core.registry as r

    reg = Registry("recognizer", Component)
    loaded = []

    class FakeEP:
        name, value = "plugin", "plugin:mod"

        def load(self):
            loaded.append(True)

            @reg.register("plugin")
            class Plugin(Component):
                """A third-party component."""

    monkeypatch.setattr(r, "entry_points", lambda group: [FakeEP()] if group == "facesec.recognizers" else [])
    assert "plugin" in reg.names() and loaded


@pytest.mark.parametrize("kind, name, cls", ALL, ids=[f"{k}:{n}" for k, n, _ in ALL])
def test_conformance(kind, name, cls):
    # Keyword-only __init__ that only stores its parameters.
    sig = inspect.signature(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), "positional parameters"
    assert all(p.default is not inspect.Parameter.empty for p in params), "every parameter needs a default"
    obj = cls()
    assert obj.get_params() == {p.name: p.default for p in params}
    # Every parameter has exactly one declared constraint, and defaults are valid.
    assert set(cls._constraints) == set(obj.get_params())
    # Run-time settings are parameters, and the identity is the rest.
    assert cls.runtime_params <= set(obj.get_params())
    assert obj.identity_params() == {k: v for k, v in obj.get_params().items() if k not in cls.runtime_params}
    obj.validate()
    # Unknown parameters and values each constraint rejects are refused with a ParamError.
    with pytest.raises(ParamError):
        cls.from_params({"no_such_param": 1})
    for param, constraint in cls._constraints.items():
        for value in constraint.invalid_values():
            with pytest.raises(ParamError) as info:
                cls.from_params({param: value})
            assert info.value.param == param, (param, value)
    assert cls.summary(), "needs a one-line docstring"
    assert name in repr(obj) or cls.__name__ in repr(obj)
    # Round trip through get_params, and picklable (worker processes).
    clone = cls(**obj.get_params())
    assert clone.get_params() == obj.get_params()
    pickle.loads(pickle.dumps(obj))
    # Fitted state is not created by __init__.
    assert not [a for a in vars(obj) if a.endswith("_") and not a.startswith("_")]
    assert isinstance(cls.version(), str) and cls.version()


def _fitted(rec):
    """``rec`` ready to embed: a recognizer with a model is fitted on random faces first."""
    if isinstance(rec, FittedRecognizer):
        assert not rec.is_fitted()
        with pytest.raises(ValueError):
            rec.transform(np.zeros((1, 112, 112, 3), np.uint8))
        train = np.random.default_rng(2).integers(0, 256, size=(4, 112, 112, 3), dtype=np.uint8)
        assert rec.fit(train, ["a", "a", "b", "b"]) is rec and rec.is_fitted()
        return rec
    assert rec.fit() is rec
    return rec


@pytest.mark.parametrize("name, cls", list(RECOGNIZERS.items()), ids=RECOGNIZERS.names())
def test_recognizer_contract(name, cls):
    rec = cls()
    if rec.available() is not None:
        pytest.skip(f"{name}: {rec.available()}")
    _fitted(rec)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(3, 112, 112, 3), dtype=np.uint8)
    feats = rec.transform(faces)
    assert feats.shape[0] == 3 and feats.dtype == np.float32
    s = rec.compare(feats[[0, 1]], feats[[0, 2]])
    assert s.shape == (2,) and np.all(np.isfinite(s))
    assert s[0] >= s[1] - 1e-6  # self-comparison is the best score


@pytest.mark.parametrize("name, cls", list(RECOGNIZERS.items()), ids=RECOGNIZERS.names())
def test_features_of_a_face_do_not_depend_on_its_batch(name, cls):
    """How samples are cut into chunks (worker count, executor) must not change a single bit."""
    rec = cls()
    if rec.available() is not None:
        pytest.skip(f"{name}: {rec.available()}")
    rng = np.random.default_rng(1)
    # Flat patches: equal grey levels make the ties a descriptor must break the same way everywhere.
    levels = rng.integers(0, 4, size=(9, 14, 14)).astype(np.uint8) * 60
    faces = np.repeat(np.repeat(levels, 8, axis=1), 8, axis=2)[..., None].repeat(3, axis=3)
    _fitted(rec)
    whole = rec.transform(faces)
    for part in (slice(0, 1), slice(4, 5), slice(3, 9)):
        assert np.array_equal(rec.transform(faces[part]), whole[part]), part


def test_run_time_settings_are_declared():
    """A recognizer's batch size, threads and device say how it runs, not what it computes."""
    for name, cls in RECOGNIZERS.items():
        settings = {"batch_size", "threads", "device"} & set(cls.param_names())
        assert settings <= cls.runtime_params, name
    assert RECOGNIZERS.get("sface").runtime_params == {"batch_size", "threads"}

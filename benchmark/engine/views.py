"""Evaluation views: which image sets are compared, over which pairs.

An *image set* is a named array of aligned faces (plain, protected under a
key, attacked, legitimately recovered) with failure-to-acquire flags. A
*view* compares image sets over the dataset's comparisons:

* ``baseline``: plain probe vs plain reference.
* ``preservation``: cancelable schemes compare protected vs protected under
  the same key; encryption schemes compare the legitimately recovered probe
  vs the plain reference.
* ``strength:<attack>``: attack output for a protected probe vs the plain
  reference (an attacker holding a leaked protected database).
* ``linkage:<attack>``: attack output under key A vs under key B (two
  applications); mated = same subject, different samples.
* ``renewal`` (cancelable schemes): mated pairs compare the old key's probe
  with the new key's reference (revoked and re-issued); non-mated pairs are
  the new application's own non-mated comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from benchmark.core.cache import source_hash
from benchmark.core.component import Attack, Scheme
from benchmark.engine.stages import Engine

__all__ = [
    "ImageSet",
    "ViewPart",
    "View",
    "APP_A",
    "APP_B",
    "APP_RENEWED",
    "protect_stage",
    "attack_stage",
    "recover_stage",
    "scheme_views",
    "pack_protected",
    "unpack_protected",
]

# Application ids: two independent applications for linkage, and the
# re-issued application that replaces A for renewal.
APP_A, APP_B, APP_RENEWED = "app-A", "app-B", "app-A-renewed"


@dataclass
class ImageSet:
    """Faces of the usable samples, in sample order, with FTA flags.

    ``stats`` holds per-sample counters an attack reports (bytes, passes,
    code-blocks dropped...), keyed by name.
    """

    name: str
    key: str
    images: np.ndarray
    failed: np.ndarray
    stats: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ViewPart:
    """Comparisons ``mask`` scored as probe from ``probe_set`` vs reference from ``ref_set``."""

    probe_set: ImageSet
    ref_set: ImageSet
    mask: np.ndarray


@dataclass
class View:
    name: str
    scheme: str
    scheme_params: dict
    attack: str
    parts: list[ViewPart]
    extras: dict[str, Any] = field(default_factory=dict)


def pack_protected(protected: Any) -> dict[str, np.ndarray]:
    """Arrays for the cache: images as they are, byte strings concatenated."""
    if isinstance(protected, np.ndarray):
        return {"images": protected}
    blobs = [bytes(b) for b in protected]
    lengths = np.array([len(b) for b in blobs], dtype=np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8) if blobs else np.empty(0, np.uint8)
    return {"blob": data, "lengths": lengths}


def unpack_protected(arrays: dict[str, np.ndarray]) -> Any:
    if "images" in arrays:
        return arrays["images"]
    data, lengths = arrays["blob"], arrays["lengths"]
    ends = np.cumsum(lengths)
    return [data[e - n : e].tobytes() for e, n in zip(ends, lengths)]


def _component_params(c: Any) -> dict:
    return {"class": type(c).__qualname__, "params": c.get_params()}


def protect_stage(
    engine: Engine, label: str, scheme: Scheme, app_key: Any, plain: ImageSet, ids: Sequence[str], subjects: Sequence[str]
) -> tuple[str, Any]:
    """Protected samples of every usable sample under one application key."""

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        return pack_protected(scheme.protect(plain.images, app_key, ids, subjects)), {}

    params = {"scheme": _component_params(scheme), "key_id": app_key.key_id, "app": app_key.app_id}
    key, arrays, _ = engine.run("protect", f"{label}@{app_key.app_id}", params, [plain.key], scheme.version(), compute)
    return key, unpack_protected(arrays)


def _image_stage(
    engine: Engine, stage: str, label: str, params: dict, inputs: list[str], code: str, fn, stats=lambda: {}
) -> ImageSet:
    def compute() -> tuple[dict[str, np.ndarray], dict]:
        images, failed = fn()
        arrays = {"images": np.asarray(images, np.uint8), "failed": np.asarray(failed, bool)}
        arrays.update({f"stat_{k}": np.asarray(v) for k, v in (stats() or {}).items()})
        return arrays, {}

    key, arrays, _ = engine.run(stage, label, params, inputs, code, compute)
    found = {k[len("stat_"):]: v for k, v in arrays.items() if k.startswith("stat_")}
    return ImageSet(label, key, arrays["images"], arrays["failed"], found)


def attack_stage(
    engine: Engine, label: str, attack: Attack, scheme: Scheme, protected_key: str, protected: Any
) -> ImageSet:
    """What an attack recovers from protected samples."""
    params = {"attack": _component_params(attack), "scheme": _component_params(scheme)}
    return _image_stage(
        engine, "attack", label, params, [protected_key], source_hash(type(attack), type(scheme)),
        lambda: attack.fit(scheme=scheme).attack(protected, scheme),
        stats=lambda: getattr(attack, "stats_", None),
    )


def recover_stage(
    engine: Engine, label: str, scheme: Scheme, app_key: Any, protected_key: str, protected: Any,
    ids: Sequence[str], subjects: Sequence[str],
) -> ImageSet:
    """The legitimate path: recover with the key (encryption schemes)."""

    def run() -> tuple[np.ndarray, np.ndarray]:
        images = scheme.recover(protected, app_key, ids, subjects)
        return images, np.zeros(len(images), bool)

    params = {"scheme": _component_params(scheme), "key_id": app_key.key_id}
    return _image_stage(engine, "recover", label, params, [protected_key], scheme.version(), run)


def _protected_images(name: str, key: str, protected: Any) -> ImageSet:
    images = np.asarray(protected, np.uint8)
    return ImageSet(name, key, images, np.zeros(len(images), bool))


@dataclass
class SchemeContext:
    """What the views of one scheme instance need."""

    engine: Engine
    label: str
    scheme: Scheme
    scheme_params: dict
    attacks: list[Any]  # protocol Instances
    master_key: Any
    plain: ImageSet
    ids: Sequence[str]
    subjects: Sequence[str]
    mated: np.ndarray
    kinds: frozenset[str] = frozenset({"preservation", "renewal", "strength", "linkage"})


def scheme_views(ctx: SchemeContext) -> list[View]:
    """Preservation, strength, linkage and renewal views of one scheme."""
    e, s, lbl, kinds = ctx.engine, ctx.scheme, ctx.label, ctx.kinds
    apps = [APP_A]
    if "linkage" in kinds:
        apps.append(APP_B)
    if "renewal" in kinds and s.domain == "cancelable":
        apps.append(APP_RENEWED)
    # Application ids are bound to the dataset's content: the same sample id
    # in another dataset (another plaintext) gets independent keys, so no
    # (key, nonce) pair ever encrypts two different plaintexts.
    keys = {app: ctx.master_key.application(f"{ctx.plain.key[:16]}/{app}") for app in apps}
    prot = {app: protect_stage(e, lbl, s, keys[app], ctx.plain, ctx.ids, ctx.subjects) for app in apps}
    every = np.ones(ctx.mated.size, bool)
    views: list[View] = []

    def view(name: str, attack: str, parts: list[ViewPart], **extras: Any) -> View:
        return View(name, lbl, ctx.scheme_params, attack, parts, dict(extras))

    if s.domain == "cancelable":
        a = _protected_images(f"{lbl}@{APP_A}", *prot[APP_A])
        if "preservation" in kinds:
            views.append(view("preservation", "none", [ViewPart(a, a, every)]))
        if "renewal" in kinds:
            r = _protected_images(f"{lbl}@{APP_RENEWED}", *prot[APP_RENEWED])
            views.append(view("renewal", "none", [ViewPart(a, r, ctx.mated), ViewPart(r, r, ~ctx.mated)]))
    elif "preservation" in kinds:
        rec = recover_stage(e, f"{lbl}@{APP_A}:recovered", s, keys[APP_A], *prot[APP_A], ctx.ids, ctx.subjects)
        views.append(view("preservation", "none", [ViewPart(rec, ctx.plain, every)], recovered=rec))
    for inst in ctx.attacks:
        att = {app: attack_stage(e, f"{lbl}@{app}:{inst.label}", inst.component, s, *prot[app])
               for app in apps if app != APP_RENEWED}
        knowledge = type(inst.component).knowledge
        if "strength" in kinds:
            views.append(view(f"strength:{inst.label}", inst.label, [ViewPart(att[APP_A], ctx.plain, every)],
                              attacked=att[APP_A], knowledge=knowledge))
        if "linkage" in kinds:
            views.append(view(f"linkage:{inst.label}", inst.label, [ViewPart(att[APP_A], att[APP_B], every)],
                              knowledge=knowledge))
    return views

"""Pure stage functions and the cached engine that runs them.

Each stage is ``(inputs, params) -> artifact``. :class:`Engine` stores an
artifact under a key that hashes the stage name, its parameters, the keys of
its inputs and the stage's code version (:func:`stage_code`: every project
module this module and the stage's components can run); because every key
already covers everything that produced the artifact, a downstream stage can
use the upstream key as its input hash (content addressing by derivation).

Stages: ``load`` (generated datasets), ``align``, ``protect``, ``attack``,
``recover``, ``train`` (a learned attack's model: trained models are
artifacts like any other), ``embed`` and ``score``.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.cache import Cache, hash_array, hash_file, hash_json
from benchmark.core.codeversion import code_version
from benchmark.core.component import (
    Attack,
    Component,
    Dataset,
    FaceQuality,
    FittedRecognizer,
    KeyedAttack,
    LearnedAttack,
    Protected,
    Recognizer,
    RecognizerAttack,
    ReconstructionAttack,
    Samples,
    Scheme,
)
from benchmark.core.executors import sample_deadline, sample_time_limit
from benchmark.core.keys import AppKey
from benchmark.core.numbers import format_number
from benchmark.core.parallel import map_chunks, progress
from benchmark.data.align import Aligner
from benchmark.data.imageio import ImageReadError, read_image
from benchmark.metrics.irreversibility import per_image_quality

__all__ = [
    "Engine",
    "StageRecord",
    "Aligned",
    "ImageSet",
    "STATUS_DETECTED",
    "STATUS_FALLBACK",
    "STATUS_UNREADABLE",
    "STATUS_PREALIGNED",
    "stage_code",
    "dataset_fingerprint",
    "load_stage",
    "align_stage",
    "embed_stage",
    "score_stage",
    "protect_stage",
    "attack_stage",
    "recover_stage",
    "TrainingSet",
    "Trained",
    "train_stage",
    "reconstruct_stage",
    "finetuned_embed_stage",
    "fit_recognizer_stage",
    "fitted_embed_stage",
    "quality_stage",
    "fidelity_stage",
    "CachedArray",
    "pack_protected",
    "unpack_protected",
]

STATUS_DETECTED, STATUS_FALLBACK, STATUS_UNREADABLE, STATUS_PREALIGNED = 0, 1, 2, 3

Compute = Callable[[], tuple[dict[str, np.ndarray], dict]]

# Stage starts and computed stages: the lines a run shows without -v (see benchmark.core.parallel.Progress).
_progress = logging.getLogger("facesec.progress")


def stage_code(*components: type[Component]) -> str:
    """Code version of a stage run with ``components``: this module's import closure and theirs."""
    return code_version(sys.modules[__name__], *components)


@dataclass
class StageRecord:
    """One stage call: where its artifact is, whether the cache had it, and what it cost.

    ``seconds`` is the wall time of the whole call (cache lookup, the work on
    a miss, the write); ``items`` how many samples (images, features,
    comparisons) it handled.
    """

    stage: str
    label: str
    key: str
    hit: bool
    seconds: float = 0.0
    items: int = 0


@dataclass
class Engine:
    """Runs stages through a :class:`Cache` and records hits, misses and their cost.

    With ``keep_work`` the engine also keeps each computed stage's work (the
    ``compute`` closure over its inputs), so that ``bench.py perf e2e`` can
    time every stage's work again alone, outside the harness.
    """

    cache: Cache
    workers: int = 1
    records: list[StageRecord] = field(default_factory=list)
    keep_work: bool = False
    work: list[tuple[StageRecord, Compute]] = field(default_factory=list)
    _begun: set[str] = field(default_factory=set, repr=False)

    def run(
        self,
        stage: str,
        label: str,
        params: Any,
        inputs: Sequence[str],
        code: str,
        compute: Compute,
        *,
        count: Sequence[str] = (),
    ) -> tuple[str, dict[str, np.ndarray], dict]:
        """Return ``(key, arrays, meta)``, computing only on a cache miss.

        ``count`` names the output arrays whose length is the number of items
        the stage handled (the first one present), for :attr:`StageRecord.items`.
        """
        start = time.perf_counter()
        if stage not in self._begun:
            self._begun.add(stage)
            _progress.info("stage %s begins", stage)
        key = Cache.key(stage, params, list(inputs), code)
        found = self.cache.load(stage, key)
        if found is not None:
            items = _items(found[0], count)
            self.records.append(StageRecord(stage, label, key, True, time.perf_counter() - start, items))
            return key, found[0], found[1]
        arrays, meta = compute()
        self.cache.save(stage, key, arrays, meta)
        record = StageRecord(stage, label, key, False, time.perf_counter() - start, _items(arrays, count))
        self.records.append(record)
        # One line per computed stage, on a terminal as in a log: hits cost nothing and say nothing.
        done = sum(not r.hit for r in self.records)
        items_s = f"{record.items:,} items, " if record.items else ""
        _progress.info("%s %s: %s%.1f s (%d computed)", stage, label, items_s, record.seconds, done)
        if self.keep_work:
            self.work.append((record, compute))
        return key, arrays, meta

    def summary(self) -> dict[str, Any]:
        """Cache hits and misses, and per stage: calls, hits, items handled and wall seconds."""
        stages: dict[str, dict[str, Any]] = {}
        for r in self.records:
            row = stages.setdefault(r.stage, {"calls": 0, "hits": 0, "items": 0, "seconds": 0.0})
            row["calls"] += 1
            row["hits"] += int(r.hit)
            row["items"] += r.items
            row["seconds"] += r.seconds
        return {
            "hits": sum(r.hit for r in self.records),
            "misses": sum(not r.hit for r in self.records),
            "stages": {k: {**v, "seconds": round(v["seconds"], 3)} for k, v in stages.items()},
        }


def _items(arrays: dict[str, np.ndarray], count: Sequence[str]) -> int:
    return next((len(arrays[name]) for name in count if name in arrays), 0)


def _params_of(component: Component) -> dict:
    return {"class": type(component).__qualname__, "params": component.get_params()}


# --------------------------------------------------------------------------- load and align


@dataclass
class Aligned:
    """Aligned faces of the usable samples and per-sample status."""

    key: str
    images: np.ndarray  # (N, 112, 112, 3) uint8, usable samples only
    keep: np.ndarray  # indices into the listed samples
    status: np.ndarray  # status of every listed sample
    reasons: dict[str, str]  # unreadable sample id -> reason


def dataset_fingerprint(samples: Samples, params: dict) -> str:
    """Content hash of a dataset: ids, subjects and file bytes (or the generated images)."""
    if samples.paths is not None:
        content = [hash_file(p) for p in samples.paths]
    elif samples.images is not None:
        content = [hash_array(samples.images)]
    else:
        content = []
    return hash_json({"ids": samples.ids, "subjects": samples.subjects, "files": content, "params": params})


def load_stage(engine: Engine, label: str, dataset: Dataset) -> Samples:
    """Samples of a generated dataset (cached: regenerating costs seconds)."""

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        s = dataset.load(None)
        assert s.images is not None, f"generated dataset {label} returned no images"
        return {"images": s.images}, {"ids": s.ids, "subjects": s.subjects}

    _, arrays, meta = engine.run(
        "load", label, _params_of(dataset), [], stage_code(type(dataset)), compute, count=["images"]
    )
    return Samples(meta["ids"], meta["subjects"], images=arrays["images"], aligned=True, demo=True)


def _align_paths(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Worker: read and align files; unreadable ones get a blank face."""
    aligner = _worker_aligner()
    faces = np.zeros((len(paths), 112, 112, 3), np.uint8)
    status = np.zeros(len(paths), np.int8)
    reasons = [""] * len(paths)
    for i, path in enumerate(paths):
        with sample_deadline():  # image files are untrusted: a decoder may hang on one
            try:
                image = read_image(path)
            except ImageReadError as exc:
                status[i], reasons[i] = STATUS_UNREADABLE, str(exc)
                continue
            faces[i], detected = aligner.align(image)
        status[i] = STATUS_DETECTED if detected else STATUS_FALLBACK
    return faces, status, reasons


def _align_failed(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """What stands for files whose reading crashed its worker or ran past the time limit: unreadable."""
    n = len(paths)
    limit = format_number(sample_time_limit())  # 0.5, not 0: limits under a second are allowed
    why = f"reading or aligning it crashed its worker or ran past the {limit} s time limit"
    return np.zeros((n, 112, 112, 3), np.uint8), np.full(n, STATUS_UNREADABLE, np.int8), [why] * n


@functools.lru_cache(maxsize=1)
def _worker_aligner() -> Aligner:
    # One detector per process, reused across chunks.
    return Aligner()


def align_stage(engine: Engine, samples: Samples, fingerprint: str) -> Aligned:
    """Detect and align every listed sample (or take pre-aligned images)."""
    if samples.aligned:
        assert samples.images is not None
        n = len(samples)
        return Aligned(fingerprint, samples.images, np.arange(n), np.full(n, STATUS_PREALIGNED, np.int8), {})
    paths = samples.paths
    assert paths is not None

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        parts = map_chunks(
            _align_paths, paths, workers=engine.workers, desc="align", chunk_size=32, failure=_align_failed
        )
        faces = np.concatenate([p[0] for p in parts])
        status = np.concatenate([p[1] for p in parts])
        reasons = [r for p in parts for r in p[2]]
        unreadable = {samples.ids[i]: reasons[i] for i in np.flatnonzero(status == STATUS_UNREADABLE)}
        return {"faces": faces, "status": status}, {"unreadable": unreadable}

    key, arrays, meta = engine.run("align", "dataset", {}, [fingerprint], stage_code(), compute, count=["status"])
    status = arrays["status"]
    keep = np.flatnonzero(status != STATUS_UNREADABLE)
    return Aligned(key, arrays["faces"][keep], keep, status, meta["unreadable"])


# --------------------------------------------------------------------------- embed and score


def _transform_chunk(recognizer: Recognizer, images: np.ndarray) -> np.ndarray:
    return np.asarray(recognizer.transform(images), dtype=np.float32)


def embed_faces(engine: Engine, recognizer: Recognizer, images: np.ndarray, desc: str) -> np.ndarray:
    """float32 features of ``images`` (at least one face), in chunks on the run's executor."""
    n = len(images)
    chunk = max(32, -(-n // (engine.workers * 4)))
    workers = engine.workers if n >= 4 * chunk else 1
    fn = functools.partial(_transform_chunk, recognizer)
    return np.concatenate(map_chunks(fn, images, workers=workers, desc=desc, chunk_size=chunk))


def embed_stage(
    engine: Engine,
    label: str,
    recognizer: Recognizer,
    images_key: str,
    faces: np.ndarray | Callable[[], np.ndarray],
) -> tuple[str, np.ndarray]:
    """Features of a set of aligned faces for one recognizer.

    ``faces`` may be a function returning them: read only on a cache miss.
    """

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        images = faces() if callable(faces) else faces
        return {"features": embed_faces(engine, recognizer, images, f"embed {label}")}, {}

    key, arrays, _ = engine.run(
        "embed", label, _params_of(recognizer), [images_key], stage_code(type(recognizer)), compute, count=["features"]
    )
    return key, arrays["features"]


# Feature values gathered per side and chunk of pairs by score_stage (64 MB of float32).
_SCORE_ELEMENTS = 1 << 24


def score_stage(
    engine: Engine,
    label: str,
    recognizer: Recognizer,
    probe: tuple[str, np.ndarray],
    reference: tuple[str, np.ndarray],
    probe_idx: np.ndarray,
    ref_idx: np.ndarray,
    chunk: int = 20_000,
) -> np.ndarray:
    """Scores of ``probe[probe_idx[i]]`` vs ``reference[ref_idx[i]]``.

    ``probe`` and ``reference`` are (features key, features) pairs. Pairs
    are compared ``chunk`` at a time, fewer for long features: a chunk's
    gathered features stay within :data:`_SCORE_ELEMENTS` values a side
    (a Fisher vector has ~8,500 dimensions: 20,000 pairs would gather 1.4 GB).
    """
    (probe_key, probe_feats), (ref_key, ref_feats) = probe, reference
    pairs_hash = hash_json({"p": probe_idx.tolist(), "r": ref_idx.tolist()})
    dims = int(np.prod(probe_feats.shape[1:])) if probe_feats.ndim > 1 else 1
    chunk = max(1, min(chunk, _SCORE_ELEMENTS // max(1, dims)))

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        out = np.empty(probe_idx.size, np.float64)
        with progress(probe_idx.size, f"score {label}", unit="pair") as bar:
            for start in range(0, probe_idx.size, chunk):
                sl = slice(start, start + chunk)
                out[sl] = recognizer.compare(probe_feats[probe_idx[sl]], ref_feats[ref_idx[sl]])
                bar.update(out[sl].size)
        return {"scores": out}, {}

    _, arrays, _ = engine.run(
        "score",
        label,
        _params_of(recognizer),
        [probe_key, ref_key, pairs_hash],
        stage_code(type(recognizer)),
        compute,
        count=["scores"],
    )
    return arrays["scores"]


def fit_recognizer_stage(
    engine: Engine,
    label: str,
    recognizer: FittedRecognizer,
    faces: ImageSet,
    train: np.ndarray,
    subjects: Sequence[str],
    evaluated: np.ndarray,
) -> tuple[str, FittedRecognizer]:
    """A recognizer's model fitted on the faces of the bool mask ``train``; cached like any stage output.

    ``evaluated`` marks the samples the model will embed: fitting refuses to
    run when one of their subjects is among the training faces' (the
    vocabulary must never have seen an evaluated subject).

    Raises:
        ValueError: when a subject is both trained on and evaluated, or no face is left to train on.
    """
    train, evaluated = np.asarray(train, bool), np.asarray(evaluated, bool)
    names = np.asarray(subjects, dtype=object)
    seen = set(names[train]) & set(names[evaluated])
    if seen:
        raise ValueError(f"{label}: {len(seen)} evaluated subject(s) in the training faces, e.g. {sorted(seen)[0]!r}")
    if not train.any():
        raise ValueError(f"{label}: no training face (every sample is evaluated)")

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        idx = np.flatnonzero(train)
        model = type(recognizer)(**recognizer.get_params()).fit(faces.images[idx], [str(s) for s in names[idx]])
        return model.state_arrays(), {"n_faces": int(idx.size), "n_subjects": len(set(names[idx]))}

    params = {**_params_of(recognizer), "train": hash_array(train)}
    key, arrays, _ = engine.run("fit", label, params, [faces.key], stage_code(type(recognizer)), compute)
    return key, type(recognizer)(**recognizer.get_params()).load_state(arrays)


def fitted_embed_stage(
    engine: Engine,
    label: str,
    models: Sequence[tuple[str, FittedRecognizer, np.ndarray]],
    images_key: str,
    faces: np.ndarray | Callable[[], np.ndarray],
) -> tuple[str, np.ndarray]:
    """Features of a set of faces by fitted recognizers: each (key, model, mask) embeds the samples of its mask.

    Samples no mask covers (faces of folds that are not evaluated, which no
    comparison uses) get zero features. ``faces`` may be a function
    returning them: read only on a cache miss.
    """

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        images = faces() if callable(faces) else faces
        feats: np.ndarray | None = None
        for _, model, mask in models:
            if not mask.any():
                continue
            part = embed_faces(engine, model, images[mask], f"embed {label}")
            if feats is None:
                feats = np.zeros((len(images), part.shape[1]), np.float32)
            feats[mask] = part
        return {"features": feats if feats is not None else np.zeros((len(images), 0), np.float32)}, {}

    params = {"models": [[key, hash_array(np.asarray(mask, bool))] for key, _, mask in models]}
    code = stage_code(*sorted({type(m) for _, m, _ in models}, key=lambda c: c.__qualname__))
    key, arrays, _ = engine.run("embed", label, params, [images_key], code, compute, count=["features"])
    return key, arrays["features"]


# --------------------------------------------------------------------------- protect, attack, recover


class ImageSet:
    """Faces of the usable samples, in sample order, with FTA flags.

    ``counters`` holds the per-sample counts an attack declares (bytes,
    passes, code-blocks dropped...), keyed by name. A set whose faces are in
    the stage cache need not hold them: :meth:`stored` keeps only the
    reference and :attr:`images` reads them back on each use, so a sweep
    holds the keys of its outputs, not every setting's images at once.

    Args:
        name: Label of the set (``plain``, ``<scheme>@<app>:<attack>``).
        key: Key of what produced it (content addressing).
        images: The faces, uint8 (N, 112, 112, 3); None with ``load``.
        failed: Per-sample failure flags.
        counters: Per-sample counts by name.
        load: Reads the faces back (instead of ``images``).
    """

    def __init__(
        self,
        name: str,
        key: str,
        images: np.ndarray | None,
        failed: np.ndarray,
        counters: dict[str, np.ndarray] | None = None,
        *,
        load: Callable[[], np.ndarray] | None = None,
    ):
        if (images is None) == (load is None):
            raise ValueError("an ImageSet takes images or load, exactly one")
        self.name, self.key, self.failed = name, key, failed
        self.counters = dict(counters or {})
        self._images, self._load = images, load
        self._content: str | None = None

    def __repr__(self) -> str:
        held = "held" if self._images is not None else "stored"
        return f"ImageSet(name={self.name!r}, key={self.key!r}, n={len(self.failed)}, {held})"

    @property
    def images(self) -> np.ndarray:
        """The faces, uint8 (N, 112, 112, 3)."""
        if self._images is not None:
            return self._images
        assert self._load is not None
        return self._load()

    def content(self) -> str:
        """Hash of the faces (sets with equal faces share features), computed once."""
        if self._content is None:
            self._content = hash_array(self.images)
        return self._content

    @classmethod
    def stored(
        cls, engine: Engine, stage: str, name: str, key: str, arrays: dict[str, np.ndarray], images: str = "images"
    ) -> ImageSet:
        """The set of a stage's output ``arrays``: by reference when the cache holds the entry, else held."""
        counters = {k[len("stat_") :]: v for k, v in arrays.items() if k.startswith("stat_")}
        failed = arrays["failed"] if "failed" in arrays else np.zeros(len(arrays[images]), bool)
        if not engine.cache.has(stage, key):
            return cls(name, key, arrays[images], failed, counters)
        found = cls(name, key, None, failed, counters, load=CachedArray(engine.cache, stage, key, images))
        found._content = hash_array(arrays[images])
        return found


@dataclass(frozen=True)
class CachedArray:
    """Reads one array of a cache entry back (picklable, unlike a closure)."""

    cache: Cache
    stage: str
    key: str
    name: str

    def __call__(self) -> np.ndarray:
        found = self.cache.load(self.stage, self.key)
        if found is None:
            raise RuntimeError(
                f"cache entry {self.stage}/{self.key} vanished during the run (was the cache cleared?); run again"
            )
        return found[0][self.name]


def pack_protected(protected: Protected) -> dict[str, np.ndarray]:
    """Arrays for the cache: images as they are, byte strings concatenated."""
    if isinstance(protected, np.ndarray):
        return {"images": protected}
    blobs = [bytes(b) for b in protected]
    lengths = np.array([len(b) for b in blobs], dtype=np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8) if blobs else np.empty(0, np.uint8)
    return {"blob": data, "lengths": lengths}


def unpack_protected(arrays: dict[str, np.ndarray]) -> Protected:
    if "images" in arrays:
        return arrays["images"]
    data, lengths = arrays["blob"], arrays["lengths"]
    ends = np.cumsum(lengths)
    return [data[e - n : e].tobytes() for e, n in zip(ends, lengths)]


def protect_stage(
    engine: Engine,
    label: str,
    scheme: Scheme,
    app_key: AppKey,
    plain: ImageSet,
    ids: Sequence[str],
    subjects: Sequence[str],
) -> tuple[str, Protected]:
    """Protected samples of every usable sample under one application key."""

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        return pack_protected(scheme.protect(plain.images, app_key, ids, subjects)), {}

    params = {"scheme": _params_of(scheme), "key_id": app_key.key_id, "app": app_key.app_id}
    key, arrays, _ = engine.run(
        "protect",
        f"{label}@{app_key.app_id}",
        params,
        [plain.key],
        stage_code(type(scheme)),
        compute,
        count=["images", "lengths"],
    )
    return key, unpack_protected(arrays)


def _image_stage(
    engine: Engine,
    stage: str,
    label: str,
    params: dict,
    inputs: list[str],
    code: str,
    fn: Callable[[], tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
) -> ImageSet:
    def compute() -> tuple[dict[str, np.ndarray], dict]:
        images, failed, counters = fn()
        arrays = {"images": np.asarray(images, np.uint8), "failed": np.asarray(failed, bool)}
        arrays.update({f"stat_{k}": np.asarray(v) for k, v in counters.items()})
        return arrays, {}

    key, arrays, _ = engine.run(stage, label, params, inputs, code, compute, count=["failed"])
    return ImageSet.stored(engine, stage, label, key, arrays)


def attack_stage(
    engine: Engine,
    label: str,
    attack: Attack,
    scheme: Scheme,
    protected_key: str,
    protected: Protected,
    victim: tuple[AppKey, Sequence[str], Sequence[str]] | None = None,
) -> ImageSet:
    """What an attack recovers from protected samples, with its declared per-sample counters.

    ``victim``: the application key the samples were protected under, with their ids and subjects, handed to a
    :class:`~benchmark.core.component.KeyedAttack` (required for one, refused for any other).
    """
    if isinstance(attack, KeyedAttack) != (victim is not None):
        raise TypeError(f"attack {attack.registry_name}: the victim's key goes to a key-knowing attack, and only there")

    def run() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if isinstance(attack, KeyedAttack):
            assert victim is not None
            result = attack.attack_with_key(protected, scheme, *victim)
        else:
            result = attack.attack(protected, scheme)
        if set(result.counters) != set(attack.counters):
            raise RuntimeError(
                f"attack {attack.registry_name} returned counters {sorted(result.counters)}, "
                f"declared {sorted(attack.counters)}"
            )
        return result.images, result.failed, result.counters

    params: dict[str, Any] = {"attack": _params_of(attack), "scheme": _params_of(scheme)}
    if victim is not None:
        params["key_id"] = victim[0].key_id
    code = stage_code(type(attack), type(scheme))
    return _image_stage(engine, "attack", label, params, [protected_key], code, run)


def recover_stage(
    engine: Engine,
    label: str,
    scheme: Scheme,
    app_key: AppKey,
    protected_key: str,
    protected: Protected,
    ids: Sequence[str],
    subjects: Sequence[str],
) -> ImageSet:
    """The legitimate path: recover with the key (encryption schemes)."""

    def run() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        images = scheme.recover(protected, app_key, ids, subjects)
        return images, np.zeros(len(images), bool), {}

    params = {"scheme": _params_of(scheme), "key_id": app_key.key_id}
    return _image_stage(engine, "recover", label, params, [protected_key], stage_code(type(scheme)), run)


# --------------------------------------------------------------------------- learned attacks


@dataclass
class TrainingSet:
    """What a learned attack trains on: input-attack outputs with their originals and subject labels.

    ``key`` hashes everything that produced them (the attacker's faces and
    subjects, keys, scheme settings and input attack, and which faces train
    or validate). Reconstruction attacks learn from (input, original) pairs,
    recognizer attacks from (input, label) pairs.
    """

    key: str
    inputs: np.ndarray
    originals: np.ndarray
    val_inputs: np.ndarray
    val_originals: np.ndarray
    labels: np.ndarray
    val_labels: np.ndarray


@dataclass
class Trained:
    """A fitted learned attack, the cache key of its model and whether it came from the cache."""

    key: str
    attack: LearnedAttack
    history: list[dict[str, Any]]
    seconds: float
    device: str
    cached: bool


def train_stage(engine: Engine, label: str, attack: LearnedAttack, data: TrainingSet) -> Trained:
    """Fit a learned attack on a training set; the fitted state is cached like any artifact.

    The key covers the attack's parameters, the device it trains on (CPU
    results are the reference; a GPU gives other weights), the training
    set's key and the code, so a rerun reuses the model and any change retrains.
    """
    device = attack.resolved_device()

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        t0 = time.perf_counter()
        fresh = type(attack)(**attack.get_params())
        has_val = len(data.val_inputs) > 0
        if isinstance(fresh, RecognizerAttack):
            fitted: LearnedAttack = fresh.fit(
                data.inputs,
                data.labels,
                val_inputs=data.val_inputs if has_val else None,
                val_labels=data.val_labels if has_val else None,
                val_references=data.val_originals if has_val else None,
                desc=label,
            )
        else:
            assert isinstance(fresh, ReconstructionAttack), f"{type(fresh).__name__}: an unknown learned attack kind"
            fitted = fresh.fit(
                data.inputs,
                data.originals,
                val_inputs=data.val_inputs if has_val else None,
                val_originals=data.val_originals if has_val else None,
                desc=label,
            )
        meta = {"history": fitted.history_, "seconds": time.perf_counter() - t0}
        return fitted.state_arrays(), meta

    params = {"attack": _params_of(attack), "device": device}
    before = len(engine.records)
    key, arrays, meta = engine.run("train", label, params, [data.key], stage_code(type(attack)), compute)
    cached = engine.records[before].hit
    fitted = type(attack)(**attack.get_params()).load_state(arrays, meta["history"])
    return Trained(key, fitted, meta["history"], float(meta["seconds"]), device, cached)


def finetuned_embed_stage(
    engine: Engine, label: str, models: Sequence[tuple[Trained, np.ndarray]], images: ImageSet
) -> tuple[str, np.ndarray]:
    """Features of an image set by fitted recognizer attacks: each model embeds the samples of its mask.

    Samples no mask covers (the attacker's own training faces, which no
    comparison uses) get zero features.
    """

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        feats: np.ndarray | None = None
        for trained, mask in models:
            if not mask.any():
                continue
            attack = trained.attack
            assert isinstance(attack, RecognizerAttack)
            part = attack.embed(images.images[mask])
            if feats is None:
                feats = np.zeros((len(images.images), part.shape[1]), np.float32)
            feats[mask] = part
        return {"features": feats if feats is not None else np.zeros((len(images.images), 0), np.float32)}, {}

    params = {"models": [[t.key, hash_array(np.asarray(m, bool))] for t, m in models]}
    code = stage_code(*sorted({type(t.attack) for t, _ in models}, key=lambda c: c.__qualname__))
    key, arrays, _ = engine.run("embed", label, params, [images.key], code, compute, count=["features"])
    return key, arrays["features"]


def reconstruct_stage(
    engine: Engine, label: str, models: Sequence[tuple[Trained, np.ndarray]], inputs: ImageSet
) -> ImageSet:
    """Learned attack output: each model reconstructs the samples of its mask from the input attack's output.

    Samples no mask covers keep the input unchanged; samples the input attack
    failed on stay failed.
    """

    def run() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        images = inputs.images.copy()
        for trained, mask in models:
            if mask.any():
                attack = trained.attack
                assert isinstance(attack, ReconstructionAttack)
                images[mask] = attack.reconstruct(inputs.images[mask])
        return images, inputs.failed, {}

    params = {"models": [[t.key, hash_array(np.asarray(m, bool))] for t, m in models]}
    code = stage_code(*sorted({type(t.attack) for t, _ in models}, key=lambda c: c.__qualname__))
    return _image_stage(engine, "attack", label, params, [inputs.key], code, run)


# --------------------------------------------------------------------------- face quality


def _measure_chunk(measure: FaceQuality, images: np.ndarray) -> np.ndarray:
    return np.asarray(measure.measure(images), np.float64)


def _fidelity_chunk(pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]]) -> dict[str, np.ndarray]:
    originals, attacked, failed = (np.asarray(x) for x in zip(*pairs))
    return per_image_quality(originals, attacked, failed)


# Image pairs per chunk of fidelity work: fixed (not derived from the worker
# count) and a multiple of SSIM's own batch, so that the values cannot depend
# on how many workers ran them.
_FIDELITY_CHUNK = 128


def fidelity_stage(engine: Engine, label: str, plain: ImageSet, attacked: ImageSet, keep: np.ndarray) -> dict:
    """Per-image PSNR and SSIM of ``attacked`` against ``plain``, for the samples of the bool mask ``keep``.

    Returns:
        :func:`~benchmark.metrics.irreversibility.per_image_quality` arrays.
    """

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        idx = np.flatnonzero(keep)
        original, output, failed = plain.images, attacked.images, attacked.failed
        pairs = [(original[i], output[i], bool(failed[i])) for i in idx]
        parts = map_chunks(
            _fidelity_chunk, pairs, workers=engine.workers, desc=f"fidelity {label}", chunk_size=_FIDELITY_CHUNK
        )
        if not parts:
            return per_image_quality(original[:0], output[:0], failed[:0]), {}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, {}

    params = {"keep": hash_array(np.asarray(keep, bool))}
    _, arrays, _ = engine.run(
        "fidelity", label, params, [plain.key, attacked.key], stage_code(), compute, count=["psnr"]
    )
    return arrays


def quality_stage(engine: Engine, label: str, measure: FaceQuality, images: ImageSet) -> np.ndarray:
    """Face-quality score of every image of a set (NaN where the set flags a failure)."""

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        fn = functools.partial(_measure_chunk, measure)
        parts = map_chunks(fn, images.images, workers=engine.workers, desc=f"quality {label}", chunk_size=128)
        scores = np.concatenate(parts) if parts else np.zeros(0)
        return {"scores": np.where(images.failed, np.nan, scores)}, {}

    code = stage_code(type(measure))
    _, arrays, _ = engine.run("quality", label, _params_of(measure), [images.key], code, compute, count=["scores"])
    return arrays["scores"]

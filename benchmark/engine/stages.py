"""Pure stage functions and the cached engine that runs them.

Each stage is ``(inputs, params) -> artifact``. :class:`Engine` stores an
artifact under a key that hashes the stage name, its parameters, the keys of
its inputs and the stage's code version; because every key already covers
everything that produced the artifact, a downstream stage can use the
upstream key as its input hash (content addressing by derivation).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmark.core.cache import Cache, hash_file, hash_json, source_hash
from benchmark.core.component import Recognizer, Samples
from benchmark.core.parallel import map_chunks, progress

__all__ = [
    "Engine",
    "StageRecord",
    "Aligned",
    "STATUS_DETECTED",
    "STATUS_FALLBACK",
    "STATUS_UNREADABLE",
    "STATUS_PREALIGNED",
    "dataset_fingerprint",
    "align_stage",
    "embed_stage",
    "score_stage",
]

STATUS_DETECTED, STATUS_FALLBACK, STATUS_UNREADABLE, STATUS_PREALIGNED = 0, 1, 2, 3


@dataclass
class StageRecord:
    stage: str
    label: str
    key: str
    hit: bool


@dataclass
class Engine:
    """Runs stages through a :class:`Cache` and records hits and misses."""

    cache: Cache
    workers: int = 1
    records: list[StageRecord] = field(default_factory=list)

    def run(
        self,
        stage: str,
        label: str,
        params: Any,
        inputs: Sequence[str],
        code: str,
        compute: Callable[[], tuple[dict[str, np.ndarray], dict]],
    ) -> tuple[str, dict[str, np.ndarray], dict]:
        """Return ``(key, arrays, meta)``, computing only on a cache miss."""
        key = Cache.key(stage, params, list(inputs), code)
        found = self.cache.load(stage, key)
        if found is not None:
            self.records.append(StageRecord(stage, label, key, True))
            return key, found[0], found[1]
        arrays, meta = compute()
        self.cache.save(stage, key, arrays, meta)
        self.records.append(StageRecord(stage, label, key, False))
        return key, arrays, meta

    def summary(self) -> dict[str, int]:
        return {
            "hits": sum(r.hit for r in self.records),
            "misses": sum(not r.hit for r in self.records),
        }


@dataclass
class Aligned:
    """Aligned faces of the usable samples and per-sample status."""

    key: str
    images: np.ndarray  # (N, 112, 112, 3) uint8, usable samples only
    keep: np.ndarray  # indices into the listed samples
    status: np.ndarray  # status of every listed sample
    reasons: dict[str, str]  # unreadable sample id -> reason


def dataset_fingerprint(samples: Samples, params: dict) -> str:
    """Content hash of a listed dataset: ids, subjects and file bytes."""
    if samples.paths is None:
        files: list[str] = []
    else:
        files = [hash_file(p) for p in samples.paths]
    return hash_json({"ids": samples.ids, "subjects": samples.subjects, "files": files, "params": params})


def _align_paths(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Worker: read and align files; unreadable ones get a blank face."""
    from benchmark.data.align import Aligner
    from benchmark.data.imageio import ImageReadError, read_image

    aligner = _worker_aligner(Aligner)
    faces = np.zeros((len(paths), 112, 112, 3), np.uint8)
    status = np.zeros(len(paths), np.int8)
    reasons = [""] * len(paths)
    for i, path in enumerate(paths):
        try:
            image = read_image(path)
        except ImageReadError as exc:
            status[i], reasons[i] = STATUS_UNREADABLE, str(exc)
            continue
        faces[i], detected = aligner.align(image)
        status[i] = STATUS_DETECTED if detected else STATUS_FALLBACK
    return faces, status, reasons


@functools.lru_cache(maxsize=1)
def _worker_aligner(cls: type) -> Any:
    # One detector per process, reused across chunks.
    return cls()


def align_stage(engine: Engine, samples: Samples, fingerprint: str) -> Aligned:
    """Detect and align every listed sample (or take pre-aligned images)."""
    from benchmark.data import align

    if samples.aligned:
        assert samples.images is not None
        n = len(samples)
        return Aligned(fingerprint, samples.images, np.arange(n), np.full(n, STATUS_PREALIGNED, np.int8), {})

    assert samples.paths is not None

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        parts = map_chunks(_align_paths, samples.paths, workers=engine.workers, desc="align", chunk_size=32)
        faces = np.concatenate([p[0] for p in parts])
        status = np.concatenate([p[1] for p in parts])
        reasons = [r for p in parts for r in p[2]]
        unreadable = {samples.ids[i]: reasons[i] for i in np.flatnonzero(status == STATUS_UNREADABLE)}
        return {"faces": faces, "status": status}, {"unreadable": unreadable}

    key, arrays, meta = engine.run("align", "dataset", {}, [fingerprint], source_hash(align, _align_paths), compute)
    status = arrays["status"]
    keep = np.flatnonzero(status != STATUS_UNREADABLE)
    return Aligned(key, arrays["faces"][keep], keep, status, meta["unreadable"])


def _transform_chunk(recognizer: Recognizer, images: np.ndarray) -> np.ndarray:
    return np.asarray(recognizer.transform(images), dtype=np.float32)


def embed_stage(
    engine: Engine, label: str, recognizer: Recognizer, images_key: str, images: np.ndarray
) -> tuple[str, np.ndarray]:
    """Features of a set of aligned faces for one recognizer."""
    n = len(images)
    chunk = max(32, -(-n // (engine.workers * 4)))
    workers = engine.workers if n >= 4 * chunk else 1

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        fn = functools.partial(_transform_chunk, recognizer)
        parts = map_chunks(fn, images, workers=workers, desc=f"embed {label}", chunk_size=chunk)
        return {"features": np.concatenate(parts)}, {}

    key, arrays, _ = engine.run(
        "embed", label, _params_of(recognizer), [images_key], recognizer.version(), compute
    )
    return key, arrays["features"]


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

    ``probe`` and ``reference`` are (features key, features) pairs.
    """
    (probe_key, probe_feats), (ref_key, ref_feats) = probe, reference
    pairs_hash = hash_json({"p": probe_idx.tolist(), "r": ref_idx.tolist()})

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        out = np.empty(probe_idx.size, np.float64)
        with progress(probe_idx.size, f"score {label}", unit="pair") as bar:
            for start in range(0, probe_idx.size, chunk):
                sl = slice(start, start + chunk)
                out[sl] = recognizer.compare(probe_feats[probe_idx[sl]], ref_feats[ref_idx[sl]])
                bar.update(out[sl].size)
        return {"scores": out}, {}

    _, arrays, _ = engine.run(
        "score", label, _params_of(recognizer), [probe_key, ref_key, pairs_hash], recognizer.version(), compute
    )
    return arrays["scores"]


def _params_of(component: Any) -> dict:
    return {"class": type(component).__qualname__, "params": component.get_params()}

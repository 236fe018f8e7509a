"""Runs a validated protocol: load -> align -> embed -> score -> metrics -> report.

Later issues insert protect -> attack between align and embed; rows already
carry ``scheme``, ``attack`` and ``view`` so that score files and results do
not change shape when they land.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cache import Cache, atomic_write_text, source_hash
from benchmark.comparisons import (
    Comparisons,
    PairsFileError,
    build_comparisons,
    comparisons_from_pairs,
    subject_folds,
)
from benchmark.component import Samples
from benchmark.datasets.folder import DatasetError
from benchmark.protocol import Instance, LoadedProtocol
from benchmark.registry import DATASETS
from benchmark.scores import ScoreSet, score_file_name, write_scores
from benchmark.stages import (
    STATUS_DETECTED,
    STATUS_FALLBACK,
    Aligned,
    Engine,
    align_stage,
    dataset_fingerprint,
    embed_stage,
    score_stage,
)

__all__ = ["RunOptions", "RunOutput", "run_protocol", "RESULTS_SCHEMA_VERSION"]

log = logging.getLogger(__name__)

RESULTS_SCHEMA_VERSION = 1


@dataclass
class RunOptions:
    """Where to write, how to cache and how many worker processes to use."""

    out: Path
    cache: Cache
    workers: int = 1
    report: bool = True


@dataclass
class RunOutput:
    results: dict[str, Any]
    results_path: Path
    report_path: Path | None
    engine: Engine


@dataclass
class _Data:
    samples: Samples
    fingerprint: str
    aligned: Aligned
    comparisons: Comparisons
    dropped_pairs: int
    folds: np.ndarray | None


def _load_samples(lp: LoadedProtocol, engine: Engine) -> tuple[Samples, str]:
    spec = lp.model.dataset
    dataset = DATASETS.get(spec.name).from_params(spec.params)
    root = Path(spec.root).expanduser().resolve() if spec.root else None
    if getattr(dataset, "generated", False):
        # Generated data is itself a cached stage: regenerating costs seconds.
        params = {"class": type(dataset).__qualname__, "params": dataset.get_params()}

        def compute() -> tuple[dict[str, np.ndarray], dict]:
            s = dataset.load(root)
            return {"images": s.images}, {"ids": s.ids, "subjects": s.subjects}

        key, arrays, meta = engine.run("load", spec.name, params, [], dataset.version(), compute)
        samples = Samples(meta["ids"], meta["subjects"], images=arrays["images"], aligned=True, demo=True)
        return samples, key
    try:
        samples = dataset.load(root)
    except DatasetError as exc:
        raise lp.error(("dataset", "root"), str(exc)) from None
    return samples, dataset_fingerprint(samples, {"root_name": root.name if root else None})


def _comparisons(lp: LoadedProtocol, samples: Samples, aligned: Aligned) -> tuple[Comparisons, int, np.ndarray | None]:
    spec = lp.model.dataset
    ids = [samples.ids[i] for i in aligned.keep]
    subjects = [samples.subjects[i] for i in aligned.keep]
    if spec.pairs:
        try:
            comps, dropped = comparisons_from_pairs(Path(spec.pairs).expanduser(), ids)
        except PairsFileError as exc:
            raise lp.error(("dataset", "pairs"), str(exc)) from None
        return comps, dropped, None
    folds = subject_folds(subjects, spec.folds, spec.seed)
    test = spec.test_folds if spec.test_folds is not None else list(range(spec.folds))
    comps = build_comparisons(subjects, folds, test, spec.max_nonmated, spec.seed)
    return comps, 0, folds


def _prepare(lp: LoadedProtocol, engine: Engine) -> _Data:
    samples, fingerprint = _load_samples(lp, engine)
    aligned = align_stage(engine, samples, fingerprint)
    if aligned.keep.size == 0:
        raise lp.error(("dataset", "root"), f"no usable image: all {len(samples)} files are unreadable")
    comps, dropped, folds = _comparisons(lp, samples, aligned)
    if not comps.mated.any():
        raise lp.error(("dataset",), "no mated pair: every test subject has fewer than two usable images")
    if comps.mated.all():
        raise lp.error(("dataset",), "no non-mated pair: the test folds hold a single subject")
    return _Data(samples, fingerprint, aligned, comps, dropped, folds)


def _score_set(data: _Data, label: str, scores: np.ndarray) -> ScoreSet:
    ids = [data.samples.ids[i] for i in data.aligned.keep]
    subj = [data.samples.subjects[i] for i in data.aligned.keep]
    c = data.comparisons
    return ScoreSet(
        probe=[ids[i] for i in c.probe],
        reference=[ids[i] for i in c.reference],
        probe_subject=[subj[i] for i in c.probe],
        reference_subject=[subj[i] for i in c.reference],
        recognizer=label,
        scheme="none",
        attack="none",
        view="baseline",
        score=scores,
    )


def _metrics_row(lp: LoadedProtocol, inst: Instance, scores: np.ndarray, mated: np.ndarray, score_file: str) -> dict:
    from benchmark import metrics as M

    genuine, impostor = scores[mated], scores[~mated]
    values: dict[str, Any] = {}
    for metric in lp.instances("metrics"):
        values.update(metric.component.compute(genuine, impostor))
    values.update(n_genuine=int(genuine.size), n_impostor=int(impostor.size))
    return {
        "recognizer": inst.label,
        "recognizer_params": _jsonable(inst.component.get_params()),
        "scheme": "none",
        "scheme_params": {},
        "attack": "none",
        "view": "baseline",
        "metrics": values,
        "curves": {
            "det": M.det_curve(genuine, impostor),
            "hist": M.score_histogram(genuine, impostor),
        },
        "score_file": score_file,
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN; an undefined figure is null
    return obj


def _dataset_block(lp: LoadedProtocol, data: _Data) -> dict:
    spec = lp.model.dataset
    status = data.aligned.status
    return {
        "name": spec.name,
        "demo": bool(data.samples.demo),
        "root": spec.root,
        "params": _jsonable(spec.params),
        "n_samples": len(data.samples),
        "n_usable": int(data.aligned.keep.size),
        "n_subjects": len(set(data.samples.subjects)),
        "n_skipped": len(data.aligned.reasons),
        "skipped": [{"id": k, "reason": v} for k, v in sorted(data.aligned.reasons.items())],
        "n_detected": int((status == STATUS_DETECTED).sum()),
        "n_fallback_crop": int((status == STATUS_FALLBACK).sum()),
        "folds": spec.folds,
        "test_folds": spec.test_folds if spec.test_folds is not None else list(range(spec.folds)),
        "seed": spec.seed,
        "pairs_file": spec.pairs,
        "n_pairs_dropped": data.dropped_pairs,
        "n_genuine": int(data.comparisons.mated.sum()),
        "n_impostor": int((~data.comparisons.mated).sum()),
    }


def run_protocol(lp: LoadedProtocol, opts: RunOptions) -> RunOutput:
    """Run every stage of a protocol and write scores, results and report.

    Raises:
        ProtocolError: for bad input found while running (missing data...).
    """
    from benchmark.provenance import provenance

    engine = Engine(opts.cache, workers=opts.workers)
    recognizers = lp.instances("recognizers")
    for i, inst in enumerate(recognizers):
        reason = inst.component.available()
        if reason:
            raise lp.error(("recognizers", inst.ref_index, "name"), f"{inst.name} is unavailable: {reason}")
    data = _prepare(lp, engine)
    rows = []
    score_dir = opts.out / "scores"
    for inst in recognizers:
        feat_key, feats = embed_stage(engine, inst.label, inst.component, data.aligned)
        c = data.comparisons
        scores = score_stage(engine, inst.label, inst.component, feat_key, feats, c.probe, c.reference)
        name = score_file_name(inst.label, "none", "none", "baseline")
        write_scores(score_dir / name, _score_set(data, inst.label, scores))
        rows.append(_metrics_row(lp, inst, scores, c.mated, f"scores/{name}"))
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": {"name": lp.name, "file": str(lp.path), "notes": lp.model.notes},
        "dataset": _dataset_block(lp, data),
        "rows": rows,
        "provenance": provenance(lp, data.fingerprint, engine.summary()),
    }
    results_path = opts.out / "results.json"
    results = _jsonable(results)
    atomic_write_text(results_path, json.dumps(results, indent=2, allow_nan=False))
    report_path = None
    if opts.report:
        from reports.render import write_report

        report_path = write_report(results, opts.out / "report.html")
    return RunOutput(results, results_path, report_path, engine)

"""Runs a validated protocol: load -> align -> embed -> score -> metrics -> report.

Later issues insert protect -> attack between align and embed; rows already
carry ``scheme``, ``attack`` and ``view`` so that score files and results do
not change shape when they land.
"""

from __future__ import annotations

import functools

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.cache import Cache, atomic_write_text, hash_array
from benchmark.data.comparisons import (
    Comparisons,
    PairsFileError,
    build_comparisons,
    comparisons_from_pairs,
    subject_folds,
)
from benchmark.core.component import Samples
from benchmark.data.datasets.folder import DatasetError
from benchmark.engine.protocol import Instance, LoadedProtocol
from benchmark.core.registry import DATASETS
from benchmark.engine.scores import ScoreSet, quality_file_name, score_file_name, write_quality, write_scores
from benchmark.engine.evaluate import EvalSettings, ViewScores, row_metrics, score_view
from benchmark.engine.stages import (
    STATUS_DETECTED,
    STATUS_FALLBACK,
    Aligned,
    Engine,
    align_stage,
    dataset_fingerprint,
    embed_stage,
    score_stage,
)
from benchmark.engine.views import ImageSet, SchemeContext, View, ViewPart, scheme_views

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

    @functools.cached_property
    def ids(self) -> list[str]:
        """Sample ids of the usable samples, in image order."""
        return [self.samples.ids[i] for i in self.aligned.keep]

    @functools.cached_property
    def subjects(self) -> list[str]:
        """Subject ids of the usable samples, in image order."""
        return [self.samples.subjects[i] for i in self.aligned.keep]


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


def _score_set(data: _Data, label: str, view: View, vs: ViewScores) -> ScoreSet:
    ids, subj = data.ids, data.subjects
    c = data.comparisons
    probe, ref = c.probe[vs.index], c.reference[vs.index]
    return ScoreSet(
        probe=[ids[i] for i in probe],
        reference=[ids[i] for i in ref],
        probe_subject=[subj[i] for i in probe],
        reference_subject=[subj[i] for i in ref],
        recognizer=label,
        scheme=view.scheme,
        attack=view.attack,
        view=view.name,
        score=vs.scores,
    )


def _curves(vs: ViewScores, unlinkability_curve: dict | None) -> dict:
    from benchmark.metrics import verification as M

    curves: dict[str, Any] = {}
    if vs.mated.any() and (~vs.mated).any():
        curves["det"] = M.det_curve(vs.genuine(), vs.impostor())
        curves["hist"] = M.score_histogram(vs.genuine(), vs.impostor())
    if unlinkability_curve is not None:
        curves["unlinkability"] = unlinkability_curve
    return curves


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


def _baseline_view(plain: ImageSet, n: int) -> View:
    return View("baseline", "none", {}, "none", [ViewPart(plain, plain, np.ones(n, bool))])


def _all_views(lp: LoadedProtocol, engine: Engine, data: _Data, plain: ImageSet, master_key: Any) -> list[View]:
    views = [_baseline_view(plain, len(data.comparisons))]
    attacks = lp.instances("attacks")
    for inst in lp.instances("schemes"):
        ctx = SchemeContext(engine, inst.label, inst.component, _jsonable(inst.params), attacks,
                            master_key, plain, data.ids, data.subjects, data.comparisons.mated)
        if lp.model.views is not None:
            ctx.kinds = frozenset(lp.model.views)
        views += scheme_views(ctx)
    return views


def _quality(view: View, plain: ImageSet) -> dict[str, np.ndarray] | None:
    """Per-image PSNR/SSIM of an attacked view's output against the originals (None for others)."""
    from benchmark.metrics.irreversibility import per_image_quality

    attacked = view.extras.get("attacked")
    if attacked is None:
        return None
    return per_image_quality(plain.images, attacked.images, attacked.failed)


def _view_extras(view: View, quality: dict[str, np.ndarray] | None, schemes: dict[str, Any]) -> dict[str, float]:
    from benchmark.metrics.irreversibility import summarise_quality

    extras: dict[str, float] = {}
    if view.scheme != "none":
        try:
            extras["key_space_bits"] = float(schemes[view.scheme].key_space_bits())
        except NotImplementedError:
            pass
    if quality is not None:
        extras.update(summarise_quality(quality))
        # Mean per-sample attack counters (e.g. bytes, passes, code-blocks dropped).
        stats = view.extras["attacked"].stats
        extras.update({f"mean_{k}": float(np.mean(v)) for k, v in stats.items() if v.size})
    return extras


def _kind(view: View) -> str:
    """The view kind without its attack: ``strength:naive`` -> ``strength``."""
    return view.name.split(":", 1)[0]


def _add_naive_gains(views: list[View], qualities: list, extras: list[dict[str, float]]) -> None:
    """Per-image PSNR of each attack against ``naive`` on the same scheme and view, into ``extras``.

    Mean PSNR alone can hide images where an attack does worse than simply
    decoding the protected sample; the paired counts show them.
    """
    from benchmark.metrics.irreversibility import psnr_gain

    naive = {(v.scheme, _kind(v)): q for v, q in zip(views, qualities) if v.attack == "naive" and q is not None}
    for view, quality, extra in zip(views, qualities, extras):
        ref = naive.get((view.scheme, _kind(view)))
        if view.attack in ("naive", "none") or ref is None or quality is None:
            continue
        gain = psnr_gain(quality["psnr"], ref["psnr"])
        extra.update({f"{k}_vs_naive": v for k, v in gain.items()})


def _write_quality(out: Path, views: list[View], qualities: list, data: "_Data") -> None:
    """One CSV per attacked view: per-sample PSNR and SSIM of the attack output (see README)."""
    for view, quality in zip(views, qualities):
        if quality is not None:
            name = quality_file_name(view.scheme, view.attack, _kind(view))
            write_quality(out / "quality" / name, data.ids, data.subjects, view.scheme, view.attack, quality)


class _Evaluator:
    """Scores every (recognizer, view) pair, reusing features across views."""

    def __init__(self, engine: Engine, data: _Data, settings: EvalSettings, metrics: list):
        self.engine, self.data, self.settings, self.metrics = engine, data, settings, metrics
        self.subject_codes = np.unique(np.asarray(data.subjects), return_inverse=True)[1]

    def _features(self, inst: Instance):
        cache: dict[str, tuple[str, np.ndarray]] = {}

        def features(images: ImageSet) -> tuple[str, np.ndarray]:
            if images.key not in cache:
                label = inst.label if images.name == "plain" else f"{inst.label}@{images.name}"
                # Keyed by content: an attack that returns the protected
                # images unchanged (naive on a cancelable scheme) reuses them.
                content = hash_array(images.images)
                cache[images.key] = embed_stage(self.engine, label, inst.component, content, images.images)
            return cache[images.key]

        return features

    def scores(self, inst: Instance, view: View, features) -> ViewScores:
        c = self.data.comparisons

        def score(probe, ref, pi, ri):
            label = f"{inst.label}|{view.scheme}|{view.name}" if view.name != "baseline" else inst.label
            return score_stage(self.engine, label, inst.component, probe, ref, pi, ri)

        return score_view(view, features, score, c.probe, c.reference, c.mated, self.subject_codes)

    def rows(self, inst: Instance, views: list[View], extras: list[dict], out: Path) -> list[dict]:
        features = self._features(inst)
        rows, baseline = [], None
        for view, extra in zip(views, extras):
            vs = self.scores(inst, view, features)
            if not vs.mated.any() or vs.mated.all():
                log.warning("%s / %s: no mated or no non-mated comparison left", inst.label, view.name)
            base_eer = None if baseline is None else baseline[1].get("eer")
            values, ucurve = row_metrics(view, vs, baseline[0] if baseline else None, base_eer,
                                         self.metrics, self.settings, extra)
            if view.name == "baseline":
                baseline = (vs, values)
            name = score_file_name(inst.label, view.scheme, view.attack, view.name)
            write_scores(out / "scores" / name, _score_set(self.data, inst.label, view, vs))
            rows.append({
                "recognizer": inst.label,
                "recognizer_params": _jsonable(inst.component.get_params()),
                "scheme": view.scheme,
                "scheme_params": view.scheme_params,
                "attack": view.attack,
                "view": view.name,
                "attacker_knowledge": view.extras.get("knowledge"),
                "metrics": values,
                "curves": _curves(vs, ucurve),
                "score_file": f"scores/{name}",
            })
        return rows


def _sweeps(lp: LoadedProtocol) -> list[dict[str, Any]]:
    """Schemes swept over one grid parameter: labels and values, in order."""
    out = []
    instances = lp.instances("schemes")
    for i, ref in enumerate(lp.model.schemes):
        if len(ref.grid) != 1:
            continue
        (param,) = ref.grid
        mine = [inst for inst in instances if inst.ref_index == i]
        out.append({
            "scheme": ref.name,
            "param": param,
            "fixed": _jsonable(ref.params),
            "labels": [inst.label for inst in mine],
            "values": [_jsonable(inst.params[param]) for inst in mine],
        })
    return out


def _scheme_provenance(scheme: Any) -> dict[str, Any]:
    """Scheme parameters plus, for codec schemes, the encoder parameters used."""
    out: dict[str, Any] = {"class": type(scheme).__qualname__, "params": scheme.get_params()}
    codec = getattr(scheme, "codec_params", None)
    if callable(codec):
        out["encoder"] = codec().as_dict()
    return out


def _master_key(lp: LoadedProtocol) -> Any:
    from benchmark.core.keys import KeySourceError, load_master_key

    src = lp.model.keys
    try:
        return load_master_key(src.file if src else None, src.env if src else None)
    except KeySourceError as exc:
        field = "file" if src and src.file else "env"
        raise lp.error(("keys", field), str(exc)) from None


def _check_available(lp: LoadedProtocol) -> None:
    for inst in lp.instances("recognizers"):
        reason = inst.component.available()
        if reason:
            raise lp.error(("recognizers", inst.ref_index, "name"), f"{inst.name} is unavailable: {reason}")


def run_protocol(lp: LoadedProtocol, opts: RunOptions) -> RunOutput:
    """Run every stage of a protocol and write scores, results and report.

    Raises:
        ProtocolError: for bad input found while running (missing data...).
    """
    from benchmark.metrics.certify import judge
    from benchmark.engine.provenance import provenance

    engine = Engine(opts.cache, workers=opts.workers)
    _check_available(lp)
    master_key = _master_key(lp) if lp.model.schemes else None
    data = _prepare(lp, engine)
    plain = ImageSet("plain", data.aligned.key, data.aligned.images, np.zeros(len(data.aligned.images), bool))
    views = _all_views(lp, engine, data, plain, master_key)
    schemes = {i.label: i.component for i in lp.instances("schemes")}
    qualities = [_quality(v, plain) for v in views]
    extras = [_view_extras(v, q, schemes) for v, q in zip(views, qualities)]
    _add_naive_gains(views, qualities, extras)
    _write_quality(opts.out, views, qualities, data)
    settings = EvalSettings(n_boot=lp.model.bootstrap.n_boot, seed=lp.model.bootstrap.seed)
    evaluator = _Evaluator(engine, data, settings, lp.instances("metrics"))
    rows = [r for inst in lp.instances("recognizers") for r in evaluator.rows(inst, views, extras, opts.out)]
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": {"name": lp.name, "file": str(lp.path), "notes": lp.model.notes},
        "dataset": _dataset_block(lp, data),
        "rows": _jsonable(rows),
    }
    sweeps = _sweeps(lp)
    if sweeps:
        results["sweeps"] = sweeps
    if lp.model.certify:
        results["certification"] = judge(results["rows"], lp.model.certify)
    results["provenance"] = provenance(lp, data.fingerprint, engine.summary(), master_key)
    results["provenance"]["schemes"] = {label: _scheme_provenance(s) for label, s in schemes.items()}
    results = _jsonable(results)
    results_path = opts.out / "results.json"
    atomic_write_text(results_path, json.dumps(results, indent=2, allow_nan=False))
    report_path = None
    if opts.report:
        from reports.render import write_report

        report_path = write_report(results, opts.out / "report.html")
    return RunOutput(results, results_path, report_path, engine)

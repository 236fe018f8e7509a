"""Runs a validated protocol: load -> align -> protect -> attack -> embed -> score -> metrics -> results.json.

The pipeline writes score files, per-sample quality files and ``results.json``
(:mod:`benchmark.engine.results`); rendering a report from the results is the
caller's choice (the command line does it, see :mod:`benchmark.cli.main`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.cache import Cache, hash_array, hash_json
from benchmark.core.component import (
    Attack,
    FaceQuality,
    FittedRecognizer,
    LearnedAttack,
    Metric,
    Recognizer,
    Samples,
    Scheme,
)
from benchmark.core.executors import Executor, LocalExecutor, using
from benchmark.core.keys import KeySourceError, MasterKey, load_master_key
from benchmark.core.registry import DATASETS
from benchmark.data.comparisons import (
    Comparisons,
    PairsFileError,
    build_comparisons,
    comparisons_from_pairs,
    subject_folds,
)
from benchmark.data.datasets.folder import DatasetError
from benchmark.engine.attacker import Attacker, build_attacker
from benchmark.engine.evaluate import (
    EvalSettings,
    ViewScores,
    metrics_stage,
    quality_distribution,
    quality_metrics,
    score_view,
)
from benchmark.engine.examples import example_sets, pick_examples
from benchmark.engine.protocol import Instance, LoadedProtocol
from benchmark.engine.provenance import provenance
from benchmark.engine.results import SCHEMA_VERSION, DatasetInfo, Results, Row, Sweep, jsonable, write_results
from benchmark.engine.scores import ScoreSet, quality_file_name, score_file_name, write_quality, write_scores
from benchmark.engine.stages import (
    STATUS_DETECTED,
    STATUS_FALLBACK,
    Aligned,
    CachedArray,
    Engine,
    ImageSet,
    align_stage,
    dataset_fingerprint,
    embed_stage,
    fidelity_stage,
    finetuned_embed_stage,
    fit_recognizer_stage,
    fitted_embed_stage,
    load_stage,
    quality_stage,
    score_stage,
)
from benchmark.engine.views import (
    AttackInstance,
    FineTuned,
    SchemeContext,
    View,
    baseline_view,
    key_binding,
    scheme_views,
)
from benchmark.metrics.certify import judge
from benchmark.metrics.irreversibility import psnr_gain

__all__ = ["RunOptions", "RunOutput", "run_protocol"]

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Where to write, how to cache, and where per-sample work runs.

    ``executor`` (a local pool or a Dask cluster) runs the chunks; without
    one, a local pool of ``workers`` processes does.
    """

    out: Path
    cache: Cache
    workers: int = 1
    executor: Executor | None = None
    #: Keep every computed stage's work for timing it again alone (``bench.py perf e2e``).
    keep_work: bool = False


@dataclass
class RunOutput:
    results: Results
    results_path: Path
    engine: Engine


@dataclass
class _Data:
    samples: Samples
    fingerprint: str
    aligned: Aligned
    comparisons: Comparisons
    dropped_pairs: int
    folds: np.ndarray | None
    test_folds: tuple[int, ...] = ()

    @functools.cached_property
    def ids(self) -> list[str]:
        """Sample ids of the usable samples, in image order."""
        return [self.samples.ids[i] for i in self.aligned.keep]

    @functools.cached_property
    def subjects(self) -> list[str]:
        """Subject ids of the usable samples, in image order."""
        return [self.samples.subjects[i] for i in self.aligned.keep]

    @functools.cached_property
    def victims(self) -> np.ndarray:
        """bool per usable sample: in a test fold (every sample with a pairs file).

        Image quality and examples are measured on victims only: with a
        learned attack, the other folds may be the attacker's training faces.
        """
        if self.folds is None:
            return np.ones(len(self.ids), bool)
        return np.isin(self.folds, self.test_folds)

    @functools.cached_property
    def subject_codes(self) -> np.ndarray:
        """Dense subject code of each usable sample (the bootstrap's clusters)."""
        return np.unique(np.asarray(self.subjects), return_inverse=True)[1].reshape(-1)


# --------------------------------------------------------------------------- data


def _load_samples(lp: LoadedProtocol, engine: Engine) -> tuple[Samples, str]:
    spec = lp.model.dataset
    dataset = DATASETS.get(spec.name).from_params(spec.params)
    if dataset.generated:
        samples = load_stage(engine, spec.name, dataset)
        return samples, dataset_fingerprint(samples, {"dataset": spec.name})
    root = Path(spec.root).expanduser().resolve() if spec.root else None
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
    spec = lp.model.dataset
    test = tuple(spec.test_folds if spec.test_folds is not None else range(spec.folds))
    return _Data(samples, fingerprint, aligned, comps, dropped, folds, test)


def _evaluated(data: _Data) -> _Data:
    """The samples the comparisons use (the test folds'), with the comparisons indexing them.

    Samples of the folds not under test only train (a fitted recognizer, the
    attacker): protecting, attacking and embedding them would cost work no
    score uses (three quarters of it with ``test_folds: [0]`` of 4). Each
    sample is processed alone (keys and nonces follow its id), so every score
    equals the one the whole dataset would give. All samples when every fold
    is tested (the same data, so the same cache keys).
    """
    mask = data.victims
    if mask.all():
        return data
    assert data.folds is not None, "without folds every sample is evaluated"
    keep = np.flatnonzero(mask)
    index = np.full(mask.size, -1, np.int64)
    index[keep] = np.arange(keep.size)
    c = data.comparisons
    comps = dataclasses.replace(c, probe=index[c.probe], reference=index[c.reference])
    if (comps.probe < 0).any() or (comps.reference < 0).any():
        raise AssertionError("a comparison uses a sample outside the test folds")
    a = data.aligned
    key = hash_json({"of": a.key, "evaluated": hash_array(mask)})
    aligned = dataclasses.replace(a, key=key, images=a.images[mask], keep=a.keep[mask])
    return _Data(data.samples, data.fingerprint, aligned, comps, data.dropped_pairs, data.folds[mask], data.test_folds)


def _plain(data: _Data) -> ImageSet:
    """The originals of ``data``'s usable samples."""
    return ImageSet("plain", data.aligned.key, data.aligned.images, np.zeros(len(data.aligned.images), bool))


def _dataset_block(lp: LoadedProtocol, data: _Data) -> DatasetInfo:
    spec = lp.model.dataset
    status = data.aligned.status
    return {
        "name": spec.name,
        "demo": bool(data.samples.demo),
        "root": spec.root,
        "params": jsonable(spec.params),
        "n_samples": len(data.samples),
        "n_usable": int(data.aligned.keep.size),
        "n_subjects": len(set(data.samples.subjects)),
        # Files the dataset left out (symbolic links) beside the ones that could not be read.
        "n_skipped": len(data.aligned.reasons) + len(data.samples.skipped or ()),
        "skipped": [
            {"id": k, "reason": v} for k, v in sorted([*data.aligned.reasons.items(), *(data.samples.skipped or ())])
        ],
        "n_detected": int((status == STATUS_DETECTED).sum()),
        "n_fallback_crop": int((status == STATUS_FALLBACK).sum()),
        "pre_aligned": bool(data.samples.aligned),
        "folds": spec.folds,
        "test_folds": spec.test_folds if spec.test_folds is not None else list(range(spec.folds)),
        "seed": spec.seed,
        "pairs_file": spec.pairs,
        "n_pairs_dropped": data.dropped_pairs,
        "n_genuine": int(data.comparisons.mated.sum()),
        "n_impostor": int((~data.comparisons.mated).sum()),
    }


# --------------------------------------------------------------------------- views and per-view values


def _attacker(lp: LoadedProtocol, engine: Engine, full: _Data, plain: ImageSet) -> Attacker | None:
    """The protocol's attacker over every usable sample ``full`` (its faces may come from any fold)."""
    learned = [
        _as(LearnedAttack, i.component) for i in lp.instances("attacks") if isinstance(i.component, LearnedAttack)
    ]
    if lp.model.attacker is None or not learned:
        return None
    min_faces = max(type(a).min_train_faces for a in learned)
    return build_attacker(lp, engine, plain, full.ids, full.subjects, full.folds, min_faces, evaluated=full.victims)


def _all_views(
    lp: LoadedProtocol,
    engine: Engine,
    data: _Data,
    plain: ImageSet,
    master_key: MasterKey | None,
    attacker: Attacker | None,
) -> list[View]:
    views = [baseline_view(plain, len(data.comparisons))]
    for inst in lp.instances("schemes"):
        assert master_key is not None
        attacks = [AttackInstance(i.label, _as(Attack, i.component)) for i in lp.attacks_for(inst.label)]
        ctx = SchemeContext(
            engine,
            inst.label,
            _as(Scheme, inst.component),
            jsonable(inst.params),
            attacks,
            master_key,
            key_binding(data.fingerprint),
            plain,
            data.ids,
            data.subjects,
            data.comparisons.mated,
        )
        if lp.model.views is not None:
            ctx.kinds = frozenset(lp.model.views)
        ctx.attacker = attacker
        views += scheme_views(ctx)
    return views


def _as(cls: type, component: Any) -> Any:
    assert isinstance(component, cls), f"{component!r} is not a {cls.__name__}"
    return component


def _quality(engine: Engine, view: View, plain: ImageSet, victims: np.ndarray) -> dict[str, np.ndarray] | None:
    """Per-image PSNR/SSIM of an attacked view's output against the originals, victims only (None for others)."""
    if view.attacked is None:
        return None
    return fidelity_stage(engine, f"{view.scheme}:{view.attack}|{view.name}", plain, view.attacked, victims)


def _view_extras(
    view: View, quality: dict[str, np.ndarray] | None, schemes: dict[str, Scheme], data: _Data, settings: EvalSettings
) -> dict[str, Any]:
    """Values of a view that do not depend on the recognizer: key space, image quality, attack counters."""
    extras: dict[str, Any] = {}
    if view.scheme != "none":
        scheme = schemes[view.scheme]
        extras["key_space_bits"] = float(scheme.key_space_bits())
        transforms = scheme.transform_space_bits()
        if transforms is not None:
            extras["transform_space_bits"] = float(transforms)
    if quality is not None and view.attacked is not None:
        extras.update(quality_metrics(quality, data.subject_codes[data.victims], settings))
        # Mean per-sample attack counters (e.g. bytes, passes, code-blocks dropped).
        extras.update({f"mean_{k}": float(np.mean(v)) for k, v in view.attacked.counters.items() if v.size})
    return extras


def _add_reference_gains(
    views: Sequence[View], qualities: Sequence[dict[str, np.ndarray] | None], extras: Sequence[dict[str, Any]]
) -> None:
    """Per-image PSNR of each attack against the reference (``naive``) attack of the same scheme and view kind.

    Mean PSNR alone can hide images where an attack does worse than simply
    decoding the protected sample; the paired counts show them.
    """
    reference = {(v.scheme, v.kind): q for v, q in zip(views, qualities) if v.reference and q is not None}
    for view, quality, extra in zip(views, qualities, extras):
        ref = reference.get((view.scheme, view.kind))
        if view.reference or view.attack == "none" or ref is None or quality is None:
            continue
        gain = psnr_gain(quality["psnr"], ref["psnr"])
        extra.update({f"{k}_vs_naive": v for k, v in gain.items()})


def _write_quality(
    out: Path, views: Sequence[View], qualities: Sequence[dict[str, np.ndarray] | None], data: _Data
) -> None:
    """One CSV per attacked view: per-sample PSNR and SSIM of the attack output, victims only (see README)."""
    ids = [i for i, v in zip(data.ids, data.victims) if v]
    subjects = [s for s, v in zip(data.subjects, data.victims) if v]
    for view, quality in zip(views, qualities):
        if quality is not None:
            name = quality_file_name(view.scheme, view.attack, view.kind)
            write_quality(out / "quality" / name, ids, subjects, view.scheme, view.attack, quality)


def _victim_images(images: ImageSet, data: _Data) -> ImageSet:
    """The victims' part of an image set (keyed by the set and the mask)."""
    if data.victims.all():
        return images
    key = hash_json({"of": images.key, "victims": hash_array(data.victims)})
    return ImageSet(images.name, key, images.images[data.victims], images.failed[data.victims])


def _face_quality(lp: LoadedProtocol, engine: Engine, views: Sequence[View], plain: ImageSet, data: _Data) -> list:
    """Distributions of each declared face-quality measure: originals, then every strength view's output."""
    out = []
    for inst in lp.instances("face_quality"):
        measure = _as(FaceQuality, inst.component)
        sets = [("none", "none", plain)] + [
            (v.scheme, v.attack, v.attacked) for v in views if v.kind == "strength" and v.attacked is not None
        ]
        for scheme, attack, images in sets:
            name = "plain" if scheme == "none" else f"{scheme}:{attack}"
            scores = quality_stage(engine, f"{inst.label}@{name}", measure, _victim_images(images, data))
            block = {"measure": inst.label, "description": type(measure).description, "scheme": scheme}
            out.append({**block, "attack": attack, **quality_distribution(scores)})
    return out


# --------------------------------------------------------------------------- rows


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


class _Evaluator:
    """Scores every (recognizer, view) pair, reusing features across views.

    ``data`` and ``plain`` are the evaluated samples (:func:`_evaluated`);
    ``full`` and ``full_plain`` every usable sample, which fitted recognizers
    train on.
    """

    def __init__(
        self,
        engine: Engine,
        data: _Data,
        plain: ImageSet,
        settings: EvalSettings,
        metrics: list[Metric],
        full: tuple[_Data, ImageSet],
    ):
        self.engine, self.data, self.plain, self.settings, self.metrics = engine, data, plain, settings, metrics
        self.full, self.full_plain = full

    def _fold_models(self, inst: Instance, recognizer: FittedRecognizer) -> list[tuple[str, FittedRecognizer, Any]]:
        """One model per evaluated fold, fitted on the original faces of every other fold.

        Comparisons never cross folds, so each sample is embedded by a model
        that has not seen its subject (protocol validation requires folds).
        Each model is paired with the mask of the evaluated samples it embeds.
        """
        data, full = self.data, self.full
        assert data.folds is not None and full.folds is not None
        models = []
        for fold in data.test_folds:
            held_out = full.folds == fold
            key, model = fit_recognizer_stage(
                self.engine, f"{inst.label}@fold{fold}", recognizer, self.full_plain, ~held_out, full.subjects, held_out
            )
            models.append((key, model, data.folds == fold))
        return models

    def _features(self, inst: Instance):  # noqa: ANN202 - a closure over a per-recognizer cache
        recognizer = _as(Recognizer, inst.component)
        # Features of the originals stay in memory (every view compares with
        # them); those of each protected or attacked set are read back from
        # the stage cache when a view needs them again, so that a sweep holds
        # one setting's features at a time, not every setting's.
        held: dict[str, tuple[str, np.ndarray]] = {}
        stored: dict[str, CachedArray] = {}
        models = self._fold_models(inst, recognizer) if isinstance(recognizer, FittedRecognizer) else None

        def features(images: ImageSet) -> tuple[str, np.ndarray]:
            if images.key in held:
                return held[images.key]
            if images.key in stored:
                return stored[images.key].key, stored[images.key]()
            label = inst.label if images.name == "plain" else f"{inst.label}@{images.name}"
            # Keyed by content: an attack that returns the protected
            # images unchanged (naive on a cancelable scheme) reuses them.
            content = images.content()
            load = functools.partial(getattr, images, "images")  # read only on a miss
            if models is None:
                key, feats = embed_stage(self.engine, label, recognizer, content, load)
            else:
                key, feats = fitted_embed_stage(self.engine, label, models, content, load)
            if images.name == "plain" or not self.engine.cache.has("embed", key):
                held[images.key] = (key, feats)
            else:
                stored[images.key] = CachedArray(self.engine.cache, "embed", key, "features")
            return key, feats

        return features

    def _model_features(self, inst: Instance, model: FineTuned):  # noqa: ANN202 - a closure like _features
        """Features by a fine-tuned recognizer (a recognizer attack's product) instead of ``inst``'s."""
        cache: dict[str, tuple[str, np.ndarray]] = {}

        def features(images: ImageSet) -> tuple[str, np.ndarray]:
            if images.key not in cache:
                label = f"{model.attack}@{images.name}"
                cache[images.key] = finetuned_embed_stage(self.engine, label, model.models, images)
            return cache[images.key]

        return features

    def scores(self, inst: Instance, view: View, features) -> ViewScores:  # noqa: ANN001
        c = self.data.comparisons
        recognizer = _as(Recognizer, inst.component)

        def score(probe, ref, pi, ri):  # noqa: ANN001, ANN202
            label = f"{inst.label}|{view.scheme}|{view.name}" if view.name != "baseline" else inst.label
            return score_stage(self.engine, label, recognizer, probe, ref, pi, ri)

        return score_view(view, features, score, c.probe, c.reference, c.mated, self.data.subject_codes)

    def _model_baseline(self, inst: Instance, view: View, features, out: Path):  # noqa: ANN001, ANN202
        """A fine-tuned recognizer's own baseline: plain vs plain through it, its scores and metrics.

        Its impostor scores set the SAR thresholds of the model's strength
        rows and its EER their ΔEER: the pretrained model's thresholds on
        another model's scores would not be at the FMR they name. The scores
        are written like any row's (the row's ``baseline_score_file``).
        """
        base = baseline_view(self.plain, len(self.data.comparisons))
        base = dataclasses.replace(
            base, name=f"baseline:{view.attack}", scheme=view.scheme, attack=view.attack, model=view.model
        )
        vs = self.scores(inst, base, features)
        label = f"{inst.label}|{view.scheme}|{base.name}"
        values, _ = metrics_stage(self.engine, label, base, vs, None, self.metrics, self.settings, {})
        name = score_file_name(inst.label, view.scheme, view.attack, base.name)
        write_scores(out / "scores" / name, _score_set(self.data, inst.label, base, vs))
        return (vs, values), f"scores/{name}"

    def rows(self, inst: Instance, views: Sequence[View], extras: Sequence[dict[str, Any]], out: Path) -> list[Row]:
        own = self._features(inst)
        tuned: dict[str, Any] = {}
        tuned_baselines: dict[str, Any] = {}
        rows: list[Row] = []
        baseline: tuple[ViewScores, dict[str, Any]] | None = None
        for view, extra in zip(views, extras):
            features = own
            system, source, base_file = baseline, f"baseline of {inst.label}", None
            if view.model is not None:
                # A fine-tuned recognizer's rows stand beside the recognizer it started from only.
                if inst.name not in view.model.recognizers:
                    continue
                key = view.model.attack + "|" + view.scheme
                features = tuned.setdefault(key, self._model_features(inst, view.model))
                if key not in tuned_baselines:
                    tuned_baselines[key] = self._model_baseline(inst, view, features, out)
                system, base_file = tuned_baselines[key]
                source = f"baseline of {view.model.attack} (plain vs plain through the fine-tuned model)"
            if view.kind == "renewal":
                source = "the renewed system's own non-mated comparisons"
            vs = self.scores(inst, view, features)
            if not vs.mated.any() or vs.mated.all():
                log.warning("%s / %s: no mated or no non-mated comparison left", inst.label, view.name)
            label = f"{inst.label}|{view.scheme}|{view.name}"
            values, curves = metrics_stage(self.engine, label, view, vs, system, self.metrics, self.settings, extra)
            if view.kind == "baseline":
                baseline = (vs, values)
            name = score_file_name(inst.label, view.scheme, view.attack, view.name)
            write_scores(out / "scores" / name, _score_set(self.data, inst.label, view, vs))
            row: Row = {
                "recognizer": inst.label,
                "recognizer_params": jsonable(inst.component.get_params()),
                "recognizer_runtime_params": sorted(inst.component.runtime_params),
                "scheme": view.scheme,
                "scheme_params": view.scheme_params,
                "attack": view.attack,
                "view": view.name,
                "attacker_knowledge": view.knowledge,
                "metrics": values,
                "curves": curves,
                "score_file": f"scores/{name}",
            }
            if any(k.startswith("sar_at_fmr_") for k in values):
                row["threshold_source"] = source
            if base_file is not None:
                row["baseline_score_file"] = base_file
            if view.key_known:
                row["key_known"] = True
            rows.append(row)
        return rows


# --------------------------------------------------------------------------- results


def _sweeps(lp: LoadedProtocol) -> list[Sweep]:
    """Schemes swept over one grid parameter: labels and values, in order."""
    out: list[Sweep] = []
    instances = lp.instances("schemes")
    for i, ref in enumerate(lp.model.schemes):
        if len(ref.grid) != 1:
            continue
        (param,) = ref.grid
        mine = [inst for inst in instances if inst.ref_index == i]
        out.append(
            {
                "scheme": ref.name,
                "param": param,
                "fixed": jsonable(ref.params),
                "labels": [inst.label for inst in mine],
                "values": [jsonable(inst.params[param]) for inst in mine],
            }
        )
    return out


def _scheme_provenance(scheme: Scheme) -> dict[str, Any]:
    """Scheme class, parameters and the settings beyond them (an encoder's)."""
    return jsonable({"class": type(scheme).__qualname__, "params": scheme.get_params(), **scheme.settings()})


def _master_key(lp: LoadedProtocol) -> MasterKey:
    src = lp.model.keys
    try:
        if src is None:
            return load_master_key(seed=lp.model.dataset.seed)
        return load_master_key(src.file, src.env, random=src.random)
    except KeySourceError as exc:
        field = "file" if src and src.file else "env"
        raise lp.error(("keys", field), str(exc)) from None


def _check_available(lp: LoadedProtocol) -> None:
    for inst in lp.instances("recognizers"):
        reason = _as(Recognizer, inst.component).available()
        if reason:
            raise lp.error(("recognizers", inst.ref_index, "name"), f"{inst.name} is unavailable: {reason}")
    for inst in lp.instances("face_quality"):
        reason = _as(FaceQuality, inst.component).available()
        if reason:
            raise lp.error(("face_quality", inst.ref_index, "name"), f"{inst.name} is unavailable: {reason}")


def run_protocol(lp: LoadedProtocol, opts: RunOptions) -> RunOutput:
    """Run every stage of a protocol; write score files, quality files and results.json.

    Raises:
        ProtocolError: for bad input found while running (missing data...).
    """
    executor = opts.executor or LocalExecutor(workers=opts.workers)
    try:
        with using(executor, sample_time_limit=lp.model.execution.sample_time_limit):
            return _run(lp, opts, Engine(opts.cache, workers=executor.workers, keep_work=opts.keep_work))
    finally:
        if opts.executor is None:
            executor.close()


def _run(lp: LoadedProtocol, opts: RunOptions, engine: Engine) -> RunOutput:
    _check_available(lp)
    master_key = _master_key(lp) if lp.model.schemes else None
    full = _prepare(lp, engine)
    full_plain = _plain(full)
    data = _evaluated(full)
    plain = full_plain if data is full else _plain(data)
    if data is not full:
        log.info(
            "test folds %s: protecting, attacking and embedding their %d samples of %d usable (the rest only train)",
            list(data.test_folds),
            len(data.ids),
            len(full.ids),
        )
    attacker = _attacker(lp, engine, full, full_plain)
    views = _all_views(lp, engine, data, plain, master_key, attacker)
    schemes = {i.label: _as(Scheme, i.component) for i in lp.instances("schemes")}
    settings = EvalSettings(n_boot=lp.model.bootstrap.n_boot, seed=lp.model.bootstrap.seed)
    qualities = [_quality(engine, v, plain, data.victims) for v in views]
    extras = [_view_extras(v, q, schemes, data, settings) for v, q in zip(views, qualities)]
    _add_reference_gains(views, qualities, extras)
    _write_quality(opts.out, views, qualities, data)
    metrics = [_as(Metric, m.component) for m in lp.instances("metrics")]
    evaluator = _Evaluator(engine, data, plain, settings, metrics, (full, full_plain))
    rows = [r for inst in lp.instances("recognizers") for r in evaluator.rows(inst, views, extras, opts.out)]
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "protocol": {"name": lp.name, "file": str(lp.path), "notes": lp.model.notes},
        "dataset": _dataset_block(lp, full),
        "rows": rows,
    }
    sweeps = _sweeps(lp)
    if sweeps:
        out["sweeps"] = sweeps
    if attacker is not None:
        out["attacker"] = attacker.info()
        out["trained_models"] = attacker.models
    face_quality = _face_quality(lp, engine, views, plain, data)
    if face_quality:
        out["face_quality"] = face_quality
    if lp.model.examples > 0 and any(v.attacked is not None or v.protected is not None for v in views):
        picked = pick_examples(data.subjects, data.victims, lp.model.examples, lp.model.dataset.seed)
        out["examples"] = example_sets(views, plain, data.ids, data.subjects, picked)
    if lp.model.certify:
        out["certification"] = judge(rows, lp.model.certify, lp.model.bootstrap.n_boot, lp.model.competence)
    schemes_used = {label: _scheme_provenance(s) for label, s in schemes.items()}
    out["provenance"] = provenance(lp, data.fingerprint, engine.summary(), master_key, schemes_used)
    results: Results = jsonable(out)
    path = write_results(opts.out / "results.json", results)
    return RunOutput(results, path, engine)

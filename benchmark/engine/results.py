"""``results.json``: its typed schema, and the one place that writes and reads it.

The pipeline fills these structures; the report renderer
(:mod:`reports.render`) and any other reader take them as they are. Values
are plain JSON: numbers stay numbers, an undefined figure is ``null``
(JSON has no NaN), tuples become lists.

Schema versions: 1 (FaceSec 0.1.0); 2 adds CIs for ``sar_at_fmr_*``,
``psnr`` and ``ssim`` and ``n_sar_impostor``, ``transform_space_bits``, the
``UNRESOLVED`` verdict with a ``reason``, the key's ``source``, and renewal
rows report SAR at FMR instead of D↔sys. 3 adds the learned attacks' blocks
(``attacker``, ``trained_models``), ``face_quality`` distributions and
``examples``; PSNR/SSIM are measured on the samples of the test folds only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np

from benchmark.core.cache import atomic_write_text
from benchmark.core.strict_json import JsonError, parse_json

__all__ = [
    "SCHEMA_VERSION",
    "Verdict",
    "Results",
    "Row",
    "DatasetInfo",
    "ProtocolInfo",
    "Sweep",
    "CertificationEntry",
    "KeyInfo",
    "Provenance",
    "AttackerInfo",
    "OverlapInfo",
    "OverlapMatch",
    "TrainedModelInfo",
    "StopInfo",
    "FaceQualityInfo",
    "ExampleSet",
    "ResultsError",
    "jsonable",
    "stopped_on_budget",
    "write_results",
    "read_results",
]

SCHEMA_VERSION = 3

Verdict = Literal["PASS", "FAIL", "UNRESOLVED"]
Number = float | int | None


class ProtocolInfo(TypedDict):
    name: str
    file: str
    notes: str


class SkippedSample(TypedDict):
    id: str
    reason: str


class DatasetInfo(TypedDict):
    name: str
    demo: bool
    root: str | None
    params: dict[str, Any]
    n_samples: int
    n_usable: int
    n_subjects: int
    #: Samples that could not be read plus files the dataset left out (symbolic links); the links are not
    #: in ``n_samples``, so ``n_samples == n_usable + n_skipped`` only holds for a folder without links.
    n_skipped: int
    skipped: list[SkippedSample]
    n_detected: int
    n_fallback_crop: int
    #: The dataset's images are aligned faces (the synthetic demo): no face detection ran, so the two
    #: counts above are not applicable. Absent in results files written before it.
    pre_aligned: NotRequired[bool]
    folds: int
    test_folds: list[int]
    seed: int
    pairs_file: str | None
    n_pairs_dropped: int
    n_genuine: int
    n_impostor: int


class Row(TypedDict):
    """One (recognizer, scheme, attack, view).

    ``metrics`` is flat: ``eer``, ``fnmr_at_fmr_<t>``, ``d_prime``,
    ``delta_eer``, ``d_sys``…, ``sar_at_fmr_<t>``, ``psnr``, ``ssim``,
    ``key_space_bits``, counts, and ``<metric>_ci_low``/``_ci_high`` pairs.
    """

    recognizer: str
    recognizer_params: dict[str, Any]
    scheme: str
    scheme_params: dict[str, Any]
    attack: str
    view: str
    attacker_knowledge: str | None
    metrics: dict[str, Number]
    curves: dict[str, Any]
    score_file: str
    #: Rows with a SAR: whose impostor scores set its thresholds (``baseline of <recognizer>``, for a
    #: fine-tuned recognizer ``baseline of <attack> (...)``, for renewal the renewed system's).
    threshold_source: NotRequired[str]
    #: A fine-tuned recognizer's rows: the score file of its own baseline (SAR thresholds, ΔEER).
    baseline_score_file: NotRequired[str]
    #: Rows of an attacker who holds the victim's key (stolen token); absent for keyless attacks.
    key_known: NotRequired[bool]
    #: Names in ``recognizer_params`` that only set how it ran (batch size, threads): reports leave them
    #: out of the recognizer's label and shown parameters; ``compare`` still matches on every parameter.
    recognizer_runtime_params: NotRequired[list[str]]


class Sweep(TypedDict):
    """A scheme swept over one grid parameter: its labels and values, in order."""

    scheme: str
    param: str
    fixed: dict[str, Any]
    labels: list[str]
    values: list[Any]


class CertificationEntry(TypedDict):
    """The verdict on one certification criterion (the worst matching row decides)."""

    metric: str
    view: str
    recognizer: str
    scheme: str
    max: NotRequired[float]
    min: NotRequired[float]
    value: Number
    point: Number
    worst_row: str | None
    n_rows: int
    n_undefined: int
    verdict: Verdict
    reason: str
    #: The recognizer of the deciding row; None when none decides (no competent recognizer). Absent from older results.
    decided_by: NotRequired[str | None]
    #: Recognizers whose rows were no evidence (their baseline not competent), with why.
    not_competent: NotRequired[dict[str, str]]
    #: The competence required (``max_fnmr``, ``fmr``); None: not required.
    competence: NotRequired[dict[str, float] | None]


class KeyInfo(TypedDict):
    """Which master key a run used: a fingerprint and its source, never key material."""

    key_id: str
    source: Literal["file", "env", "seed", "random"]
    seed: NotRequired[int]


class Provenance(TypedDict):
    key: KeyInfo | None
    protocol_sha256: str
    protocol_sections: NotRequired[dict[str, str]]  # benchmark.engine.provenance.EVALUATION_SECTIONS
    overrides: list[str]
    dataset_fingerprint: str
    git_commit: str | None
    facesec_version: str
    python: str
    platform: str
    components: dict[str, str | None]
    seeds: dict[str, int]
    created: str
    cache: dict[str, int]
    schemes: dict[str, dict[str, Any]]


class OverlapMatch(TypedDict):
    """An attacker subject found to be a victim subject: its best victim, median score, identical faces."""

    attacker_subject: str
    victim_subject: str
    score: float | None
    n_identical: int


class OverlapInfo(TypedDict):
    """The face check of a separate attacker dataset against the victims (``source: dataset``)."""

    recognizer: str | None
    fmr: float
    threshold: float | None
    fmr_supported: bool
    n_impostor: int
    matches: list[OverlapMatch]
    policy: Literal["drop", "refuse"]
    n_subjects_dropped: int
    n_faces_dropped: int


class AttackerInfo(TypedDict):
    """The declared attacker of learned attacks (no key material: its keys are public, per seed)."""

    source: Literal["folds", "dataset"]
    description: str
    n_faces: int
    n_subjects: int
    keys_per_face: int
    faces_per_key: int
    rotate: bool
    validation: float
    max_faces: int | None
    seed: int
    n_models_per_attack: int
    subject_disjoint: bool
    overlap: NotRequired[OverlapInfo]


class EpochInfo(TypedDict):
    """One training epoch (epoch 0 of a recognizer attack is the pretrained model, with no loss)."""

    epoch: int
    loss: float | None
    val_loss: NotRequired[float | None]
    val_eer: NotRequired[float | None]
    kept: NotRequired[bool]
    seconds: float
    lr: NotRequired[float | None]
    # On the last epoch only: why training stopped (``plateau``, ``max_epochs`` or ``max_minutes``).
    stop: NotRequired[str]


class TrainedModelInfo(TypedDict):
    """One model a learned attack trained (``group``: index of its training set; ``fold`` with rotation).

    ``kind`` is ``reconstruction`` (images out) or ``recognizer`` (a
    fine-tuned recognizer); ``scheme`` is the setting it was trained under
    when that is the setting attacked, else None and ``trained_on`` lists the
    settings (schema 3 files written before recognizer attacks lack both).
    """

    attack: str
    kind: NotRequired[str]
    scheme: str | None
    trained_on: NotRequired[str]
    group: int
    fold: int | None
    model_key: str
    n_train_faces: int
    n_train_subjects: int
    n_val_faces: int
    keys_per_face: int
    n_pairs: int
    device: str
    seconds: float
    cached: bool
    params: dict[str, Any]
    history: list[EpochInfo]
    # How training stopped (files written before plateau stopping lack these):
    # ``converged`` on a validation plateau, ``budget`` when ``max_epochs`` or
    # ``max_minutes`` ran out (``budget`` says which; None when converged).
    stopped: NotRequired[Literal["converged", "budget"] | None]
    budget: NotRequired[Literal["epochs", "minutes"] | None]
    epochs: NotRequired[int]
    best_epoch: NotRequired[int | None]


class StopInfo(TypedDict):
    """How a trained model stopped (the fields of :class:`TrainedModelInfo` that say so)."""

    stopped: Literal["converged", "budget"] | None
    budget: Literal["epochs", "minutes"] | None
    epochs: int
    best_epoch: int | None


class Histogram(TypedDict):
    edges: list[float]
    counts: list[int]


class FaceQualityInfo(TypedDict):
    """Distribution of a face-quality measure over one image set (``none``/``none``: the originals)."""

    measure: str
    description: str
    scheme: str
    attack: str
    n: int
    failed: int
    mean: float | None
    median: float | None
    hist: Histogram


class ExampleSample(TypedDict):
    id: str
    subject: str
    images: list[str | None]  # PNG data URIs, one per column; None where the attack failed


class ExampleSet(TypedDict):
    scheme: str
    columns: list[str]
    samples: list[ExampleSample]


class Results(TypedDict):
    schema_version: int
    protocol: ProtocolInfo
    dataset: DatasetInfo
    rows: list[Row]
    sweeps: NotRequired[list[Sweep]]
    certification: NotRequired[list[CertificationEntry]]
    attacker: NotRequired[AttackerInfo]
    trained_models: NotRequired[list[TrainedModelInfo]]
    face_quality: NotRequired[list[FaceQualityInfo]]
    examples: NotRequired[list[ExampleSet]]
    provenance: Provenance


class ResultsError(ValueError):
    """A results file that cannot be read (one line)."""


def stopped_on_budget(trained_models: Any) -> frozenset[tuple[str | None, str]]:
    """The (scheme, attack) of every trained model that stopped on a budget, not on a validation plateau.

    A model trained on listed settings serves every scheme: its scheme is
    None. Such an attack may be stronger than its rows say (the report, the
    leaderboard and ``compare`` flag them). Entries that are not mappings
    (hand-edited files) are skipped.

    Args:
        trained_models: ``results["trained_models"]`` (absent: None).
    """
    found = set()
    for model in trained_models if isinstance(trained_models, list) else []:
        if isinstance(model, dict) and model.get("stopped") == "budget":
            scheme = model.get("scheme")
            found.add((str(scheme) if scheme else None, str(model.get("attack"))))
    return frozenset(found)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars unwrapped, tuples as lists, non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN; an undefined figure is null
    return obj


def write_results(path: Path, results: Results) -> Path:
    """Write ``results`` atomically as indented JSON; returns ``path``."""
    atomic_write_text(Path(path), json.dumps(jsonable(results), indent=2, allow_nan=False), shared=True)
    return Path(path)


def read_results(path: Path) -> Results:
    """Read a results file.

    Raises:
        ResultsError: unreadable, not JSON, nested too deeply, or of an unknown schema version.
    """
    try:
        data = parse_json(Path(path).read_bytes())
    except (OSError, JsonError) as exc:
        raise ResultsError(f"{path}: cannot read results: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in (1, 2, SCHEMA_VERSION):
        raise ResultsError(f"{path}: unknown results schema version {version!r} (known: 1, 2, {SCHEMA_VERSION})")
    return data

"""The declared attacker of learning attacks: its own faces, its own keys, and the models it trains.

A learning attack (:class:`~benchmark.core.component.LearnedAttack`) needs
training data. The protocol's ``attacker:`` block declares it
(:class:`~benchmark.engine.protocol.AttackerSpec`):

* the attacker's faces are subject-disjoint from the victims': the evaluation
  dataset's folds not under test (one model per test fold with ``rotate``),
  or a separate dataset;
* it protects them under its own keys (:meth:`MasterKey.attacker`, several
  per face, and a new one every ``faces_per_key`` faces), never the victims', runs the attack's input attack on them and
  trains on (input, original) pairs;
* every model is a cached artifact (:func:`~benchmark.engine.stages.train_stage`),
  and :meth:`Attacker.check_disjoint` refuses any training set that holds a
  face of a subject the model will attack;
* a separate dataset is checked by face, not only by subject name
  (:func:`find_overlap`): an attacker subject whose faces a recognizer
  matches with a victim subject's, or that holds an exact copy of a victim's
  face, is dropped before training (or the protocol refused).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.cache import hash_array, hash_json
from benchmark.core.codeversion import code_version
from benchmark.core.component import (
    FittedRecognizer,
    LearnedAttack,
    Protected,
    Recognizer,
    RecognizerAttack,
    ReconstructionAttack,
    Samples,
    Scheme,
)
from benchmark.core.keys import MasterKey
from benchmark.core.registry import DATASETS, SCHEMES
from benchmark.data.datasets.folder import DatasetError
from benchmark.engine.protocol import AttackerSpec, Instance, LoadedProtocol
from benchmark.engine.results import StopInfo
from benchmark.engine.stages import (
    Engine,
    ImageSet,
    Trained,
    TrainingSet,
    align_stage,
    attack_stage,
    dataset_fingerprint,
    embed_stage,
    load_stage,
    protect_stage,
    reconstruct_stage,
    train_stage,
)

__all__ = [
    "OVERLAP_FMR",
    "OVERLAP_RECOGNIZERS",
    "Attacker",
    "AttackerFaces",
    "Group",
    "stop_summary",
    "LeakError",
    "build_attacker",
    "find_overlap",
    "impostor_threshold",
    "trained_on",
]

log = logging.getLogger(__name__)

#: Recognizers the face check of an attacker dataset prefers, strongest first; a protocol without
#: any of them uses its first recognizer that needs no fitting. A fixed order, not the lowest
#: baseline EER: no score exists yet when the check runs (before any training).
OVERLAP_RECOGNIZERS = ("sface", "sface-torch", "dlib", "onnx")
#: The share of the victims' own impostor scores above the threshold of a mated-like score.
OVERLAP_FMR = 1e-4
# Feature values gathered per side and block of comparisons (64 MB of float32).
_BLOCK_ELEMENTS = 1 << 24


class LeakError(RuntimeError):
    """A training set that holds a face of a subject its model attacks (a bug, never bad input)."""


@dataclass
class AttackerFaces:
    """The attacker's own aligned faces."""

    plain: ImageSet
    ids: list[str]
    subjects: list[str]
    description: str


@dataclass
class Group:
    """One model's data: attacker faces it trains and validates on, and the victims it attacks.

    Attributes:
        train: Indices into the attacker's faces (fitting).
        val: Indices into the attacker's faces (validation loss; other subjects than ``train``).
        victims: bool mask over the evaluation samples this model attacks.
        fold: The test fold it attacks (rotation), else None.
    """

    train: np.ndarray
    val: np.ndarray
    victims: np.ndarray
    fold: int | None = None


@dataclass
class Attacker:
    """Trains learned attacks on the attacker's faces and applies them to victims' samples."""

    engine: Engine
    spec: AttackerSpec
    faces: AttackerFaces
    groups: list[Group]
    victim_subjects: Sequence[str]
    overlap: dict[str, Any] | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    _inputs: dict[tuple[str, str], list[ImageSet]] = field(default_factory=dict, repr=False)
    _trained: dict[tuple[str, str], list[Trained]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.check_disjoint()

    # ----------------------------------------------------------------- declared facts

    def check_disjoint(self) -> None:
        """Raise :class:`LeakError` when a model would train or validate on a subject it attacks."""
        subjects = np.asarray(self.faces.subjects, dtype=object)
        victims = np.asarray(self.victim_subjects, dtype=object)
        for i, g in enumerate(self.groups):
            seen = set(subjects[np.concatenate([g.train, g.val]).astype(int)])
            attacked = set(victims[g.victims])
            shared = seen & attacked
            if shared:
                raise LeakError(f"attacker model {i} would see {len(shared)} victim subject(s), e.g. {min(shared)!r}")

    def knowledge(self, attack: LearnedAttack) -> str:
        """What the attacker knows, for results and reports."""
        spec = self.spec
        n_train = sorted({len(g.train) for g in self.groups})
        per = "one model per test fold, trained on the other folds; " if spec.rotate else ""
        val = f"{spec.validation:.0%} of its subjects held out for validation" if spec.validation else "no validation"
        base = f"base model {getattr(attack, 'base', '?')}; " if isinstance(attack, RecognizerAttack) else ""
        stolen = "the victim's key (stolen token) for its input attack; " if attack.key_known() else ""
        return (
            f"{stolen}{attack.describe_knowledge()}; {base}trained under {trained_on(attack)}; "
            f"attacker's faces: {self.faces.description}; {per}"
            f"{'/'.join(str(n) for n in n_train)} training faces per model, {spec.keys_per_face} own random key(s) "
            f"per face (a new key every {spec.faces_per_key} faces), {val}; "
            "no victim subject in any training set (checked"
            + (" by name and by face)" if self.overlap is not None else ")")
        )

    def info(self) -> dict[str, Any]:
        """The ``attacker`` block of results."""
        return {
            "source": self.spec.source,
            "description": self.faces.description,
            "n_faces": len(self.faces.ids),
            "n_subjects": len(set(self.faces.subjects)),
            "keys_per_face": self.spec.keys_per_face,
            "faces_per_key": self.spec.faces_per_key,
            "rotate": self.spec.rotate,
            "validation": self.spec.validation,
            "max_faces": self.spec.max_faces,
            "seed": self.spec.seed,
            "n_models_per_attack": len(self.groups),
            "subject_disjoint": True,
            **({"overlap": self.overlap} if self.overlap is not None else {}),
        }

    # ----------------------------------------------------------------- training

    def _train_settings(self, attack: LearnedAttack, scheme: Scheme, scheme_label: str) -> tuple[str, list[Scheme]]:
        """A label for the settings the attacker trains under, and their schemes (the attacked one by default)."""
        listed = attack.train_schemes()
        if listed is None:
            return scheme_label, [scheme]
        label = "train-" + hash_json([[n, p] for n, p in listed])[:10]
        return label, [SCHEMES.get(n).from_params(p) for n, p in listed]

    def _attacker_inputs(self, attack: LearnedAttack, settings: tuple[str, list[Scheme]]) -> list[ImageSet]:
        """The input attack's output on the attacker's faces, once per attacker key index.

        Each key index ``j`` protects the faces in runs of ``faces_per_key``,
        each run under a key of its own: a scheme whose transform depends on
        the key alone (warping) then shows the network many transforms, not
        ``keys_per_face`` of them. With several training settings, the runs
        cycle through them (run ``r`` uses setting ``r mod count``), so the
        training set has as many faces whatever the number of settings.
        """
        first = attack.input_attack()
        train_label, schemes = settings
        found = self._inputs.get((train_label, first.registry_name))
        if found is not None:
            return found
        master = MasterKey.attacker(self.spec.seed)
        plain, n, size = self.faces.plain, len(self.faces.ids), self.spec.faces_per_key
        # Bound to the faces' content, never to a cache key: cache keys cover
        # the code, and a code edit must not draw the attacker other keys
        # (nor may other faces get the same keys and nonces).
        binding = hash_array(plain.images)[:16]
        runs = [slice(s, min(s + size, n)) for s in range(0, n, size)]
        label = f"attacker:{train_label}"
        out = []
        for j in range(self.spec.keys_per_face):
            images = np.zeros_like(plain.images)
            failed = np.zeros(n, bool)
            keys = []
            for k, scheme in enumerate(schemes):
                mine = [(r, sl) for r, sl in enumerate(runs) if r % len(schemes) == k]
                if not mine:
                    continue
                name = f"{label}@key{j}" + (f"/setting{k}" if len(schemes) > 1 else "") + f":{first.registry_name}"
                run_keys, parts, apps = [], [], []
                for r, sl in mine:
                    app = master.application(f"{binding}/attacker-key-{j}/faces-{r}")
                    rows = _rows(plain, sl)
                    part = ImageSet(plain.name, hash_json({"of": plain.key, "run": [sl.start, sl.stop]}), *rows)
                    key, prot = protect_stage(
                        self.engine, label, scheme, app, part, self.faces.ids[sl], self.faces.subjects[sl]
                    )
                    run_keys.append(key)
                    parts.append(prot)
                    apps.append(app)
                where = np.concatenate([np.arange(sl.start, sl.stop) for _, sl in mine])
                if first.key_known():
                    # A key-knowing input (invert) runs under each run's own key: the attacker holds them all.
                    got_runs = [
                        attack_stage(
                            self.engine,
                            f"{name}/run{r}",
                            first,
                            scheme,
                            run_key,
                            prot,
                            (app, self.faces.ids[sl], self.faces.subjects[sl]),
                        )
                        for (r, sl), run_key, prot, app in zip(mine, run_keys, parts, apps, strict=True)
                    ]
                    images[where] = np.concatenate([g.images for g in got_runs])
                    failed[where] = np.concatenate([g.failed for g in got_runs])
                    keys.append(hash_json({"runs": [g.key for g in got_runs]}))
                    continue
                protected: Protected = (
                    np.concatenate(parts) if isinstance(parts[0], np.ndarray) else [b for p in parts for b in p]
                )
                got = attack_stage(self.engine, name, first, scheme, hash_json({"runs": run_keys}), protected)
                images[where], failed[where] = got.images, got.failed
                keys.append(got.key)
            joined = keys[0] if len(keys) == 1 else hash_json({"settings": keys})
            out.append(ImageSet(f"{label}@key{j}:{first.registry_name}", joined, images, failed))
        self._inputs[(train_label, first.registry_name)] = out
        return out

    def _training_set(self, inputs: list[ImageSet], group: Group, recognizer: bool) -> TrainingSet:
        plain = self.faces.plain.images
        codes = np.unique(np.asarray(self.faces.subjects), return_inverse=True)[1].reshape(-1).astype(np.int64)

        def pairs(idx: np.ndarray, copies: list[ImageSet]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            xs, ys, ls = [], [], []
            for inp in copies:
                ok = idx[~inp.failed[idx]]  # a face the input attack could not decode teaches nothing
                xs.append(inp.images[ok])
                ys.append(plain[ok])
                ls.append(codes[ok])
            return np.concatenate(xs), np.concatenate(ys), np.concatenate(ls)

        x, y, lab = pairs(group.train, inputs)
        # A recognizer is validated on one protected copy per face (the probe)
        # against the plain faces (vy, the references) of the other validation
        # faces: one copy, so that no pair compares a face with itself.
        vx, vy, vlab = pairs(group.val, inputs[:1] if recognizer else inputs)
        key = hash_json(
            {
                "inputs": [i.key for i in inputs],
                "plain": self.faces.plain.key,
                "subjects": hash_array(codes),
                "train": hash_array(group.train),
                "val": hash_array(group.val),
                "val_copies": 1 if recognizer else len(inputs),
            }
        )
        return TrainingSet(key, x, y, vx, vy, lab, vlab)

    def trained(self, label: str, attack: LearnedAttack, scheme: Scheme, scheme_label: str) -> list[Trained]:
        """One fitted model per group (cached); a model trained on listed settings serves every scheme."""
        settings = self._train_settings(attack, scheme, scheme_label)
        found = self._trained.get((settings[0], label))
        if found is not None:
            return found
        self.check_disjoint()
        inputs = self._attacker_inputs(attack, settings)
        recognizer = isinstance(attack, RecognizerAttack)
        out = []
        for i, group in enumerate(self.groups):
            data = self._training_set(inputs, group, recognizer)
            where = scheme_label if attack.train_schemes() is None else "its listed settings"
            name = f"{label} on {where}" + (f" (fold {group.fold})" if group.fold is not None else "")
            log.info("%s: training on %d faces (%d validation)", name, len(data.inputs), len(data.val_inputs))
            t = train_stage(self.engine, name, attack, data)
            out.append(t)
            stop = stop_summary(t.history)
            self.models.append(
                {
                    "attack": label,
                    "kind": "recognizer" if recognizer else "reconstruction",
                    "scheme": scheme_label if attack.train_schemes() is None else None,
                    "trained_on": trained_on(attack, scheme_label),
                    "group": i,
                    "fold": group.fold,
                    "model_key": t.key,
                    "n_train_faces": int(len(group.train)),
                    "n_train_subjects": len({self.faces.subjects[j] for j in group.train}),
                    "n_val_faces": int(len(group.val)),
                    "keys_per_face": self.spec.keys_per_face,
                    "n_pairs": int(len(data.inputs)),
                    "device": t.device,
                    "seconds": t.seconds,
                    "cached": t.cached,
                    "params": attack.get_params(),
                    "history": t.history,
                    "stopped": stop["stopped"],
                    "budget": stop["budget"],
                    "epochs": stop["epochs"],
                    "best_epoch": stop["best_epoch"],
                }
            )
        self._trained[(settings[0], label)] = out
        return out

    def attacked(
        self,
        label: str,
        attack: ReconstructionAttack,
        scheme: Scheme,
        scheme_label: str,
        victim_inputs: ImageSet,
        name: str,
    ) -> ImageSet:
        """The learned attack's output on the victims' input-attack output: each group's model on its victims."""
        models = self.trained(label, attack, scheme, scheme_label)
        return reconstruct_stage(
            self.engine, name, [(t, g.victims) for t, g in zip(models, self.groups)], victim_inputs
        )

    def recognizers(
        self, label: str, attack: RecognizerAttack, scheme: Scheme, scheme_label: str
    ) -> list[tuple[Trained, np.ndarray]]:
        """Each group's fitted recognizer with the mask of the victims it evaluates."""
        models = self.trained(label, attack, scheme, scheme_label)
        return [(t, g.victims) for t, g in zip(models, self.groups)]


def stop_summary(history: Any) -> StopInfo:
    """How a trained model stopped, from its history (the ``stop`` of its last epoch, see ``attacks.learned``).

    Args:
        history: The model's epochs (``history_``), as dicts.

    Returns:
        ``stopped`` (``converged`` on a plateau, ``budget`` when a budget ran
        out, None when the history does not say: models trained before
        plateau stopping), ``budget`` (``epochs``, ``minutes`` or None),
        ``epochs`` (epochs trained, epoch 0 of a pretrained model not counted)
        and ``best_epoch`` (the kept epoch, None when not recorded).
    """
    entries = [h for h in history or [] if isinstance(h, dict)]
    reason = entries[-1].get("stop") if entries else None
    trained = [h for h in entries if isinstance(h.get("epoch"), int) and h["epoch"] >= 1]
    kept = next((h["epoch"] for h in entries if h.get("kept") is True and isinstance(h.get("epoch"), int)), None)
    info: StopInfo = {"stopped": None, "budget": None, "epochs": len(trained), "best_epoch": kept}
    if reason == "plateau":
        info["stopped"] = "converged"
    elif reason in ("max_epochs", "max_minutes"):
        info["stopped"] = "budget"
        info["budget"] = "epochs" if reason == "max_epochs" else "minutes"
    return info


def trained_on(attack: LearnedAttack, scheme_label: str | None = None) -> str:
    """The settings a learned attack trains under, in words."""
    listed = attack.train_schemes()
    if listed is None:
        return f"the setting attacked ({scheme_label})" if scheme_label else "the setting attacked"
    return "; ".join(f"{n} {', '.join(f'{k}={v}' for k, v in p.items())}" for n, p in listed)


# --------------------------------------------------------------------------- building


def _rows(images: ImageSet, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    return images.images[sl], images.failed[sl]


def _split(subjects: Sequence[str], idx: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole subjects of ``idx`` for validation: about ``fraction`` of the faces."""
    if fraction <= 0 or idx.size == 0:
        return idx, idx[:0]
    names = np.asarray(subjects, dtype=object)[idx]
    order = np.random.default_rng(seed).permutation(sorted(set(names)))
    held: set[str] = set()
    count = 0
    for s in order:
        if count >= fraction * idx.size:
            break
        held.add(s)
        count += int((names == s).sum())
    val = np.isin(names, list(held))
    return idx[~val], idx[val]


def _cap(idx: np.ndarray, max_faces: int | None, seed: int) -> np.ndarray:
    if max_faces is None or idx.size <= max_faces:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, max_faces, replace=False))


def _subset(plain: ImageSet, idx: np.ndarray, name: str) -> ImageSet:
    key = hash_json({"of": plain.key, "idx": hash_array(idx)})
    return ImageSet(name, key, plain.images[idx], plain.failed[idx])


def _dataset_faces(
    lp: LoadedProtocol, engine: Engine, spec: AttackerSpec
) -> tuple[ImageSet, list[str], list[str], str]:
    assert spec.dataset is not None
    ds_spec = spec.dataset
    dataset = DATASETS.get(ds_spec.name).from_params(ds_spec.params)
    loc = ("attacker", "dataset", "root")
    if dataset.generated:
        samples = load_stage(engine, f"attacker:{ds_spec.name}", dataset)
        fingerprint = dataset_fingerprint(samples, {"dataset": ds_spec.name})
    else:
        root = Path(ds_spec.root).expanduser().resolve() if ds_spec.root else None
        try:
            samples = dataset.load(root)
        except DatasetError as exc:
            raise lp.error(loc, str(exc)) from None
        if spec.max_faces is not None and len(samples) > spec.max_faces:
            # Cap before aligning: aligning faces the attacker never uses costs minutes.
            keep = _cap(np.arange(len(samples)), spec.max_faces, spec.seed)
            assert samples.paths is not None
            samples = Samples(
                [samples.ids[i] for i in keep],
                [samples.subjects[i] for i in keep],
                paths=[samples.paths[i] for i in keep],
            )
        fingerprint = dataset_fingerprint(samples, {"root_name": root.name if root else None})
    aligned = align_stage(engine, samples, fingerprint)
    ids = [samples.ids[i] for i in aligned.keep]
    subjects = [samples.subjects[i] for i in aligned.keep]
    plain = ImageSet("attacker", aligned.key, aligned.images, np.zeros(len(ids), bool))
    where = ds_spec.root or ds_spec.name
    desc = f"dataset {ds_spec.name} at {where} ({len(ids)} faces of {len(set(subjects))} subjects)"
    return plain, ids, subjects, desc


# --------------------------------------------------------------------------- identity overlap


def impostor_threshold(top: np.ndarray, n_impostor: int, fmr: float) -> tuple[float, bool]:
    """The threshold that at most ``fmr`` of the impostor scores exceed (strictly).

    Args:
        top: The highest impostor scores: at least ``floor(fmr * n_impostor) + 1`` of them (all will do).
        n_impostor: How many impostor scores there are (> 0).
        fmr: The share of them allowed above the threshold.

    Returns:
        ``(threshold, supported)``: the ``(k + 1)``-th highest score with ``k = floor(fmr * n_impostor)``,
        so that at most ``k`` scores lie above it. With fewer than ``1 / fmr`` impostor scores
        (``k = 0``) it is the largest one, the strictest threshold the data supports, and
        ``supported`` is False.
    """
    k = int(np.floor(fmr * n_impostor + 1e-9))  # 1e-4 * 10_000 must give 1, whatever the rounding
    return float(np.sort(np.asarray(top, np.float64))[::-1][k]), k > 0


def _cross(recognizer: Recognizer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Scores of every row of ``a`` against every row of ``b`` by the recognizer's own ``compare``: (len(a), len(b))."""
    probe = np.repeat(a, len(b), axis=0)
    reference = np.tile(b, (len(a),) + (1,) * (b.ndim - 1))
    return np.asarray(recognizer.compare(probe, reference), np.float64).reshape(len(a), len(b))


def _rows_per_block(features: np.ndarray, n_cols: int) -> int:
    dims = int(np.prod(features.shape[1:])) if features.ndim > 1 else 1
    return max(1, _BLOCK_ELEMENTS // max(1, n_cols * dims))


def _victim_threshold(recognizer: Recognizer, feats: np.ndarray, codes: np.ndarray, fmr: float) -> dict[str, Any]:
    """Threshold at ``fmr`` of every victim-vs-victim non-mated score (each unordered pair once)."""
    n = len(codes)
    n_impostor = (n * n - int((np.bincount(codes) ** 2).sum())) // 2
    if n_impostor == 0:
        return {"threshold": None, "fmr_supported": False, "n_impostor": 0}
    keep = int(np.floor(fmr * n_impostor + 1e-9)) + 1  # only the highest scores set the threshold
    tops = []
    step = _rows_per_block(feats, n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        scores = _cross(recognizer, feats[start:stop], feats[start:])
        upper = np.arange(start, n)[None, :] > np.arange(start, stop)[:, None]
        values = scores[upper & (codes[start:stop, None] != codes[None, start:])]
        if values.size > keep:
            values = np.partition(values, values.size - keep)[values.size - keep :]
        tops.append(values)
    threshold, supported = impostor_threshold(np.concatenate(tops), n_impostor, fmr)
    return {"threshold": threshold, "fmr_supported": supported, "n_impostor": n_impostor}


def find_overlap(
    recognizer: Recognizer | None,
    *,
    victim_features: np.ndarray | None,
    victim_subjects: Sequence[str],
    victim_hashes: Sequence[str],
    attacker_features: np.ndarray | None,
    attacker_subjects: Sequence[str],
    attacker_hashes: Sequence[str],
    fmr: float = OVERLAP_FMR,
) -> dict[str, Any]:
    """Attacker subjects that are victim subjects under another name: by face, or by an identical face.

    A cross-set score is mated-like when it exceeds the threshold at ``fmr`` of
    the victims' own impostor scores (:func:`impostor_threshold`). An attacker
    subject matches a victim subject when the **median** of the scores of all
    its faces against all of theirs is mated-like: one person under two names
    has most such scores mated, while a stranger needs half of them to be
    ``fmr``-rare events, so a single lookalike face or a mislabelled image
    does not drop a subject (the maximum would: with thousands of victim faces,
    some impostor score of almost every face passes a 1e-4 threshold). It also
    matches when one of its aligned faces is byte-identical to a victim's
    (``*_hashes``), whatever the recognizer scores (a weak one might not).

    Args:
        recognizer: Scores faces (None: identical faces only).
        victim_features: Features of the victims' faces (None without a recognizer).
        victim_subjects: Subject of each victim face.
        victim_hashes: Content hash of each victim face.
        attacker_features: Features of the attacker's faces (None without a recognizer).
        attacker_subjects: Subject of each attacker face.
        attacker_hashes: Content hash of each attacker face.
        fmr: The victims' impostor share above the threshold.

    Returns:
        ``fmr``, ``threshold`` (None without a recognizer or victim impostor pair), ``fmr_supported``,
        ``n_impostor`` and ``matches``: per matched attacker subject its best victim subject
        (``attacker_subject``, ``victim_subject``, ``score`` the median, ``n_identical`` faces), by name.
    """
    v_names, v_codes = np.unique(np.asarray(victim_subjects, dtype=str), return_inverse=True)
    a_names, a_codes = np.unique(np.asarray(attacker_subjects, dtype=str), return_inverse=True)
    v_codes, a_codes = v_codes.reshape(-1), a_codes.reshape(-1)
    by_hash = {h: int(c) for h, c in zip(victim_hashes, v_codes)}
    identical: dict[tuple[int, int], int] = {}
    for h, c in zip(attacker_hashes, a_codes):
        if h in by_hash:
            identical[(int(c), by_hash[h])] = identical.get((int(c), by_hash[h]), 0) + 1
    out: dict[str, Any] = {"fmr": fmr, "threshold": None, "fmr_supported": False, "n_impostor": 0}
    candidates = set(identical)
    if recognizer is not None and victim_features is not None and attacker_features is not None and len(v_codes):
        out.update(_victim_threshold(recognizer, victim_features, v_codes, fmr))
    threshold = out["threshold"]
    if threshold is not None:
        assert recognizer is not None and victim_features is not None and attacker_features is not None
        step = _rows_per_block(attacker_features, len(v_codes))
        for start in range(0, len(a_codes), step):
            rows, cols = np.nonzero(
                _cross(recognizer, attacker_features[start : start + step], victim_features) > threshold
            )
            candidates.update(zip(a_codes[start + rows].tolist(), v_codes[cols].tolist()))
    best: dict[int, tuple[tuple[int, float], dict[str, Any]]] = {}
    for a, v in sorted(candidates):
        score = None
        if threshold is not None:
            assert recognizer is not None and victim_features is not None and attacker_features is not None
            score = float(np.median(_cross(recognizer, attacker_features[a_codes == a], victim_features[v_codes == v])))
        n_identical = identical.get((a, v), 0)
        if not n_identical and (score is None or threshold is None or not score > threshold):
            continue
        rank = (n_identical, -np.inf if score is None else score)
        if a not in best or rank > best[a][0]:
            entry = {"attacker_subject": str(a_names[a]), "victim_subject": str(v_names[v])}
            best[a] = (rank, {**entry, "score": score, "n_identical": n_identical})
    out["matches"] = [best[a][1] for a in sorted(best)]
    return out


def _overlap_recognizer(lp: LoadedProtocol) -> Instance | None:
    """The protocol's recognizer instance for the face check (:data:`OVERLAP_RECOGNIZERS`), or None."""
    usable = [i for i in lp.instances("recognizers") if not isinstance(i.component, FittedRecognizer)]
    for name in OVERLAP_RECOGNIZERS:
        for inst in usable:
            if inst.name == name:
                return inst
    return usable[0] if usable else None


def _face_hashes(images: np.ndarray, idx: np.ndarray) -> list[str]:
    """Content hash of each aligned face ``images[i]``, ``i`` in ``idx`` (an identical file aligns identically)."""
    return [hashlib.blake2b(np.ascontiguousarray(images[i]).tobytes(), digest_size=16).hexdigest() for i in idx]


def _check_overlap(
    lp: LoadedProtocol,
    engine: Engine,
    plain: ImageSet,
    victims: np.ndarray,
    subjects: Sequence[str],
    faces: ImageSet,
    attacker_subjects: Sequence[str],
) -> dict[str, Any]:
    """Run :func:`find_overlap` on the victims and the attacker's faces (a cached stage; features by the embed stage)."""
    inst = _overlap_recognizer(lp)
    v_idx = np.flatnonzero(victims)
    v_subjects = [subjects[int(i)] for i in v_idx]
    recognizer: Recognizer | None = None
    v_key = a_key = None
    v_feats = a_feats = None
    if inst is not None:
        assert isinstance(inst.component, Recognizer)
        recognizer = inst.component
        # Keyed like the evaluation's own features of the originals: the run reuses them.
        v_key, v_all = embed_stage(engine, inst.label, recognizer, plain.content(), lambda: plain.images)
        a_key, a_feats = embed_stage(
            engine, f"{inst.label}@attacker", recognizer, faces.content(), lambda: faces.images
        )
        v_feats = v_all[v_idx]

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        found = find_overlap(
            recognizer,
            victim_features=v_feats,
            victim_subjects=v_subjects,
            victim_hashes=_face_hashes(plain.images, v_idx),
            attacker_features=a_feats,
            attacker_subjects=attacker_subjects,
            attacker_hashes=_face_hashes(faces.images, np.arange(len(attacker_subjects))),
        )
        return {}, found

    params = {"fmr": OVERLAP_FMR, "recognizer": inst.label if inst is not None else None}
    inputs = [
        plain.content(),
        faces.content(),
        str(v_key),
        str(a_key),
        hash_json({"victims": v_subjects, "attacker": list(attacker_subjects)}),
    ]
    code = code_version(sys.modules[__name__], *([type(recognizer)] if recognizer is not None else []))
    _, _, found = engine.run("overlap", "attacker overlap", params, inputs, code, compute)
    return {"recognizer": params["recognizer"], **found}


def _apply_overlap(
    lp: LoadedProtocol,
    spec: AttackerSpec,
    overlap: dict[str, Any],
    plain: ImageSet,
    ids: list[str],
    subjects: list[str],
    desc: str,
) -> tuple[ImageSet, list[str], list[str], str]:
    """Log the matched subjects, then drop their faces (``overlap: drop``) or refuse the protocol (``refuse``)."""
    matches = overlap["matches"]
    how = (
        f"median score above {overlap['threshold']:.6g}, the threshold at FMR {overlap['fmr']:g} of the victims' "
        f"{overlap['n_impostor']} impostor scores under {overlap['recognizer']}"
        + ("" if overlap["fmr_supported"] else " (too few for that FMR: their maximum)")
        if overlap["threshold"] is not None
        else "identical faces only (no recognizer to compare faces)"
    )
    log.info("attacker overlap: %d attacker subject(s) match a victim subject (%s)", len(matches), how)
    for m in matches:
        score = "-" if m["score"] is None else f"{m['score']:.6g}"
        log.warning(
            "attacker subject %r matches victim subject %r: score %s, %d identical face(s)",
            m["attacker_subject"],
            m["victim_subject"],
            score,
            m["n_identical"],
        )
    overlap.update(policy=spec.overlap, n_subjects_dropped=0, n_faces_dropped=0)
    if not matches:
        return plain, ids, subjects, desc
    # The example named is the surest match: identical faces first, then the highest score.
    first = max(matches, key=lambda m: (m["n_identical"], -np.inf if m["score"] is None else m["score"]))
    if spec.overlap == "refuse":
        what = f"score {first['score']:.6g}" if first["score"] is not None else ""
        if first["n_identical"]:
            what += (", " if what else "") + f"{first['n_identical']} identical face(s)"
        raise lp.error(
            ("attacker", "overlap"),
            f"{len(matches)} attacker subject(s) match a victim subject by face, e.g. {first['attacker_subject']!r} "
            f"-> {first['victim_subject']!r} ({what}; {how}); overlap: drop drops them",
        )
    dropped = {m["attacker_subject"] for m in matches}
    keep = np.flatnonzero([s not in dropped for s in subjects])
    overlap.update(n_subjects_dropped=len(dropped), n_faces_dropped=len(subjects) - int(keep.size))
    ids, subjects = [ids[i] for i in keep], [subjects[i] for i in keep]
    desc += (
        f"; {len(dropped)} subject(s) ({overlap['n_faces_dropped']} faces) dropped as victims under other names, "
        f"{len(ids)} faces of {len(set(subjects))} subjects left"
    )
    return _subset(plain, keep, "attacker"), ids, subjects, desc


def build_attacker(
    lp: LoadedProtocol,
    engine: Engine,
    plain: ImageSet,
    ids: Sequence[str],
    subjects: Sequence[str],
    folds: np.ndarray | None,
    min_faces: int,
    *,
    evaluated: np.ndarray | None = None,
) -> Attacker:
    """The protocol's attacker: its faces, its training groups, checked against the victims.

    Args:
        lp: The protocol (its ``attacker`` block is set; errors point into it).
        engine: Runs the align stage of a separate attacker dataset.
        plain: The evaluation dataset's usable aligned faces.
        ids: Their sample ids.
        subjects: Their subjects.
        folds: Subject fold of each usable sample (None with a pairs file).
        min_faces: The fewest training faces any declared learned attack accepts.
        evaluated: bool mask of the samples the run evaluates (protects, attacks
            and scores; the test folds'); the models' victim masks are over
            those samples, in order. None: every sample.

    Raises:
        ProtocolError: an attacker dataset that is missing, too small, or shares subjects with the victims.
    """
    spec = lp.model.attacker
    assert spec is not None
    ds = lp.model.dataset
    test = ds.test_folds if ds.test_folds is not None else list(range(ds.folds))
    n = len(ids)
    victims = np.isin(folds, test) if folds is not None else np.ones(n, bool)
    seed = spec.seed
    overlap: dict[str, Any] = {}
    if spec.source == "folds":
        assert folds is not None
        trains: list[tuple[np.ndarray, np.ndarray, int | None]]
        if spec.rotate:
            trains = [(np.flatnonzero(folds != k), folds == k, int(k)) for k in test]
        else:
            trains = [(np.flatnonzero(~victims), victims, None)]
        trains = [(_cap(t, spec.max_faces, seed), v, f) for t, v, f in trains]
        used = np.unique(np.concatenate([t for t, _, _ in trains]))
        faces_plain = _subset(plain, used, "attacker")
        where = {int(g): i for i, g in enumerate(used)}
        groups = []
        for t, v, f in trains:
            local = np.array([where[int(g)] for g in t], np.int64)
            fit, val = _split([subjects[g] for g in used], local, spec.validation, seed)
            groups.append(Group(fit, val, v, f))
        folds_used = sorted({int(folds[g]) for g in used})
        desc = (
            f"{len(used)} faces of {len({subjects[g] for g in used})} subjects from the evaluation dataset's "
            f"folds {folds_used} (subject-disjoint from the victims of each model)"
        )
        faces = AttackerFaces(faces_plain, [ids[g] for g in used], [subjects[g] for g in used], desc)
        loc: tuple[str, ...] = ("attacker", "source")
    else:
        a_plain, a_ids, a_subjects, desc = _dataset_faces(lp, engine, spec)
        shared = set(a_subjects) & {subjects[int(i)] for i in np.flatnonzero(victims)}
        loc = ("attacker", "dataset", "root")
        if shared:
            raise lp.error(
                loc,
                f"shares {len(shared)} subject(s) with the victims (e.g. {min(shared)!r}): "
                "an attacker's faces must be subject-disjoint from the victims'",
            )
        overlap = _check_overlap(lp, engine, plain, victims, subjects, a_plain, a_subjects)
        a_plain, a_ids, a_subjects, desc = _apply_overlap(lp, spec, overlap, a_plain, a_ids, a_subjects, desc)
        fit, val = _split(a_subjects, np.arange(len(a_ids)), spec.validation, seed)
        groups = [Group(fit, val, victims, None)]
        faces = AttackerFaces(a_plain, a_ids, a_subjects, desc)
    for g in groups:
        if g.train.size < min_faces:
            raise lp.error(
                loc,
                f"the attacker has {g.train.size} training face(s) for a model (after validation hold-out); "
                f"the learned attacks need at least {min_faces}",
            )
    log.info("attacker: %s", faces.description)
    victim_subjects = list(subjects)
    if evaluated is not None:
        evaluated = np.asarray(evaluated, bool)
        if any((g.victims & ~evaluated).any() for g in groups):
            raise AssertionError("an attacked sample is outside the evaluated samples")
        groups = [replace(g, victims=g.victims[evaluated]) for g in groups]
        victim_subjects = [s for s, e in zip(subjects, evaluated) if e]
    return Attacker(engine, spec, faces, groups, victim_subjects, overlap if spec.source == "dataset" else None)

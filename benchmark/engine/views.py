"""Evaluation views: which image sets are compared, over which pairs.

An *image set* (:class:`~benchmark.engine.stages.ImageSet`) is a named array
of aligned faces (plain, protected under a key, attacked, legitimately
recovered) with failure-to-acquire flags. A *view* compares image sets over
the dataset's comparisons:

* ``baseline``: plain probe vs plain reference.
* ``preservation``: cancelable schemes compare protected vs protected under
  the same key; encryption schemes compare the legitimately recovered probe
  vs the plain reference.
* ``strength:<attack>``: attack output for a protected probe vs the plain
  reference (an attacker holding a leaked protected database).
* ``linkage:<attack>``: attack output under key A vs under key B (two
  applications); mated = same subject, different samples.

  A recognizer attack (``finetune``) shows its input attack's output to the
  recognizer it fine-tuned (:class:`FineTuned`), which embeds both sides of
  its strength and linkage views; its rows exist for the protocol's
  recognizers it was fine-tuned from.
* ``renewal`` (cancelable schemes): mated pairs compare the old key's probe
  with the re-issued key's reference (a revoked template presented to the
  renewed system); non-mated pairs are the renewed system's own non-mated
  comparisons, which set its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from benchmark.core.cache import hash_json
from benchmark.core.component import (
    Attack,
    KeyedAttack,
    LearnedAttack,
    Protected,
    RecognizerAttack,
    ReconstructionAttack,
    Scheme,
)
from benchmark.core.keys import AppKey, MasterKey
from benchmark.engine.attacker import Attacker
from benchmark.engine.stages import Engine, ImageSet, Trained, attack_stage, protect_stage, recover_stage

__all__ = [
    "ViewPart",
    "View",
    "ViewKind",
    "VIEW_KINDS",
    "AttackInstance",
    "FineTuned",
    "SchemeContext",
    "APP_A",
    "APP_B",
    "APP_RENEWED",
    "key_binding",
    "baseline_view",
    "scheme_views",
]

ViewKind = Literal["baseline", "preservation", "renewal", "strength", "linkage"]
#: The protected view kinds a protocol may select.
VIEW_KINDS: tuple[ViewKind, ...] = ("preservation", "renewal", "strength", "linkage")

# Application ids: two independent applications for linkage, and the
# re-issued application that replaces A for renewal.
APP_A, APP_B, APP_RENEWED = "app-A", "app-B", "app-A-renewed"

# The key-binding label: see key_binding.
_BINDING_LABEL = "d8cb8ddfca32f151"


def key_binding(dataset_fingerprint: str) -> str:
    """The prefix that binds application ids to a dataset (16 hex digits).

    Application keys are ``master.application("<binding>/<app>")``, so the
    same sample id in another dataset (other files, hence another plaintext)
    gets independent keys and no (key, nonce) pair encrypts two plaintexts.
    The binding is a function of the dataset's content fingerprint alone,
    never of the code: a code edit must not change evaluation keys, or every
    result would change with it. Its formula is the one FaceSec 0.1.0 used
    (the alignment stage's cache key), with that version's alignment code
    hash kept as a fixed label, so results of earlier runs reproduce.
    """
    return hash_json({"stage": "align", "params": {}, "inputs": [dataset_fingerprint], "code": _BINDING_LABEL})[:16]


@dataclass
class ViewPart:
    """Comparisons ``mask`` scored as probe from ``probe_set`` vs reference from ``ref_set``."""

    probe_set: ImageSet
    ref_set: ImageSet
    mask: np.ndarray


@dataclass
class FineTuned:
    """The recognizer a :class:`~benchmark.core.component.RecognizerAttack` trained, which scores its views.

    Attributes:
        attack: The attack's label.
        recognizers: Registered recognizers whose rows its rows stand beside.
        models: Each fitted model with the mask of the samples it embeds.
    """

    attack: str
    recognizers: tuple[str, ...]
    models: list[tuple[Trained, np.ndarray]]


@dataclass
class View:
    """One view of one scheme (or the baseline): its parts and what the row reports about it.

    Attributes:
        name: ``baseline``, ``preservation``, ``renewal``, ``strength:<attack>`` or ``linkage:<attack>``.
        kind: The name without its attack.
        scheme: Scheme label (``none`` for the baseline).
        scheme_params: The scheme's protocol parameters.
        attack: Attack label (``none`` when no attack is involved).
        parts: What is compared with what.
        attacked: The attack output of a strength view (quality is measured on it).
        knowledge: What the attacker knows (attacked views).
        reference: True when the attack is the keyless reference decode (:attr:`Attack.reference`).
        model: The fine-tuned recognizer that scores this view instead of the
            row's recognizer (recognizer attacks; their rows exist only for
            the recognizers it was fine-tuned from).
        protected: The scheme's protected samples (key A) when they are
            images (cancelable schemes), for the report's examples; None for
            encrypted codestreams, which a decoder shows as the naive attack does.
        key_known: True when the attacker holds the victim's key (a
            :class:`~benchmark.core.component.KeyedAttack`, the stolen-token scenario).
    """

    name: str
    kind: ViewKind
    scheme: str
    scheme_params: dict
    attack: str
    parts: list[ViewPart]
    attacked: ImageSet | None = None
    knowledge: str | None = None
    reference: bool = False
    model: FineTuned | None = None
    protected: ImageSet | None = None
    key_known: bool = False


@dataclass
class AttackInstance:
    """An attack of the protocol: its label and validated component."""

    label: str
    component: Attack


@dataclass
class SchemeContext:
    """What the views of one scheme instance need."""

    engine: Engine
    label: str
    scheme: Scheme
    scheme_params: dict
    attacks: Sequence[AttackInstance]
    master_key: MasterKey
    binding: str
    plain: ImageSet
    ids: Sequence[str]
    subjects: Sequence[str]
    mated: np.ndarray
    kinds: frozenset[str] = field(default_factory=lambda: frozenset(VIEW_KINDS))
    attacker: Attacker | None = None

    def app_key(self, app: str) -> AppKey:
        """The key of application ``app`` (bound to the dataset, see :func:`key_binding`)."""
        return self.master_key.application(f"{self.binding}/{app}")

    def attacked(self, inst: AttackInstance, app: str, protected_key: str, protected: Protected) -> ImageSet:
        """What an attack makes of the samples protected for ``app``.

        A learned attack runs its input attack (the same cached stage as that
        attack's own views); a reconstruction attack then runs the models the
        attacker trained, while a recognizer attack shows the input attack's
        output to its fine-tuned recognizer (:meth:`fine_tuned`).
        """
        label = f"{self.label}@{app}:{inst.label}"
        attack = inst.component
        if not isinstance(attack, LearnedAttack):
            return self._attack_stage(label, attack, app, protected_key, protected)
        first = attack.input_attack()
        inputs = self._attack_stage(f"{self.label}@{app}:{first.registry_name}", first, app, protected_key, protected)
        if isinstance(attack, RecognizerAttack):
            return inputs
        assert isinstance(attack, ReconstructionAttack)
        assert self.attacker is not None, "protocol validation requires an attacker for learned attacks"
        return self.attacker.attacked(inst.label, attack, self.scheme, self.label, inputs, label)

    def _attack_stage(self, label: str, attack: Attack, app: str, protected_key: str, protected: Protected) -> ImageSet:
        """:func:`attack_stage`, handing a key-knowing attack the key of ``app`` (the victim's, as protected)."""
        victim = None
        if isinstance(attack, KeyedAttack):
            victim = (self.app_key(app), self.ids, self.subjects)
        return attack_stage(self.engine, label, attack, self.scheme, protected_key, protected, victim)

    def fine_tuned(self, inst: AttackInstance) -> FineTuned | None:
        """The recognizer a recognizer attack trained for this scheme (None for other attacks)."""
        attack = inst.component
        if not isinstance(attack, RecognizerAttack):
            return None
        assert self.attacker is not None, "protocol validation requires an attacker for learned attacks"
        models = self.attacker.recognizers(inst.label, attack, self.scheme, self.label)
        return FineTuned(inst.label, type(attack).recognizers, models)

    def knowledge(self, inst: AttackInstance) -> str:
        """What the attacker of ``inst`` knows (with the declared attacker's training data for learned attacks)."""
        if isinstance(inst.component, LearnedAttack) and self.attacker is not None:
            return self.attacker.knowledge(inst.component)
        return inst.component.describe_knowledge()


def baseline_view(plain: ImageSet, n: int) -> View:
    """Plain probe vs plain reference over all ``n`` comparisons."""
    return View("baseline", "baseline", "none", {}, "none", [ViewPart(plain, plain, np.ones(n, bool))])


def _protected_images(engine: Engine, name: str, key: str, protected: object) -> ImageSet:
    return ImageSet.stored(engine, "protect", name, key, {"images": np.asarray(protected, np.uint8)})


def scheme_views(ctx: SchemeContext) -> list[View]:
    """Preservation, strength, linkage and renewal views of one scheme."""
    e, s, lbl, kinds = ctx.engine, ctx.scheme, ctx.label, ctx.kinds
    apps = [APP_A]
    if "linkage" in kinds:
        apps.append(APP_B)
    if "renewal" in kinds and s.domain == "cancelable":
        apps.append(APP_RENEWED)
    keys = {app: ctx.app_key(app) for app in apps}
    prot = {app: protect_stage(e, lbl, s, keys[app], ctx.plain, ctx.ids, ctx.subjects) for app in apps}
    every = np.ones(ctx.mated.size, bool)
    views: list[View] = []
    shown_protected = _protected_images(e, f"{lbl}@{APP_A}", *prot[APP_A]) if s.domain == "cancelable" else None

    def view(
        name: str,
        kind: ViewKind,
        attack: str,
        parts: list[ViewPart],
        attacked: ImageSet | None = None,
        inst: AttackInstance | None = None,
    ) -> View:
        knowledge = ctx.knowledge(inst) if inst else None
        reference = type(inst.component).reference if inst else False
        model = ctx.fine_tuned(inst) if inst else None
        # A recognizer attack's images are its input attack's: quality and
        # examples are that attack's rows, not repeated here.
        shown = attacked if model is None else None
        key_known = inst.component.key_known() if inst else False
        return View(
            name,
            kind,
            lbl,
            ctx.scheme_params,
            attack,
            parts,
            shown,
            knowledge,
            reference,
            model,
            shown_protected,
            key_known,
        )

    if s.domain == "cancelable":
        assert shown_protected is not None
        a = shown_protected
        if "preservation" in kinds:
            views.append(view("preservation", "preservation", "none", [ViewPart(a, a, every)]))
        if "renewal" in kinds:
            r = _protected_images(e, f"{lbl}@{APP_RENEWED}", *prot[APP_RENEWED])
            views.append(view("renewal", "renewal", "none", [ViewPart(a, r, ctx.mated), ViewPart(r, r, ~ctx.mated)]))
    elif "preservation" in kinds:
        rec = recover_stage(e, f"{lbl}@{APP_A}:recovered", s, keys[APP_A], *prot[APP_A], ctx.ids, ctx.subjects)
        views.append(view("preservation", "preservation", "none", [ViewPart(rec, ctx.plain, every)]))
    for inst in ctx.attacks:
        att = {app: ctx.attacked(inst, app, *prot[app]) for app in apps if app != APP_RENEWED}
        if "strength" in kinds:
            parts = [ViewPart(att[APP_A], ctx.plain, every)]
            views.append(view(f"strength:{inst.label}", "strength", inst.label, parts, att[APP_A], inst))
        if "linkage" in kinds:
            parts = [ViewPart(att[APP_A], att[APP_B], every)]
            views.append(view(f"linkage:{inst.label}", "linkage", inst.label, parts, None, inst))
    return views

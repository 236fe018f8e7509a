"""What the learned attacks share: the keyless input attack they start from, the settings they train under,
common parameters, when to stop.

No attack is registered here; the module sits in ``attacks/`` because it
looks attacks up in the registry, which the core base classes must not import.

When to stop (:class:`Stopping`): a learned attack trains until its
validation score has not improved for ``patience`` epochs (a plateau:
``converged``), or until a budget runs out: ``max_epochs`` epochs or
``max_minutes`` minutes of wall-clock time (``budget``). An improvement is
a score below the best one by more than ``min_delta`` (a fraction of it with
``min_delta_mode: relative``, an amount with ``absolute``); slow progress
that adds up to ``min_delta`` over several epochs counts, since the score is
compared with the last significant best, not with the previous epoch. Every
``lr_patience`` flat epochs the learning rate is halved first. Without
validation data there is no plateau: the budget stops training and the
model is marked ``budget``. An epochs budget is reproducible bit for bit; a
minutes budget depends on the machine (and its load), so a model stopped by
it is not.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

from benchmark.core.component import (
    Attack,
    Constraint,
    InstanceOf,
    Interval,
    LearnedAttack,
    Nullable,
    Options,
    ParamError,
)
from benchmark.core.registry import ATTACKS, SCHEMES, UnknownComponentError

__all__ = [
    "DEFAULT_INPUT",
    "LEARNING_CONSTRAINTS",
    "STOP_REASONS",
    "Stopping",
    "check_budget",
    "check_train_on",
    "input_attack_named",
    "learned_label",
    "listed_settings",
]

#: The input attack of a learned attack by default; any other input is named in its label.
DEFAULT_INPUT = "naive"

# Defaults of the stopping parameters every learned attack has (one place, so that the attacks cannot drift
# apart): a plateau of 4 epochs under 1 % relative gain, the rate halved after 2 flat epochs, within 60
# epochs and 15 minutes (a converged model on 2 CPU cores, see the README).
DEFAULT_MAX_EPOCHS = 60
DEFAULT_MAX_MINUTES = 15.0
DEFAULT_PATIENCE = 4
DEFAULT_MIN_DELTA = 0.01
DEFAULT_MIN_DELTA_MODE = "relative"
DEFAULT_LR_PATIENCE = 2

#: Constraints of the parameters every learned attack has (merged into each one's ``_constraints``).
LEARNING_CONSTRAINTS: dict[str, Constraint] = {
    "input": InstanceOf((str,)),
    "max_epochs": Interval(int, 1, 10_000),
    "max_minutes": Nullable(Interval(float, 0, 10_000, closed="right")),
    "patience": Interval(int, 1, 10_000),
    "min_delta": Interval(float, 0, None),
    "min_delta_mode": Options(("relative", "absolute")),
    "lr_patience": Nullable(Interval(int, 1, 10_000)),
    # Deprecated alias of ``max_epochs`` (protocols written before plateau stopping).
    "epochs": Nullable(Interval(int, 1, 10_000)),
    "learning_rate": Interval(float, 0, 1, closed="right"),
    "seed": Interval(int, 0, 2**32 - 1),
    "device": Options(("auto", "cpu", "cuda")),
}


#: Why training stopped, as the last epoch of a history records it (``stop``): a plateau or a budget.
STOP_REASONS = ("plateau", "max_epochs", "max_minutes")


def check_budget(attack: Any) -> None:
    """Cross-checks of the stopping parameters (a learned attack's ``_validate_extra``).

    Raises:
        ParamError: ``epochs`` (deprecated) given beside a non-default ``max_epochs``,
            or a relative ``min_delta`` of 1 or more (no score could ever improve).
    """
    if attack.epochs is not None:
        if attack.max_epochs != type(attack).param_defaults()["max_epochs"]:
            raise ParamError("epochs", attack.epochs, "is a deprecated alias of max_epochs: give max_epochs only")
        warnings.warn(
            f"{attack.registry_name}: 'epochs' is deprecated, use 'max_epochs' (training may now stop earlier "
            "on a validation plateau)",
            FutureWarning,
            stacklevel=2,
        )
    if attack.min_delta_mode == "relative" and attack.min_delta >= 1:
        raise ParamError("min_delta", attack.min_delta, "is a fraction of the best score: below 1 when relative")


class Stopping:
    """When a learned attack's training loop stops: a validation plateau, or a budget in epochs or minutes.

    The clock starts at ``started`` (so a fit's set-up, such as a frozen
    trunk's pass, counts against ``max_minutes``). Call :meth:`step` after every
    epoch; it halves the learning rate of ``optimiser`` every
    ``lr_patience`` flat epochs and says whether to stop, and :attr:`reason`
    then says why (one of :data:`STOP_REASONS`).

    Args:
        attack: The learned attack (its ``max_epochs``, ``epochs``,
            ``max_minutes``, ``patience``, ``min_delta``, ``min_delta_mode``
            and ``lr_patience``).
        optimiser: A torch optimiser (its parameter groups' ``lr``), or None.
        start: The validation score before training (a pretrained model's),
            if any: later epochs must improve on it.
        started: ``time.perf_counter()`` when the fit began (default: now).
    """

    def __init__(
        self, attack: Any, optimiser: Any = None, start: float | None = None, started: float | None = None
    ) -> None:
        self.max_epochs: int = attack.epochs if attack.epochs is not None else attack.max_epochs
        self.max_minutes: float | None = attack.max_minutes
        self.patience: int = attack.patience
        self.min_delta: float = attack.min_delta
        self.relative: bool = attack.min_delta_mode == "relative"
        self.lr_patience: int | None = attack.lr_patience
        self.optimiser = optimiser
        self.best = math.inf if start is None else float(start)
        self.flat = 0
        self.reason: str | None = None
        self.started = time.perf_counter() if started is None else started

    def lr(self) -> float | None:
        """The learning rate of the optimiser's first parameter group (None without one)."""
        return None if self.optimiser is None else float(self.optimiser.param_groups[0]["lr"])

    def _improves(self, score: float) -> bool:
        if not math.isfinite(self.best):
            return True
        margin = self.min_delta * abs(self.best) if self.relative else self.min_delta
        return score < self.best - margin

    def step(self, epoch: int, score: float | None) -> bool:
        """Record epoch ``epoch``'s validation score (None without validation); True to stop after it."""
        if score is not None:
            if self._improves(score):
                self.best, self.flat = score, 0
            else:
                self.flat += 1
        if score is not None and self.flat >= self.patience:
            self.reason = "plateau"
        elif epoch >= self.max_epochs:
            self.reason = "max_epochs"
        elif self.max_minutes is not None and time.perf_counter() - self.started >= 60.0 * self.max_minutes:
            self.reason = "max_minutes"
        elif self.lr_patience is not None and self.flat and self.flat % self.lr_patience == 0:
            # A plateau at this step size may not be one at a smaller step.
            for group in self.optimiser.param_groups if self.optimiser is not None else []:
                group["lr"] *= 0.5
        return self.reason is not None


def input_attack_named(name: str) -> Attack:
    """The registered attack ``name`` with its default parameters (a learned attack's ``input``).

    A keyless attack (``naive``, ``conceal-codeblock``), or a key-knowing one
    (``invert``): the learned attack then holds the victim's key too, and
    the attacker trains on its own faces under keys it knows.

    Raises:
        ParamError: ``name`` is not registered, or names a learned attack.
    """
    try:
        cls = ATTACKS.get(name)
    except UnknownComponentError as exc:
        raise ParamError("input", name, f"is not a registered attack ({exc})") from None
    if issubclass(cls, LearnedAttack):
        raise ParamError("input", name, "is a learned attack; the input must be an attack that learns nothing")
    return cls.from_params({})


def check_train_on(train_on: list[dict[str, Any]] | None, input_name: str) -> None:
    """Check a ``train_on`` list: ``{name: <scheme>, params: {...}}`` settings the input attack can attack.

    Raises:
        ParamError: Located at the offending entry (``train_on.1.params.offset``).
    """
    if train_on is None:
        return
    if not train_on:
        raise ParamError("train_on", train_on, "is empty: list scheme settings, or leave it out")
    first = input_attack_named(input_name)
    for i, entry in enumerate(train_on):
        where = f"train_on.{i}"
        if not isinstance(entry, dict) or set(entry) - {"name", "params"} or "name" not in entry:
            raise ParamError(where, entry, "is not a {name: <scheme>, params: {...}} mapping")
        try:
            scheme_cls = SCHEMES.get(entry["name"])
        except (UnknownComponentError, TypeError) as exc:
            raise ParamError(f"{where}.name", entry["name"], f"is not a registered scheme ({exc})") from None
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise ParamError(f"{where}.params", params, "is not a mapping")
        try:
            scheme = scheme_cls.from_params(params)
        except ParamError as exc:
            raise ParamError(f"{where}.params.{exc.param}", exc.value, exc.allowed) from None
        problem = first.incompatibility(scheme)
        if problem is not None:
            raise ParamError(where, entry["name"], f"cannot be attacked by input {input_name}: {problem}")


def listed_settings(train_on: list[dict[str, Any]] | None) -> list[tuple[str, dict[str, Any]]] | None:
    """A checked ``train_on`` as (scheme name, parameters) pairs; None when not listed (``train_schemes``)."""
    if train_on is None:
        return None
    return [(e["name"], dict(e.get("params") or {})) for e in train_on]


def learned_label(attack: LearnedAttack) -> str:
    """The name, a non-default input in parentheses, listed settings in brackets: ``inpaint(conceal-codeblock)[lw4o6]``.

    The input is part of the name because a chain is another attack: two
    entries that differ in their input sit side by side in one protocol, and
    reports, score files and the leaderboard tell them apart by this label.
    """
    out = attack.registry_name
    if attack.input != DEFAULT_INPUT:
        out += f"({attack.input})"
    listed = attack.train_schemes()
    if listed:
        names = [SCHEMES.get(name).from_params(params).label() or name for name, params in listed]
        out += f"[{','.join(names)}]"
    return out

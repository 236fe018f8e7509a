"""What the learned attacks share: the keyless input attack they start from, the settings they train under.

No attack is registered here; the module sits in ``attacks/`` because it
looks attacks up in the registry, which the core base classes must not import.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.component import Attack, Constraint, InstanceOf, Interval, LearnedAttack, Options, ParamError
from benchmark.core.registry import ATTACKS, SCHEMES, UnknownComponentError

__all__ = [
    "DEFAULT_INPUT",
    "LEARNING_CONSTRAINTS",
    "check_train_on",
    "keyless_input",
    "learned_label",
    "listed_settings",
]

#: The input attack of a learned attack by default; any other input is named in its label.
DEFAULT_INPUT = "naive"

#: Constraints of the parameters every learned attack has (merged into each one's ``_constraints``).
LEARNING_CONSTRAINTS: dict[str, Constraint] = {
    "input": InstanceOf((str,)),
    "epochs": Interval(int, 1, 10_000),
    "learning_rate": Interval(float, 0, 1, closed="right"),
    "seed": Interval(int, 0, 2**32 - 1),
    "device": Options(("auto", "cpu", "cuda")),
}


def keyless_input(name: str) -> Attack:
    """The registered keyless attack ``name`` with its default parameters (a learned attack's ``input``).

    Raises:
        ParamError: ``name`` is not registered, or names a learned attack.
    """
    try:
        cls = ATTACKS.get(name)
    except UnknownComponentError as exc:
        raise ParamError("input", name, f"is not a registered attack ({exc})") from None
    if issubclass(cls, LearnedAttack):
        raise ParamError("input", name, "is a learned attack; the input must be a keyless attack")
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
    first = keyless_input(input_name)
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

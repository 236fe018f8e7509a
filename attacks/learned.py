"""What the learned attacks share: the keyless input attack they start from and common parameters.

No attack is registered here; the module sits in ``attacks/`` because it
looks attacks up in the registry, which the core base classes must not import.
"""

from __future__ import annotations

from benchmark.core.component import Attack, Constraint, InstanceOf, Interval, LearnedAttack, Options, ParamError
from benchmark.core.registry import ATTACKS, UnknownComponentError

__all__ = ["LEARNING_CONSTRAINTS", "keyless_input"]

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

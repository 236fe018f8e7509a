"""The keyless input attack that learned attacks start from."""

from __future__ import annotations

import pytest

from attacks.learned import keyless_input
from benchmark.core.component import LearnedAttack, ParamError


def test_a_keyless_attack_is_built_with_its_defaults():
    attack = keyless_input("conceal-codeblock")
    assert attack.registry_name == "conceal-codeblock" and not isinstance(attack, LearnedAttack)


@pytest.mark.parametrize(
    ("name", "what"), [("inpaint", "learned attack"), ("finetune", "learned attack"), ("x", "not a registered")]
)
def test_learned_or_unknown_inputs_are_refused(name, what):
    with pytest.raises(ParamError) as err:
        keyless_input(name)
    assert err.value.param == "input" and what in str(err.value)

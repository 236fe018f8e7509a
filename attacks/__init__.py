"""Attacks on protected samples: every module here registers its attacks with ``@ATTACKS.register``.

The registry imports each module of this package on first lookup, so a new
attack is one new module (see the README, "Adding an attack").
"""

__all__: list[str] = []

"""Protection schemes: every module here registers its schemes with ``@SCHEMES.register``.

The registry imports each module of this package on first lookup, so a new
scheme is one new module (see the README, "Adding a scheme").
"""

__all__: list[str] = []

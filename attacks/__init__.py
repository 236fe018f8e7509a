"""Attacks on protected samples. Importing this package registers the built-in attacks."""

from . import naive  # noqa: F401  (registers 'naive')
from . import conceal  # noqa: F401  (registers 'conceal-packet', 'conceal-codeblock')
from . import conceal_jpeg  # noqa: F401  (registers 'conceal-mcu')

__all__: list[str] = []

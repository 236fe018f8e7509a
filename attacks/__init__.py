"""Attacks on protected samples. Importing this package registers the built-in attacks."""

from . import naive  # noqa: F401  (registers 'naive')

__all__: list[str] = []

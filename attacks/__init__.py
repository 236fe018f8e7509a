"""Attacks on protected samples. Importing this package registers the built-in attacks."""

__all__: list[str] = []

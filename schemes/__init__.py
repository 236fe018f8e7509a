"""Protection schemes. Importing this package registers the built-in schemes."""

from . import j2k, noise  # noqa: F401  (registers 'j2k', 'jpeg', 'noise')

__all__: list[str] = []

"""Protection schemes. Importing this package registers the built-in schemes."""

from . import noise  # noqa: F401  (registers 'noise')

__all__: list[str] = []

"""Protection schemes. Importing this package registers the built-in schemes."""

from . import j2k, noise  # noqa: F401  (registers 'j2k', 'jpeg', 'noise')
from . import warp  # noqa: F401  (registers 'warp', the 'warp_B_D' presets and 'remap')

__all__: list[str] = []

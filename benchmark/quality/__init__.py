"""Offline face-quality measures (registered in :data:`benchmark.core.registry.QUALITY`)."""

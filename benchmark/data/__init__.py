"""Face data: datasets, image reading, detection and alignment, comparison lists, model files."""

__all__: list[str] = []

"""Protection schemes. Importing this package registers the built-in schemes."""

__all__: list[str] = []

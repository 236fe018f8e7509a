"""The harness: protocols, stages and their cache, views, per-row evaluation, score files and results."""

__all__: list[str] = []

"""Built-in face recognizers (feature extractors with a comparison score).

Each module registers its recognizers with
``@benchmark.core.registry.RECOGNIZERS.register(name)``; look them up through the
registry rather than importing classes from here.
"""

__all__: list[str] = []

"""Built-in datasets (the embedded synthetic faces and on-disk folders).

Each module registers its datasets with
``@benchmark.core.registry.DATASETS.register(name)``; look them up through the
registry rather than importing classes from here.
"""

__all__: list[str] = []

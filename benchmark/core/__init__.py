"""The lowest layer: component contracts, the registry, keys, the stage cache and the process pool.

Every other package builds on these modules; they import nothing else from the project.
"""

__all__: list[str] = []

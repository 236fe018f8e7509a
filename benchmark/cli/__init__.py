"""Command-line tools: ``facesec run/validate/list/doctor/cache/perf/protect/unprotect``."""

__all__: list[str] = []

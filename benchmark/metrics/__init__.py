"""Statistics of score sets: verification rates, unlinkability, irreversibility, bootstrap CIs, verdicts."""

__all__: list[str] = []

"""The page's dataset and provenance sections: what was evaluated, and how the run can be traced.

Only documented fields are rendered: an unexpected field of a results file
(a key, a token) never reaches the page, and sub-dicts are filtered for
anything key-like as a defence in depth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reports.formatting import DASH, format_metric

__all__ = ["dataset_context", "provenance_context"]

# Defence in depth for provenance sub-dicts: never print anything key-like.
_SECRET_RE = re.compile(r"key|secret|password|passwd|token|credential", re.IGNORECASE)


def dataset_context(dataset: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset section's context.

    Args:
        dataset: ``results["dataset"]``.

    Returns:
        ``{"demo", "summary", "n_skipped", "skipped"}``: ``summary`` holds
        ``(label, text)`` pairs, ``skipped`` one ``{"id", "reason"}`` per
        image left out.
    """
    skipped = [{"id": str(s.get("id", "")), "reason": str(s.get("reason", ""))} for s in dataset.get("skipped") or []]
    folds = dataset.get("folds")
    test_folds = dataset.get("test_folds")
    summary = [
        ("Dataset", str(dataset.get("name", ""))),
        ("Root", str(dataset["root"]) if dataset.get("root") else DASH),
        ("Samples", format_metric("n_samples", dataset.get("n_samples"))),
        ("Subjects", format_metric("n_subjects", dataset.get("n_subjects"))),
        *_alignment_rows(dataset),
        ("Folds", DASH if folds is None else str(folds)),
        ("Test folds", DASH if not test_folds else ", ".join(map(str, test_folds))),
        ("Seed", DASH if dataset.get("seed") is None else str(dataset["seed"])),
    ]
    n_skipped = dataset.get("n_skipped", len(skipped))
    return {
        "demo": bool(dataset.get("demo", False)),
        "summary": summary,
        "n_skipped": format_metric("n_skipped", n_skipped),
        "skipped": skipped,
    }


def _alignment_rows(dataset: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How faces were found: detection counts, or why there are none (the images came aligned)."""
    if dataset.get("pre_aligned"):
        what = "pre-aligned demo faces" if dataset.get("demo") else "pre-aligned faces"
        return [("Face detection", f"not applicable ({what})")]
    return [
        ("Faces detected", format_metric("n_detected", dataset.get("n_detected"))),
        ("Fallback centre crops", format_metric("n_fallback_crop", dataset.get("n_fallback_crop"))),
    ]


def _safe_items(mapping: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in sorted((mapping or {}).items()) if not _SECRET_RE.search(str(k))]


def _key_text(key: Mapping[str, Any] | None) -> str | None:
    """How the run was keyed, from the key block (a fingerprint and a source, never key material)."""
    if not key:
        return None
    source = key.get("source")
    if source == "seed":
        return (
            f"evaluation key derived from the protocol seed {key.get('seed')} (id {key.get('key_id')}): public, "
            "for reproducible evaluation only, never for protecting real data"
        )
    if source == "random" or key.get("key_id") == "ephemeral":
        return "a random key drawn for this run (ephemeral: not reproducible)"
    where = {"file": "a key file", "env": "an environment variable"}.get(str(source), "a key")
    return f"master key from {where} (id {key.get('key_id')})"


def provenance_context(prov: Mapping[str, Any], schema_version: Any) -> dict[str, Any]:
    """The provenance section's context.

    Only documented fields are rendered: an unexpected field (a key, a
    token) in provenance never reaches the page.

    Args:
        prov: ``results["provenance"]``.
        schema_version: ``results["schema_version"]``.

    Returns:
        ``{"fields", "seeds", "components"}``, each a list of ``(name, text)`` pairs.
    """
    cache = prov.get("cache") or {}
    fields = [
        ("Keys", _key_text(prov.get("key"))),
        ("FaceSec version", prov.get("facesec_version")),
        ("Git commit", prov.get("git_commit")),
        ("Python", prov.get("python")),
        ("Created", prov.get("created")),
        ("Protocol SHA-256", prov.get("protocol_sha256")),
        ("Dataset fingerprint", prov.get("dataset_fingerprint")),
        ("Cache hits / misses", f"{cache.get('hits', DASH)} / {cache.get('misses', DASH)}" if cache else None),
        ("Results schema", schema_version),
    ]
    return {
        "fields": [(name, DASH if v is None else str(v)) for name, v in fields],
        "seeds": _safe_items(prov.get("seeds")),
        "components": _safe_items(prov.get("components")),
    }

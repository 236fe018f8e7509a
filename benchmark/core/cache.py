"""Content-addressed cache of stage results, with atomic writes.

A result is stored under a key that hashes the stage name, its parameters, the
hashes of its inputs and the *code version* of the stage
(:func:`benchmark.core.codeversion.code_version`: every project module the
stage and its component can run), so an edited algorithm never reuses a stale
result (the failure mode of plain checkpointing, which keys only on names).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Cache",
    "default_cache_dir",
    "hash_json",
    "hash_array",
    "hash_file",
    "atomic_write_bytes",
    "atomic_write_text",
]


def default_cache_dir() -> Path:
    """``$FACESEC_CACHE``, else ``$XDG_CACHE_HOME/facesec``, else ``~/.cache/facesec``."""
    env = os.environ.get("FACESEC_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "facesec"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not hashable as JSON: {type(obj).__name__}")


def hash_json(obj: Any) -> str:
    """SHA-256 of the canonical JSON form of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_array(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.data.cast("B"))
    return h.hexdigest()


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the only way is to set it and put it back (not thread-safe, so last).
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes, *, shared: bool = False) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and rename.

    Args:
        path: The destination.
        data: The bytes.
        shared: Give the file the mode a plain ``open()`` would (0666 less the
            umask): for outputs people share (results, scores, reports). By
            default the file stays owner-only, as ``mkstemp`` creates it, which
            suits the cache and anything derived from keys.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if shared:
                os.fchmod(fh.fileno(), 0o666 & ~_current_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, shared: bool = False) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), shared=shared)


class Cache:
    """Stage-result store: ``<root>/<stage>/<key>.npz`` plus a JSON sidecar.

    Artifacts are dicts of numpy arrays (numbers stay numbers) and a JSON
    ``meta`` dict. ``enabled=False`` turns it into a pass-through.
    """

    def __init__(self, root: Path | None = None, *, enabled: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits: list[str] = []
        self.misses: list[str] = []

    @staticmethod
    def key(stage: str, params: Any, inputs: list[str], code_version: str) -> str:
        return hash_json({"stage": stage, "params": params, "inputs": inputs, "code": code_version})

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.npz"

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        if not self.enabled:
            return None
        path = self._path(stage, key)
        meta_path = path.with_suffix(".json")
        if not (path.exists() and meta_path.exists()):
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError, json.JSONDecodeError):
            return None  # a damaged entry is recomputed, never trusted
        return arrays, meta

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
        if not self.enabled:
            return
        path = self._path(stage, key)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        # The array file goes first: an entry counts only once its JSON exists.
        atomic_write_bytes(path, buf.getvalue())
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, sort_keys=True))

    def clear(self) -> int:
        """Remove every entry; returns the number of stage folders removed."""
        if not self.root.exists():
            return 0
        count = 0
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
                count += 1
            else:
                child.unlink()
        return count

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
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("facesec.cache")

#: File name ending of a cache entry.
ENTRY_SUFFIX = ".entry"
# An entry's trailer: the stage and key it answers, their length (4 bytes), the
# SHA-256 of length, stage, key and npz bytes, then a format tag. Binding the
# digest to the stage and key makes a moved or swapped entry fail like a damaged
# one; FSC1 entries (digest of the npz bytes alone) are never trusted.
_TAG = b"FSC2"
_OLD_TAGS = (b"FSC1",)
_TRAILER = 4 + 32 + len(_TAG)
_META = "__meta__"
#: Seconds after which a temp file of an unfinished write is a leftover (its writer died), never a write in flight.
TEMP_GRACE = 86400.0

__all__ = [
    "Cache",
    "StoredEntry",
    "Usage",
    "tally",
    "ENTRY_SUFFIX",
    "TEMP_GRACE",
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


def _binding(stage: str, key: str) -> bytes:
    """What an entry answers: ``<stage>/<key>`` (both come from the code, never from a file)."""
    return f"{stage}/{key}".encode()


def _digest(bound: bytes, body: bytes) -> bytes:
    # The binding's length first, so no split of bound + body can pass for another.
    return hashlib.sha256(len(bound).to_bytes(4, "big") + bound + body).digest()


@dataclass(frozen=True)
class StoredEntry:
    """A file of the cache: an entry, or a leftover temp file of a write that never finished.

    ``used`` is when the entry was last written or read (:meth:`Cache.load`
    touches what it reads), the later of its access and modification times.
    """

    path: Path
    stage: str
    bytes: int
    used: float


@dataclass(frozen=True)
class Usage:
    """What a stage folder of the cache (or the whole cache) holds."""

    entries: int = 0
    bytes: int = 0
    oldest: float | None = None  # the least recent use, None when empty

    def add(self, entry: StoredEntry) -> Usage:
        oldest = entry.used if self.oldest is None else min(self.oldest, entry.used)
        return Usage(self.entries + 1, self.bytes + entry.bytes, oldest)


def tally(entries: list[StoredEntry]) -> dict[str, Usage]:
    """Entries and bytes per stage, in order of first appearance, and ``"total"`` last."""
    per: dict[str, Usage] = {}
    total = Usage()
    for entry in entries:
        per[entry.stage] = per.get(entry.stage, Usage()).add(entry)
        total = total.add(entry)
    return {**per, "total": total}


class Cache:
    """Stage-result store: one self-checking file ``<root>/<stage>/<key>.entry`` per result.

    Artifacts are dicts of numpy arrays (numbers stay numbers) and a JSON
    ``meta`` dict. An entry is an ``.npz`` holding both, followed by the
    stage and key it answers, the SHA-256 of both and those bytes and a 4-byte
    tag: one file, written atomically, so a run killed mid-write leaves no
    entry or a whole one, and a truncated or bit-flipped entry fails its
    digest and is recomputed, never read as a result; so is an intact entry
    found under another stage or key (moved, copied or swapped), and an entry
    of the older format that did not record its key. ``enabled=False`` turns
    the cache into a pass-through. A cache that cannot be written (a
    read-only folder, a file where a folder belongs, a full disk) costs the
    run its caching, never its result: the first failed write is logged once
    (:attr:`unwritable`) and the run goes on without writing.
    """

    def __init__(self, root: Path | None = None, *, enabled: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.hits: list[str] = []
        self.misses: list[str] = []
        self.damaged: list[Path] = []
        #: Why the first write failed (None while writes succeed); nothing is written after it.
        self.unwritable: str | None = None

    @staticmethod
    def key(stage: str, params: Any, inputs: list[str], code_version: str) -> str:
        return hash_json({"stage": stage, "params": params, "inputs": inputs, "code": code_version})

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}{ENTRY_SUFFIX}"

    def has(self, stage: str, key: str) -> bool:
        """Whether an entry of ``(stage, key)`` is stored (unverified: :meth:`load` checks it)."""
        return self.enabled and self._path(stage, key).is_file()

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """The entry of ``(stage, key)``, or None when absent or damaged (then recomputed)."""
        if not self.enabled:
            return None
        path = self._path(stage, key)
        try:
            blob = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # absent, or a file stands where its folder belongs
            return None
        except OSError as exc:
            self._damaged(path, f"unreadable ({exc.strerror or type(exc).__name__})")
            return None
        tag = blob[-len(_TAG) :]
        if len(blob) >= _TRAILER and tag in _OLD_TAGS:
            # Written before entries were bound to their key: nothing proves it answers this one.
            log.info("cache entry %s is of an older format (not bound to its key): recomputing it", path)
            return None
        size = int.from_bytes(blob[-_TRAILER : -_TRAILER + 4], "big") if len(blob) >= _TRAILER else -1
        if tag != _TAG or not 0 <= size <= len(blob) - _TRAILER:
            self._damaged(path, "truncated or corrupt (no valid trailer)")
            return None
        end = len(blob) - _TRAILER
        body, bound = blob[: end - size], blob[end - size : end]
        if _digest(bound, body) != blob[end + 4 : end + 36]:
            self._damaged(path, "truncated or corrupt (digest mismatch)")
            return None
        if bound != _binding(stage, key):
            # Intact, but the answer to another question: moved, copied or swapped.
            self._damaged(path, f"holds the entry of {bound[:200].decode('utf-8', 'replace')!r} (moved or swapped)")
            return None
        try:
            with np.load(io.BytesIO(body), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
        except Exception as exc:  # a sound digest over bytes numpy cannot read: another writer's format
            self._damaged(path, f"unreadable ({type(exc).__name__})")
            return None
        try:
            os.utime(path)  # last use, for `facesec cache prune` (atime alone is not updated on relatime mounts)
        except OSError:
            pass  # a read-only cache is still a cache
        return arrays, meta

    def _damaged(self, path: Path, why: str) -> None:
        self.damaged.append(path)
        log.warning("cache entry %s %s: recomputing it", path, why)
        return None

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Store an entry; a cache that cannot be written is warned about once, then left alone."""
        if not self.enabled or self.unwritable is not None:
            return
        if _META in arrays:
            raise ValueError(f"{_META!r} is reserved in cache entries")
        buf = io.BytesIO()
        packed = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
        np.savez(buf, **arrays, **{_META: packed})  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        body = buf.getvalue()
        bound = _binding(stage, key)
        trailer = len(bound).to_bytes(4, "big") + _digest(bound, body) + _TAG
        path = self._path(stage, key)
        try:
            atomic_write_bytes(path, body + bound + trailer)
        except OSError as exc:
            self.unwritable = f"{exc.strerror or type(exc).__name__}: {exc.filename or path}"
            log.warning("cache %s cannot be written (%s): going on without caching", self.root, self.unwritable)

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

    def stored(self) -> list[StoredEntry]:
        """Every entry (and leftover temp file older than :data:`TEMP_GRACE`) under the stage folders.

        One ``os.scandir`` per stage folder, no recursion: a cache of
        thousands of entries lists in milliseconds. Files in flight (young
        temp files) and anything that vanishes meanwhile are left out.
        """
        out: list[StoredEntry] = []
        now = time.time()
        try:
            stages = [d for d in os.scandir(self.root) if d.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return out
        for stage in sorted(stages, key=lambda d: d.name):
            try:
                files = list(os.scandir(stage.path))
            except OSError:
                continue
            for f in files:
                try:
                    st = f.stat(follow_symlinks=False)
                except OSError:
                    continue
                used = max(st.st_atime, st.st_mtime)
                leftover = f.name.endswith(".tmp") and now - st.st_mtime > TEMP_GRACE
                if f.is_file(follow_symlinks=False) and (f.name.endswith(ENTRY_SUFFIX) or leftover):
                    out.append(StoredEntry(Path(f.path), stage.name, st.st_size, used))
        return out

    def usage(self) -> dict[str, Usage]:
        """Entries and bytes per stage folder, in name order, and ``"total"`` last (see :func:`tally`)."""
        return tally(self.stored())

    def prune(
        self, *, older_than: float | None = None, max_bytes: int | None = None, dry_run: bool = False
    ) -> list[StoredEntry]:
        """Remove entries unused for ``older_than`` seconds, then the least recently used until ``max_bytes`` remain.

        Each entry is one self-checking file removed by one ``unlink``: a run
        reading it meanwhile reads it whole (an open file outlives its name)
        or finds it absent and recomputes it, so no half-removed entry can
        pass for a result. Stage folders stay: a run may be creating a file
        in one right now.

        Args:
            older_than: Seconds since last use beyond which an entry goes; None: no age limit.
            max_bytes: The size the cache is brought down to; None: no size limit.
            dry_run: Only say what would go.

        Returns:
            The entries removed (or that would be), least recently used first.
        """
        entries = sorted(self.stored(), key=lambda e: e.used)
        now = time.time()
        doomed = [e for e in entries if older_than is not None and now - e.used > older_than]
        if max_bytes is not None:
            left = sum(e.bytes for e in entries) - sum(e.bytes for e in doomed)
            for e in entries[len(doomed) :]:  # oldest first, after the ones already going
                if left <= max_bytes:
                    break
                doomed.append(e)
                left -= e.bytes
        if not dry_run:
            for e in doomed:
                e.path.unlink(missing_ok=True)
        return doomed

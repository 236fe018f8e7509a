"""Key management: one master key, per-application keys, seeds and nonces.

Keys never come from a protocol (YAML), the command line, logs or reports:
the master key is read from a key file or an environment variable, derived
from a public seed (an *evaluation key*, for reproducible benchmarks only:
anyone who knows the seed has it), or drawn at random for the run
(*ephemeral*). Nothing here puts key bytes in a ``repr``, ``str`` or
exception message; reports carry :attr:`MasterKey.report_id` (a fingerprint,
or ``"ephemeral"``), never the key.

Derivation tree (every step HKDF-SHA256, RFC 5869, no salt since the master
key is already uniformly random; ``info`` strings are prefix-free, so no two
derivations share an input):

* application key = HKDF(master, info = ``b"facesec/app/" + app_id``), 32 bytes.
  Different application ids give independent keys (the ISO/IEC 24745
  unlinkability setting); *renewal* is a new application id.
* :meth:`AppKey.derive`, :meth:`AppKey.seed`, :meth:`AppKey.nonce` =
  HKDF(application key, info = ``b"facesec/v1/" + kind + NUL + len32(app_id)
  + app_id + label``) with ``kind`` one of ``derive``, ``seed``, ``nonce``,
  so a seed never equals a prefix of a derived key with the same label.

Key file format (decided here): either exactly 32 raw bytes, or text holding
64 hexadecimal digits (surrounding whitespace, e.g. a trailing newline, is
ignored). The two cannot be confused: a 64-digit hex text is never 32 bytes
long. Generate one with ``head -c 32 /dev/urandom > facesec.key`` or
``python -c "import secrets; print(secrets.token_hex(32))" > facesec.key``,
then ``chmod 600 facesec.key``.

A key file that group or other users can read or write gives a
:class:`KeyFilePermissionWarning` but is accepted: container secret mounts
(Docker: 0444, Kubernetes: 0644 by default) would otherwise be unusable,
while the warning still flags the common mistake on a shared machine.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import struct
import warnings
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "KeySourceError",
    "looks_like_key",
    "KeyFilePermissionWarning",
    "MasterKey",
    "AppKey",
    "hkdf_sha256",
    "load_master_key",
]

KEY_BYTES = 32
NONCE_BYTES = 16
# Low bytes of every counter block left at zero: AES-CTR increments the whole
# 128-bit block big-endian, so 2**32 blocks (64 GiB) run over one sample
# before a carry could reach the per-sample prefix.
_COUNTER_BYTES = 4
_MAX_KEY_FILE_BYTES = 4096  # a key file is tiny; refuse to slurp anything big
_HASH_LEN = 32
_MAX_HKDF_BYTES = 255 * _HASH_LEN  # RFC 5869 limit for SHA-256


# A run of hex digits as long as half a key: what a pasted key (64 hex digits)
# or a large part of one looks like. Paths and variable names rarely hold one.
_KEY_LIKE = re.compile(r"[0-9A-Fa-f]{32,}")


_HIDDEN = "<hidden: looks like a key>"


def looks_like_key(text: object) -> bool:
    """Whether ``text`` may hold key material (a run of 32 or more hex digits) and must not be echoed.

    Messages that would repeat user input (a ``--set`` value, a field's value)
    show a placeholder instead when this is true: a key pasted where a
    variable's name or a file's path belongs must not reach a terminal or log.

    Args:
        text: Any value; only strings and bytes can look like a key.

    Returns:
        True when the text contains 32 or more consecutive hex digits.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    return isinstance(text, str) and _KEY_LIKE.search(text) is not None


class KeySourceError(KeyError):
    """A key source that cannot be used: one line naming the file or variable.

    The message never contains key material (not even a prefix of it).
    """

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class KeyFilePermissionWarning(UserWarning):
    """A key file that users other than its owner may read or write."""


def hkdf_sha256(key: bytes, info: bytes, length: int = KEY_BYTES, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 (RFC 5869) through ``cryptography``.

    Args:
        key: Input keying material.
        info: Context and application specific information.
        length: Output length in bytes, 1 to 8160.
        salt: Optional salt; None means a string of 32 zero bytes.

    Returns:
        ``length`` bytes of output keying material.
    """
    if not 1 <= length <= _MAX_HKDF_BYTES:
        raise ValueError(f"HKDF output length must be in [1, {_MAX_HKDF_BYTES}], got {length}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def _fingerprint(key: bytes) -> str:
    # A keyed hash with a fixed label: it identifies a key (cache keys,
    # provenance) but reveals nothing usable about it; 64 bits suffice to tell
    # keys apart and do not help an attacker facing a 256-bit key.
    return hmac.new(key, b"facesec/key-id", hashlib.sha256).hexdigest()[:16]


def _parse_key_bytes(raw: bytes, where: str, allow_raw: bool) -> bytes:
    """Key bytes from raw (32 bytes) or hex text (64 digits), else KeySourceError."""
    if allow_raw and len(raw) == KEY_BYTES:
        return raw
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        text = None
    if text is not None and len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    expected = f"{KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex digits" if allow_raw else f"{2 * KEY_BYTES} hex digits"
    # Only the length is reported: anything more could leak part of the key.
    raise KeySourceError(f"{where}: not a key (expected {expected}; found {len(raw)} bytes)")


class MasterKey:
    """The 32-byte master key of a run.

    Build one with :meth:`from_file`, :meth:`from_env`, :meth:`evaluation` or :meth:`random`
    (or :func:`load_master_key`). It pickles (worker processes need it) but
    its ``repr``/``str`` show only the fingerprint, never the bytes.

    Attributes:
        ephemeral: True when drawn at random for this run only.
        source: Where it came from: ``"file"``, ``"env"``, ``"seed"``, ``"ephemeral"``
            or ``"attacker"`` (a simulated attacker's own key).
        seed: The public seed of an evaluation key, else None.
    """

    def __init__(self, key: bytes, *, ephemeral: bool = False, source: str = "bytes", seed: int | None = None):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            # Say nothing about the value: it may be a wrongly sized real key.
            raise KeySourceError(f"a master key must be {KEY_BYTES} bytes")
        self._key = bytes(key)
        self.ephemeral = ephemeral
        self.source = source
        self.seed = seed

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> MasterKey:
        """Read a key file (32 raw bytes or 64 hex digits, see the module docstring).

        Raises:
            KeySourceError: missing, unreadable, too large or malformed file;
                the message names the file, never its content.

        Warns:
            KeyFilePermissionWarning: when group or others have any access.
        """
        p = Path(path).expanduser()
        # A key pasted where its file's path belongs is never repeated.
        shown = _HIDDEN if looks_like_key(str(path)) else str(p)
        try:
            info = p.stat()
            if not stat.S_ISREG(info.st_mode):
                raise KeySourceError(f"{shown}: not a regular file")
            if info.st_size > _MAX_KEY_FILE_BYTES:
                raise KeySourceError(f"{shown}: not a key (found {info.st_size} bytes)")
            raw = p.read_bytes()
        except FileNotFoundError:
            raise KeySourceError(f"{shown}: key file not found") from None
        except PermissionError:
            raise KeySourceError(f"{shown}: key file not readable (permission denied)") from None
        except OSError as exc:
            raise KeySourceError(f"{shown}: key file not readable ({exc.strerror or type(exc).__name__})") from None
        if os.name == "posix" and info.st_mode & 0o077:
            warnings.warn(
                f"{shown}: key file is accessible to group/others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run: chmod 600 {shown}",
                KeyFilePermissionWarning,
                stacklevel=2,
            )
        return cls(_parse_key_bytes(raw, shown, allow_raw=True), source="file")

    @classmethod
    def from_env(cls, name: str) -> MasterKey:
        """Read a key from environment variable ``name`` (64 hex digits).

        Raises:
            KeySourceError: unset or malformed variable; the message names the
                variable, never its value.
        """
        label = _HIDDEN if looks_like_key(name) else name
        value = os.environ.get(name)
        if value is None:
            raise KeySourceError(f"environment variable {label}: not set")
        raw = os.fsencode(value)
        return cls(_parse_key_bytes(raw, f"environment variable {label}", allow_raw=False), source="env")

    @classmethod
    def evaluation(cls, seed: int) -> MasterKey:
        """The public evaluation key of ``seed``: HKDF-SHA256 of a fixed label and the seed.

        Two runs with the same seed use the same keys, so results are
        reproducible and reused from the cache. The key is public (the
        derivation and the seed are): never protect real data with it.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"an evaluation seed must be an integer >= 0, got {seed!r}")
        material = hkdf_sha256(b"facesec/evaluation-key/v1", f"seed={seed}".encode())
        return cls(material, source="seed", seed=seed)

    @classmethod
    def attacker(cls, seed: int) -> MasterKey:
        """The key a simulated attacker protects its own training faces with.

        Derived from a label of its own, so it is independent of every victim
        key (evaluation, file, environment or random): the attacker knows the
        scheme, never the victims' keys. Public and reproducible for ``seed``.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"an attacker seed must be an integer >= 0, got {seed!r}")
        material = hkdf_sha256(b"facesec/attacker-key/v1", f"seed={seed}".encode())
        return cls(material, source="attacker", seed=seed)

    @classmethod
    def random(cls) -> MasterKey:
        """A fresh random key for this run only (results are then not reproducible)."""
        return cls(os.urandom(KEY_BYTES), ephemeral=True, source="ephemeral")

    # ----------------------------------------------------------------- identity

    @property
    def key_id(self) -> str:
        """16 hex digits: HMAC-SHA256 of the key with a fixed label (not reversible)."""
        return _fingerprint(self._key)

    @property
    def report_id(self) -> str:
        """What results and provenance show: ``"ephemeral"`` or :attr:`key_id`."""
        return "ephemeral" if self.ephemeral else self.key_id

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id}{', ephemeral' if self.ephemeral else ''})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    # ----------------------------------------------------------------- derivation

    def application(self, app_id: str) -> AppKey:
        """The key of application ``app_id`` (HKDF info ``b"facesec/app/" + app_id``).

        Args:
            app_id: Non-empty application id; a new id renews every derived key.
        """
        if not isinstance(app_id, str) or not app_id:
            raise ValueError("app_id must be a non-empty string")
        material = hkdf_sha256(self._key, b"facesec/app/" + app_id.encode("utf-8"))
        return AppKey(material, app_id)


class AppKey:
    """Key of one application: derives scheme keys, seeds and AES-CTR nonces.

    Attributes:
        app_id: The application id it was derived for.
    """

    __slots__ = ("_key", "app_id")

    def __init__(self, material: bytes, app_id: str):
        if not isinstance(material, (bytes, bytearray)) or len(material) != KEY_BYTES:
            raise KeySourceError(f"an application key must be {KEY_BYTES} bytes")
        self._key = bytes(material)
        self.app_id = app_id

    @property
    def key_id(self) -> str:
        """16 hex digits identifying this application key (not reversible)."""
        return _fingerprint(self._key)

    def __repr__(self) -> str:
        return f"AppKey(app_id={self.app_id!r}, id={self.key_id})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AppKey):
            return NotImplemented
        return self.app_id == other.app_id and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash((self.app_id, self.key_id))

    def _info(self, kind: bytes, label: str) -> bytes:
        # The app id is length-prefixed so that (app_id, label) pairs never
        # collide ("a", "b/c" vs "a/b", "c"); label is the tail, so it needs none.
        app = self.app_id.encode("utf-8")
        return b"facesec/v1/" + kind + b"\x00" + struct.pack(">I", len(app)) + app + label.encode("utf-8")

    def derive(self, label: str, n: int = KEY_BYTES) -> bytes:
        """``n`` bytes of key material for ``label`` (e.g. ``"jpeg2000/aes"``).

        Args:
            label: What the bytes are for; distinct labels give independent bytes.
            n: Number of bytes, 1 to 8160.
        """
        return hkdf_sha256(self._key, self._info(b"derive", label), n)

    def seed(self, label: str) -> int:
        """A 128-bit seed for ``numpy.random.default_rng`` (e.g. ``"noise/pattern"``).

        Seeds drive the pseudo-random draws of cancelable transforms; use
        ``"<scheme>/subject/<id>"`` style labels for per-subject transforms.
        """
        return int.from_bytes(hkdf_sha256(self._key, self._info(b"seed", label), 16), "big")

    def nonce(self, sample_id: str) -> bytes:
        """The 16-byte AES-CTR initial counter block of one sample.

        Layout: 12 bytes from HKDF(application key, sample id), then 4 zero
        bytes of block counter. Why no (AES key, counter block) pair repeats,
        assuming the AES key is ``derive("<scheme>/aes")`` of this AppKey:

        * across applications the AES keys differ (independent HKDF outputs),
          so counter blocks may coincide without harm;
        * within an application, sample ``s`` uses the blocks
          ``prefix_s || c`` for ``c < 2**32`` (64 GiB, far beyond any
          codestream): the zero low bytes let the counter run without carrying
          into the prefix, so two samples' block ranges meet only if their
          96-bit prefixes are equal, which for ``n`` distinct sample ids has
          probability below ``n**2 / 2**97`` (about 2**-57 for a million);
        * the nonce is deterministic in (key, application, sample id), so
          re-protecting the same sample gives the same ciphertext only for the
          same plaintext. A scheme whose parameters change the plaintext of a
          sample (codec settings, which layers to encrypt) must put them in the
          AES key label, so that the AES key changes with them.

        Args:
            sample_id: The dataset's stable, unique sample id.
        """
        prefix = hkdf_sha256(self._key, self._info(b"nonce", sample_id), NONCE_BYTES - _COUNTER_BYTES)
        return prefix + bytes(_COUNTER_BYTES)


def load_master_key(
    file: str | os.PathLike | None = None,
    env: str | None = None,
    *,
    seed: int | None = None,
    random: bool = False,
) -> MasterKey:
    """Resolve the master key of a run from exactly one source.

    Args:
        file: Key file path, or None.
        env: Name of an environment variable holding the key in hex, or None.
        seed: Seed of a public evaluation key (:meth:`MasterKey.evaluation`), or None.
        random: Draw a fresh random key for this run only.

    Returns:
        The key from the one source given.

    Raises:
        KeySourceError: not exactly one source, or the one given is unusable.
    """
    given = [name for name, v in (("file", file), ("env", env), ("seed", seed)) if v is not None]
    if random:
        given.append("random")
    if len(given) != 1:
        raise KeySourceError(f"give exactly one key source (file, env, seed or random), got {given or 'none'}")
    if file is not None:
        return MasterKey.from_file(file)
    if env is not None:
        return MasterKey.from_env(env)
    if seed is not None:
        return MasterKey.evaluation(seed)
    return MasterKey.random()

"""``facesec protect`` / ``facesec unprotect``: selective encryption of image files.

``protect`` encodes each input image as a JPEG2000 codestream (lossless,
layered, SOP/EPH markers on) or a baseline JPEG, encrypts a window of it with
AES-CTR (:mod:`benchmark.codecs.cipher`; the result stays format compliant and
decodable) and writes it with a JSON sidecar ``<output>.json``. ``unprotect``
reads the sidecar and restores the plaintext codestream byte for byte.

Scheme names (the paper's): ``lw4o6`` is JPEG2000 in layer progression
(LRCP) whose packet-body bytes in a window of 4 % of the codestream length,
starting at 6 %, are encrypted (headers and markers never change); ``rw4o6``
the same in resolution progression (RLCP); ``jw10o0`` baseline JPEG with the
window relative to the entropy-coded data. Decimals are allowed (``lw0.5o3``).
A window that covers no encryptable byte is refused.

Keys (no key ever comes from the command line, a sidecar or the output):

* application key ``app = master.application(app_id)``;
* ``aes_key = app.derive("<codec>/aes/" + params)`` and
  ``mac_key = app.derive("<codec>/mac/" + params)``, where ``params`` is the
  canonical JSON of the scheme name and *every* encoder parameter (so any
  setting that changes the plaintext, or the encrypted window, changes the
  keys: see :meth:`benchmark.core.keys.AppKey.nonce`);
* ``tag = HMAC-SHA256(mac_key, "codestream" | sample id | plaintext
  codestream)`` and ``nonce = app.nonce(sample_id + NUL + tag)``.

The nonce is *synthetic* (SIV style, as in RFC 5297): it depends on the
plaintext through a keyed tag. A nonce from the sample id alone would repeat
the keystream whenever two different plaintexts share an id under one key,
which plain use of this command makes easy: two databases with the same
``sN/M.pgm`` layout under the default application id, a file protected on its
own (its id is its bare name), an input edited and protected again. With the
tag in the nonce, the keystream repeats only for identical plaintexts, which
then give identical ciphertexts (equality is all they reveal, and the
unencrypted parts of the codestream show it anyway). The tag also lets
``unprotect`` check its result: a tampered or damaged file, or a tampered
sidecar, is reported instead of written.

What a sidecar holds: format version, scheme name, codec, progression, window,
offset, the encoder parameters, the application id, the sample id, ``key_id``
(fingerprint of the *application* key, so that a wrong key is detected before
decrypting, and so that sidecars of two applications do not share an id),
the codestream tag, a keyed tag of the input file (to notice an edited input
when resuming) and the output size. Deliberately absent: the key, the nonce,
and any *unkeyed* hash of the plaintext codestream, the pixels or the input
file. Such a hash would be a dictionary oracle (encode a guessed face, compare
hashes) that bypasses the encryption, and would link one sample across
applications; the keyed tags are useless without the application key and
differ between applications.

Folders are mirrored: ``IN/a/b.png`` becomes ``OUT/a/b.j2k`` (``.jpg`` for
JPEG) and ``OUT/a/b.j2k.json``. Each output is written atomically, its
sidecar after it, so a present sidecar means a complete output; a rerun skips
files whose output and matching sidecar exist, which makes an interrupted run
resumable. Exit codes: 0 all done, 1 some file failed (each is listed, the
others are done), 2 bad arguments or, for a single file, a bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmark import __version__
from benchmark.core.cache import atomic_write_bytes, atomic_write_text
from benchmark.core.keys import AppKey, KeySourceError, MasterKey

__all__ = [
    "PROGRESSIONS",
    "DEFAULT_RATIOS",
    "IMAGE_SUFFIXES",
    "SIDECAR_FORMAT",
    "ProtectError",
    "ProtectSettings",
    "parse_scheme_name",
    "scheme_name",
    "sample_keys",
    "codestream_tag",
    "sample_nonce",
    "read_pixels",
    "encode_plaintext",
    "protect_codestream",
    "unprotect_codestream",
    "protect_main",
    "unprotect_main",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

#: Scheme-name letter -> progression (``JPEG``: baseline sequential JPEG).
PROGRESSIONS = {"l": "LRCP", "r": "RLCP", "j": "JPEG"}
_LETTERS = {v: k for k, v in PROGRESSIONS.items()}
#: Compression ratios of the quality layers, last one lossless.
DEFAULT_RATIOS = (80, 40, 20, 10, 5, 1)
DEFAULT_QUALITY = 90
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff")
SIDECAR_FORMAT = "facesec-protect/1"
_J2K_SUFFIXES = (".j2k", ".j2c")
_JPEG_SUFFIXES = (".jpg", ".jpeg")
_MAX_PIXELS = 50_000_000  # decompression-bomb guard, as benchmark.data.imageio
_MAX_LISTED_FAILURES = 20

_NUMBER = r"\d+(?:\.\d+)?"
_SCHEME_RE = re.compile(rf"(?P<p>[lrj])w(?P<w>{_NUMBER})o(?P<o>{_NUMBER})")
_FORMS = (
    "expected lw<W>o<O> (JPEG2000, layer progression), rw<W>o<O> (JPEG2000, resolution progression) "
    "or jw<W>o<O> (JPEG), W = window and O = offset in percent, e.g. lw4o6, rw0.5o3, jw10o0"
)


class ProtectError(ValueError):
    """A file or argument that cannot be processed; the message is one line."""


# --------------------------------------------------------------------------- scheme names


def _check_window(window: float, offset: float, what: str) -> None:
    if not (math.isfinite(window) and 0.0 < window <= 100.0):
        raise ValueError(f"{what}: window {window:g} is not in (0, 100]; {_FORMS}")
    if not (math.isfinite(offset) and 0.0 <= offset < 100.0):
        raise ValueError(f"{what}: offset {offset:g} is not in [0, 100); {_FORMS}")
    # A tolerance: offset = 100 - window computed in floating point may exceed it by an ulp.
    if window + offset > 100.0 + 1e-9:
        raise ValueError(f"{what}: window + offset = {window + offset:g} exceeds 100; {_FORMS}")


def _number(x: float) -> str:
    # repr is the shortest string that reads back to the same float; Decimal
    # turns its exponent form (1e-05) into plain digits the parser accepts.
    text = format(Decimal(repr(float(x))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_scheme_name(name: str) -> dict:
    """Parse a scheme name such as ``lw4o6``, ``rw0.5o3`` or ``jw10o0``.

    Args:
        name: ``<p>w<W>o<O>`` with ``p`` = ``l`` (JPEG2000, LRCP), ``r``
            (JPEG2000, RLCP) or ``j`` (JPEG), and ``W`` / ``O`` the window and
            offset in percent of the encrypted data (digits, optional decimals).

    Returns:
        ``{"name", "codec", "progression", "window", "offset"}``: the canonical
        name (:func:`scheme_name` of the rest), ``"j2k"`` or ``"jpeg"``,
        ``"LRCP"``, ``"RLCP"`` or ``"JPEG"``, and two floats.

    Raises:
        ValueError: anything else, or a window outside (0, 100], an offset
            outside [0, 100), window + offset above 100; one line that lists
            the accepted forms.
    """
    m = _SCHEME_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"unknown scheme {name!r}: {_FORMS}")
    progression = PROGRESSIONS[m["p"]]
    window, offset = float(m["w"]), float(m["o"])
    _check_window(window, offset, f"scheme {name!r}")
    return {
        "name": scheme_name(progression, window, offset),
        "codec": "jpeg" if progression == "JPEG" else "j2k",
        "progression": progression,
        "window": window,
        "offset": offset,
    }


def scheme_name(progression: str, window: float, offset: float) -> str:
    """The inverse of :func:`parse_scheme_name`, numbers in shortest form.

    Args:
        progression: ``"LRCP"``, ``"RLCP"`` or ``"JPEG"`` (any case).
        window: Window in percent, in (0, 100].
        offset: Offset in percent, in [0, 100).

    Returns:
        e.g. ``scheme_name("LRCP", 4.0, 6.0) == "lw4o6"``.

    Raises:
        ValueError: unknown progression or out-of-range numbers.
    """
    letter = _LETTERS.get(str(progression).upper())
    if letter is None:
        raise ValueError(f"unknown progression {progression!r}: expected one of {', '.join(_LETTERS)}")
    if isinstance(window, bool) or isinstance(offset, bool):
        raise ValueError("window and offset must be numbers")
    window, offset = float(window), float(offset)
    _check_window(window, offset, f"{progression} scheme")
    return f"{letter}w{_number(window)}o{_number(offset)}"


# --------------------------------------------------------------------------- settings and keys


def _jsonable(obj: Any) -> Any:
    # Tuples become lists exactly as they will when read back from a sidecar,
    # so the key label is the same on both sides.
    return json.loads(json.dumps(obj, sort_keys=True))


@dataclass(frozen=True)
class ProtectSettings:
    """Everything that determines a protected file, except the key and the sample.

    Attributes:
        scheme: :func:`parse_scheme_name` of the scheme.
        encoder: The encoder parameters as JSON values (J2K: the fields of
            ``J2KParams``; JPEG: quality and restart interval).
        app_id: Application id (a new one renews every key).
    """

    scheme: dict
    encoder: dict
    app_id: str = "default"

    @classmethod
    def build(
        cls,
        scheme: str,
        *,
        app_id: str = "default",
        restart: bool = False,
        quality: int | None = None,
        restart_interval: int | None = None,
    ) -> "ProtectSettings":
        """Settings from command-line values; raises ProtectError on a bad combination."""
        try:
            parsed = parse_scheme_name(scheme)
        except ValueError as exc:
            raise ProtectError(str(exc)) from None
        if not app_id:
            raise ProtectError("--app-id: must not be empty")
        if parsed["codec"] == "j2k":
            if quality is not None or restart_interval is not None:
                raise ProtectError(f"--quality / --restart-interval apply to JPEG schemes (jw…), not {parsed['name']}")
            from benchmark.codecs.j2k import J2KParams

            params = J2KParams(**_j2k_kwargs(parsed["progression"], restart))
            encoder = _jsonable(params.as_dict())
        else:
            if restart:
                raise ProtectError(f"--restart applies to JPEG2000 schemes (lw…, rw…), not {parsed['name']}")
            q = DEFAULT_QUALITY if quality is None else quality
            r = 0 if restart_interval is None else restart_interval
            if not 1 <= q <= 100:
                raise ProtectError(f"--quality: {q} is not in [1, 100]")
            if not 0 <= r <= 65535:
                raise ProtectError(f"--restart-interval: {r} is not in [0, 65535]")
            encoder = {"quality": q, "restart_interval": r}
        return cls(scheme=parsed, encoder=encoder, app_id=app_id)

    @property
    def codec(self) -> str:
        return self.scheme["codec"]

    @property
    def suffix(self) -> str:
        """Suffix of the protected files."""
        return ".j2k" if self.codec == "j2k" else ".jpg"

    def canonical(self) -> str:
        """The key-label string: scheme name and every encoder parameter, canonical JSON."""
        return _canonical(self.scheme["name"], self.encoder)


def _j2k_kwargs(progression: str, restart: bool) -> dict:
    return {"progression": progression, "ratios": DEFAULT_RATIOS, "sop": True, "eph": True, "restart": restart}


def _canonical(name: str, encoder: dict) -> str:
    return json.dumps({"scheme": name, "encoder": encoder}, sort_keys=True, separators=(",", ":"))


def sample_keys(app: AppKey, codec: str, canonical: str) -> tuple[bytes, bytes]:
    """(AES key, MAC key) of one parameter set: ``app.derive("<codec>/aes/" + canonical)``, ``…/mac/…``."""
    return app.derive(f"{codec}/aes/{canonical}"), app.derive(f"{codec}/mac/{canonical}")


def _tag(mac_key: bytes, kind: bytes, sample_id: str, data: bytes) -> str:
    sid = sample_id.encode("utf-8")
    msg = kind + b"\x00" + len(sid).to_bytes(4, "big") + sid + data
    return hmac.new(mac_key, msg, hashlib.sha256).hexdigest()


def codestream_tag(mac_key: bytes, sample_id: str, codestream: bytes) -> str:
    """Keyed tag (HMAC-SHA256, hex) of a plaintext codestream of one sample."""
    return _tag(mac_key, b"codestream", sample_id, codestream)


def sample_nonce(app: AppKey, sample_id: str, tag: str) -> bytes:
    """Synthetic AES-CTR nonce: ``app.nonce(sample_id + NUL + tag)`` (see the module docstring)."""
    return app.nonce(f"{sample_id}\x00{tag}")


# --------------------------------------------------------------------------- codec work


def read_pixels(source: Path | bytes) -> np.ndarray:
    """Decode an image file (path or its bytes), keeping grey as (H, W) uint8 and colour as (H, W, 3).

    Unlike :func:`benchmark.data.imageio.read_image`, grey stays one channel: the
    J2K codestream must decode back to exactly the input pixels.

    Raises:
        ProtectError: unreadable, not an image, too large, or a mode that
            cannot be kept losslessly in 8 bits (16-bit, alpha, CMYK).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                if im.width * im.height > _MAX_PIXELS:
                    raise ProtectError(f"too large ({im.width}x{im.height})")
                im.load()
                if im.mode in ("1", "L"):
                    im = im.convert("L")
                elif im.mode == "P" and "transparency" not in im.info:
                    im = im.convert("RGB")
                elif im.mode != "RGB":
                    raise ProtectError(f"unsupported image mode {im.mode} (8-bit grey or RGB only)")
                arr = np.asarray(im, dtype=np.uint8)
    except ProtectError:
        raise
    except UnidentifiedImageError:
        raise ProtectError("not a recognised image format") from None
    except FileNotFoundError:
        raise ProtectError("no such file") from None
    except PermissionError:
        raise ProtectError("not readable (permission denied)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ProtectError(f"cannot decode: {exc}") from None
    if min(arr.shape[:2]) < 8:
        raise ProtectError(f"unusable image shape {arr.shape}")
    return arr


def encode_plaintext(pixels: np.ndarray, settings: ProtectSettings) -> bytes:
    """The plaintext codestream of an image under ``settings`` (what unprotect restores)."""
    if settings.codec == "j2k":
        from benchmark.codecs.j2k import J2KParams, encode_j2k

        params = J2KParams(**_j2k_kwargs(settings.scheme["progression"], bool(settings.encoder.get("restart"))))
        return encode_j2k(pixels, params)
    from benchmark.codecs.jpeg import encode_jpeg

    return encode_jpeg(pixels, quality=settings.encoder["quality"], restart_interval=settings.encoder["restart_interval"])


def _cipher(codec: str, decrypt: bool):
    from benchmark.codecs import cipher

    name = ("decrypt_" if decrypt else "encrypt_") + codec
    return getattr(cipher, name)


def _bad_codestream_types() -> tuple[type[BaseException], ...]:
    from benchmark.codecs.j2k import CodestreamError

    return (CodestreamError, ValueError)


def protect_codestream(
    plaintext: bytes, settings: ProtectSettings, app: AppKey, sample_id: str
) -> tuple[bytes, dict]:
    """Encrypt the scheme's window of a plaintext codestream.

    Returns:
        (protected bytes, sidecar fields that depend on the plaintext: ``tag``).

    Raises:
        ProtectError: the codestream cannot be parsed (e.g. no SOP/EPH), or
            decrypting the result does not give the plaintext back.
    """
    canonical = settings.canonical()
    aes_key, mac_key = sample_keys(app, settings.codec, canonical)
    tag = codestream_tag(mac_key, sample_id, plaintext)
    nonce = sample_nonce(app, sample_id, tag)
    w, o = settings.scheme["window"], settings.scheme["offset"]
    try:
        protected = _cipher(settings.codec, False)(plaintext, aes_key, nonce, w, o)
        # Cheap (no coding, one window of AES) and it guards every written file
        # against a cipher that could not be undone.
        back = _cipher(settings.codec, True)(protected, aes_key, nonce, w, o)
    except _bad_codestream_types() as exc:
        raise ProtectError(f"cannot encrypt the codestream: {exc}") from None
    if back != plaintext:
        raise ProtectError("internal check failed: decryption does not restore the codestream")
    if protected == plaintext:
        raise ProtectError(f"window {w:g} % at offset {o:g} % holds no encryptable byte of this codestream: nothing would be protected")
    return protected, {"tag": tag}


def unprotect_codestream(protected: bytes, sidecar: dict, app: AppKey) -> bytes:
    """Decrypt a protected codestream with the parameters of its sidecar.

    Raises:
        ProtectError: malformed sidecar, wrong key, unparsable codestream, or
            a tag mismatch (damaged or tampered file or sidecar).
    """
    if app.key_id != sidecar["key_id"]:
        raise ProtectError(
            f"wrong key: protected with key id {sidecar['key_id']} (application {sidecar['app_id']!r}), "
            f"the key given has id {app.key_id}"
        )
    codec = sidecar["codec"]
    aes_key, mac_key = sample_keys(app, codec, _canonical(sidecar["scheme"], sidecar["encoder"]))
    nonce = sample_nonce(app, sidecar["sample_id"], sidecar["tag"])
    try:
        plaintext = _cipher(codec, True)(protected, aes_key, nonce, sidecar["window"], sidecar["offset"])
    except _bad_codestream_types() as exc:
        raise ProtectError(f"cannot decrypt the codestream: {exc}") from None
    if not hmac.compare_digest(codestream_tag(mac_key, sidecar["sample_id"], plaintext), sidecar["tag"]):
        raise ProtectError("integrity check failed: the file or its sidecar was altered or damaged")
    return plaintext


# --------------------------------------------------------------------------- sidecars

_SIDECAR_KEYS = {
    "format": str, "scheme": str, "codec": str, "progression": str, "window": (int, float),
    "offset": (int, float), "encoder": dict, "app_id": str, "sample_id": str, "key_id": str,
    "tag": str, "input_tag": str, "bytes": int,
}


def _sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + ".json")


def _read_sidecar(path: Path) -> dict:
    """A sidecar's fields, checked; ProtectError when missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtectError(f"no sidecar {path.name} next to it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtectError(f"sidecar {path.name} unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ProtectError(f"sidecar {path.name}: not a {SIDECAR_FORMAT} sidecar")
    for key, types in _SIDECAR_KEYS.items():
        if not isinstance(data.get(key), types) or isinstance(data.get(key), bool):
            raise ProtectError(f"sidecar {path.name}: field {key!r} missing or malformed")
    try:
        parsed = parse_scheme_name(data["scheme"])
    except ValueError as exc:
        raise ProtectError(f"sidecar {path.name}: {exc}") from None
    if any(parsed[k] != data[k] for k in ("codec", "progression", "window", "offset")):
        raise ProtectError(f"sidecar {path.name}: fields disagree with scheme {data['scheme']!r}")
    return data


def _sidecar(settings: ProtectSettings, app: AppKey, sample_id: str, extra: dict) -> dict:
    s = settings.scheme
    return {
        "format": SIDECAR_FORMAT,
        "scheme": s["name"],
        "codec": s["codec"],
        "progression": s["progression"],
        "window": s["window"],
        "offset": s["offset"],
        "encoder": settings.encoder,
        "app_id": settings.app_id,
        "sample_id": sample_id,
        "key_id": app.key_id,
        "facesec_version": __version__,
        **extra,
    }


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class _Job:
    src: Path
    dst: Path
    sample_id: str  # posix path of src relative to IN (the file name for a single file)


@dataclass(frozen=True)
class _Outcome:
    sample_id: str
    status: str  # "done" | "skipped" | "failed"
    message: str = ""
    bad_input: bool = True  # failed on a bad input (exit 2 for a single file), not a bug


def _app(master: MasterKey, app_id: str, cache: dict) -> AppKey:
    if app_id not in cache:
        cache[app_id] = master.application(app_id)
    return cache[app_id]


def _protect_one(job: _Job, settings: ProtectSettings, app: AppKey) -> _Outcome:
    raw = job.src.read_bytes()
    _, mac_key = sample_keys(app, settings.codec, settings.canonical())
    input_tag = _tag(mac_key, b"input", job.sample_id, raw)
    sidecar_path = _sidecar_path(job.dst)
    expected = _sidecar(settings, app, job.sample_id, {"input_tag": input_tag})
    if job.dst.is_file() and sidecar_path.is_file():
        try:
            old = _read_sidecar(sidecar_path)
        except ProtectError:
            old = None
        if (
            old is not None
            and all(old.get(k) == v for k, v in expected.items() if k != "facesec_version")
            and old["bytes"] == job.dst.stat().st_size
        ):
            return _Outcome(job.sample_id, "skipped")
    # Decoded from the bytes just tagged: a file changing meanwhile cannot
    # leave a sidecar whose input tag vouches for other pixels.
    pixels = read_pixels(raw)
    try:
        plaintext = encode_plaintext(pixels, settings)
    except ValueError as exc:
        raise ProtectError(f"cannot encode: {exc}") from None
    protected, extra = protect_codestream(plaintext, settings, app, job.sample_id)
    # A stale sidecar must not vouch for the new output while it is written.
    sidecar_path.unlink(missing_ok=True)
    atomic_write_bytes(job.dst, protected)
    # After the output: a sidecar on disk implies a complete output.
    sidecar = {**expected, **extra, "bytes": len(protected)}
    atomic_write_text(sidecar_path, json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return _Outcome(job.sample_id, "done")


def _unprotect_one(job: _Job, master: MasterKey, apps: dict) -> _Outcome:
    sidecar = _read_sidecar(_sidecar_path(job.src))
    app = _app(master, sidecar["app_id"], apps)
    if job.dst.is_file():
        # Resumable: an existing output that carries the right tag is the plaintext.
        _, mac_key = sample_keys(app, sidecar["codec"], _canonical(sidecar["scheme"], sidecar["encoder"]))
        existing = job.dst.read_bytes()
        if app.key_id == sidecar["key_id"] and hmac.compare_digest(
            codestream_tag(mac_key, sidecar["sample_id"], existing), sidecar["tag"]
        ):
            return _Outcome(job.sample_id, "skipped")
    plaintext = unprotect_codestream(job.src.read_bytes(), sidecar, app)
    atomic_write_bytes(job.dst, plaintext)
    return _Outcome(job.sample_id, "done")


def _guarded(fn, job: _Job, *args) -> _Outcome:
    try:
        return fn(job, *args)
    except ProtectError as exc:
        return _Outcome(job.sample_id, "failed", str(exc))
    except OSError as exc:
        return _Outcome(job.sample_id, "failed", f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": "))
    except Exception as exc:  # one odd file must not stop a large folder
        return _Outcome(job.sample_id, "failed", f"{type(exc).__name__}: {exc}", bad_input=False)


def _protect_chunk(jobs: Sequence[_Job], settings: ProtectSettings, master: MasterKey) -> list[_Outcome]:
    app = master.application(settings.app_id)
    return [_guarded(_protect_one, job, settings, app) for job in jobs]


def _unprotect_chunk(jobs: Sequence[_Job], master: MasterKey) -> list[_Outcome]:
    apps: dict = {}
    return [_guarded(_unprotect_one, job, master, apps) for job in jobs]


def _run(fn, jobs: list[_Job], workers: int, desc: str) -> list[_Outcome]:
    from benchmark.core.parallel import map_chunks

    if not jobs:
        return []
    # Small chunks keep the bar moving and the workers balanced; large enough
    # to amortise the per-task pickling.
    size = max(1, min(32, math.ceil(len(jobs) / (4 * workers))))
    chunks = map_chunks(fn, jobs, workers=workers, desc=desc, chunk_size=size)
    return [o for chunk in chunks for o in chunk]


# --------------------------------------------------------------------------- planning


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(root: Path, suffixes: Sequence[str]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".") and Path(f).suffix.lower() in suffixes]
    return found


def _plan(src: Path, out: Path, suffixes: Sequence[str], rename) -> tuple[list[_Job], list[_Outcome], Path]:
    """Jobs mirroring ``src`` into ``out`` (a folder), or the one job of a file.

    Returns (jobs, failures found while planning, output folder for the summary).
    Raises ProtectError for bad arguments.
    """
    src_r, out_r = src.resolve(), out.resolve()
    if not src.exists():
        raise ProtectError(f"{src}: no such file or folder")
    if src.is_dir():
        if _is_within(out_r, src_r):
            raise ProtectError(f"{out}: the output folder must not be inside the input folder {src} (it would recurse)")
        if _is_within(src_r, out_r):
            raise ProtectError(f"{out}: the output folder must not contain the input folder {src}")
        if out.exists() and not out.is_dir():
            raise ProtectError(f"{out}: not a folder (the input is a folder)")
        by_dst: dict[Path, list[_Job]] = {}
        for path in _walk(src, suffixes):
            rel = path.relative_to(src)
            by_dst.setdefault(out / rename(rel), []).append(_Job(path, out / rename(rel), rel.as_posix()))
        jobs = [group[0] for group in by_dst.values() if len(group) == 1]
        # Which of a.png and a.bmp should become a.j2k is a guess: do neither.
        failures = [
            _Outcome(job.sample_id, "failed", f"{' and '.join(j.sample_id for j in group)} would both become {dst.relative_to(out).as_posix()}")
            for dst, group in by_dst.items() if len(group) > 1 for job in group
        ]
        return jobs, failures, out
    dst = out / rename(Path(src.name)) if out.is_dir() else out
    if dst.resolve() == src_r:
        raise ProtectError(f"{out}: the output must not be the input file")
    return [_Job(src, dst, src.name)], [], dst.parent


def _load_key(args: argparse.Namespace) -> MasterKey:
    if args.key_file is not None and args.key_env is not None:
        raise ProtectError("give --key-file or --key-env, not both")
    if args.key_file is None and args.key_env is None:
        raise ProtectError(
            "a key is required: --key-file FILE or --key-env NAME (a random key would make the files "
            "impossible to unprotect); make one with: head -c 32 /dev/urandom > facesec.key && chmod 600 facesec.key"
        )
    try:
        return MasterKey.from_file(args.key_file) if args.key_file is not None else MasterKey.from_env(args.key_env)
    except KeySourceError as exc:
        raise ProtectError(str(exc)) from None


def _workers(args: argparse.Namespace) -> int:
    from benchmark.core.parallel import default_workers

    if args.workers is None:
        return default_workers()
    if args.workers < 1:
        raise ProtectError(f"--workers: {args.workers} is not >= 1")
    return args.workers


def _report(verb: str, outcomes: list[_Outcome], out_dir: Path, single: Path | None) -> int:
    """Failures (stderr) and the summary line; ``single`` is the input file of a one-file run."""
    failed = [o for o in outcomes if o.status == "failed"]
    if single is not None and failed:
        o = failed[0]
        print(f"error: {single}: {o.message}", file=sys.stderr)
        return EXIT_BAD_INPUT if o.bad_input else EXIT_FAILED
    for o in failed[:_MAX_LISTED_FAILURES]:
        print(f"failed: {o.sample_id}: {o.message}", file=sys.stderr)
    if len(failed) > _MAX_LISTED_FAILURES:
        print(f"failed: … and {len(failed) - _MAX_LISTED_FAILURES} more", file=sys.stderr)
    n = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"{verb}: {n['done']} done, {n['skipped']} skipped (already done), {n['failed']} failed; output: {out_dir}")
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- commands


def protect_main(args: argparse.Namespace) -> int:
    """``facesec protect``: see the module docstring. Returns the exit code."""
    try:
        settings = ProtectSettings.build(
            args.scheme,
            app_id=args.app_id,
            restart=args.restart,
            quality=args.quality,
            restart_interval=args.restart_interval,
        )
        master = _load_key(args)
        workers = _workers(args)
        out = args.output
        if args.input.is_file() and not out.is_dir():
            allowed = _J2K_SUFFIXES if settings.codec == "j2k" else _JPEG_SUFFIXES
            if out.suffix.lower() not in allowed:
                raise ProtectError(f"{out}: the output of {settings.scheme['name']} must end in {' or '.join(allowed)}")
        jobs, failures, out_dir = _plan(args.input, out, IMAGE_SUFFIXES, lambda rel: rel.with_suffix(settings.suffix))
        inputs = {job.src.resolve() for job in jobs}
        for job in jobs:  # JPEG outputs are .jpg: never let one land on an input
            if job.dst.resolve() in inputs or _sidecar_path(job.dst).resolve() in inputs:
                raise ProtectError(f"{job.dst}: would overwrite an input file")
    except ProtectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    single = args.input if args.input.is_file() else None
    outcomes = failures + _run(partial(_protect_chunk, settings=settings, master=master), jobs, workers, "protect")
    return _report("protect", outcomes, out_dir, single)


def unprotect_main(args: argparse.Namespace) -> int:
    """``facesec unprotect``: restore the plaintext codestreams. Returns the exit code."""
    try:
        master = _load_key(args)
        workers = _workers(args)
        jobs, failures, out_dir = _plan(args.input, args.output, _J2K_SUFFIXES + _JPEG_SUFFIXES, lambda rel: rel)
    except ProtectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    single = args.input if args.input.is_file() else None
    outcomes = failures + _run(partial(_unprotect_chunk, master=master), jobs, workers, "unprotect")
    return _report("unprotect", outcomes, out_dir, single)

"""Protected files and their JSON sidecars: the keying and format behind ``facesec protect``.

A protected file is the codestream of a registered
:class:`~benchmark.core.component.CodestreamScheme` (``lw4o6``, ``rw…``,
``pw…``, ``jw…``, ``ja…``) with its window encrypted by the scheme's own
:meth:`~benchmark.core.component.CodestreamScheme.encrypt`; this module adds
what files need beyond the harness: keys per parameter set, a synthetic
nonce, keyed tags, and the sidecar that lets ``unprotect`` restore the
plaintext codestream byte for byte.

Keys (no key ever comes from the command line, a sidecar or the output):

* application key ``app = master.application(app_id)``;
* ``aes_key = app.derive("<codec>/aes/" + params)`` and
  ``mac_key = app.derive("<codec>/mac/" + params)``, where ``params`` is the
  canonical JSON of the scheme's paper name and *every* encoder setting
  (:func:`canonical`), so any setting that changes the plaintext, or the
  encrypted window, changes the keys;
* ``tag = HMAC-SHA256(mac_key, "codestream" | sample id | path |
  plaintext codestream)`` and ``nonce = app.nonce(sample_id + NUL + tag)``,
  where ``path`` is the protected file's path below the folder ``protect``
  wrote (its name, for a single file).

The path binds a file to its place: ``unprotect`` refuses a file found
anywhere else below the folder it is given (its name, for a single file),
before decrypting. Without it, ``cp OUT/a/1.j2k OUT/a/3.j2k`` (with the
sidecar) restores ``a/3`` as ``a/1``'s face, every check passing: the tag
vouches for a sample, not for where it lies. A whole protected tree moved
elsewhere still restores, as paths are relative to its root. Sidecars of
format 1 (no path) are restored only where their sample id puts them, the
file a folder ``protect`` would have written for it (``a/1.png`` ->
``a/1.j2k``): the id is under the tag, so this binds them as well, and
refuses the rest (an output named freely by a single-file ``protect``).

The nonce is *synthetic* (SIV style, as in RFC 5297): it depends on the
plaintext through a keyed tag. A nonce from the sample id alone would repeat
the keystream whenever two different plaintexts share an id under one key,
which plain use of the command makes easy: two databases with the same
``sN/M.pgm`` layout under the default application id, a file protected on its
own (its id is its bare name), an input edited and protected again. With the
tag in the nonce, the keystream repeats only for identical plaintexts, which
then give identical ciphertexts (equality is all they reveal, and the
unencrypted parts of the codestream show it anyway). The tag also lets
``unprotect`` check its result, and a resumed ``protect`` check an output it
would skip.

A sidecar holds: format version, scheme name, codec, progression, window,
offset, the encoder settings, the application id, the sample id, the path, ``key_id``
(fingerprint of the *application* key, so that a wrong key is detected before
decrypting, and so that sidecars of two applications do not share an id),
the codestream tag, a keyed tag of the input file (to notice an edited input
when resuming) and the output size. Deliberately absent: the key, the nonce,
and any *unkeyed* hash of the plaintext codestream, the pixels or the input
file: such a hash would be a dictionary oracle (encode a guessed face,
compare hashes) that bypasses the encryption, and would link one sample
across applications; the keyed tags are useless without the application key
and differ between applications.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import posixpath
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark import __version__
from benchmark.core.component import CodestreamScheme, ParamError
from benchmark.core.keys import AppKey
from benchmark.core.registry import SCHEMES
from benchmark.core.strict_json import JsonError, parse_json
from benchmark.core.strict_yaml import one_line

__all__ = [
    "SIDECAR_FORMAT",
    "ProtectError",
    "check_place",
    "file_schemes",
    "scheme_from_name",
    "bound_path",
    "canonical",
    "file_keys",
    "scheme_keys",
    "codestream_tag",
    "input_tag",
    "synthetic_nonce",
    "read_pixels",
    "protect_codestream",
    "unprotect_codestream",
    "make_sidecar",
    "read_sidecar",
    "scheme_of_sidecar",
    "sidecar_path",
]

SIDECAR_FORMAT = "facesec-protect/2"
# Format 1 had no path; its sample id places it (see the module docstring).
_OLD_FORMAT = "facesec-protect/1"
_MAX_SIDECAR_BYTES = 65_536  # a sidecar is a few hundred bytes; refuse to parse anything big
_MAX_PIXELS = 50_000_000  # decompression-bomb guard, as benchmark.data.imageio


class ProtectError(ValueError):
    """A file or argument that cannot be processed; the message is one line."""


# --------------------------------------------------------------------------- schemes


def file_schemes() -> list[type[CodestreamScheme]]:
    """Registered schemes with a file form (codestream schemes), by registry name."""
    return [cls for _, cls in SCHEMES.items() if issubclass(cls, CodestreamScheme)]


def scheme_from_name(name: str) -> CodestreamScheme:
    """The registered scheme a paper-style name denotes (``lw4o6``, ``pw2o0``, ``jw10o0-ri4``).

    Raises:
        ProtectError: no scheme takes the name, or its values are refused; one
            line listing the accepted forms.
    """
    forms = "; ".join(cls.name_forms() for cls in file_schemes())
    for cls in file_schemes():
        try:
            scheme = cls.from_name(name)
        except ParamError as exc:
            raise ProtectError(f"scheme {name!r}: {exc}") from None
        if scheme is not None:
            return scheme
    raise ProtectError(f"unknown scheme {name!r}: expected {forms}; W = window and O = offset in percent, e.g. lw4o6")


def _encoder(scheme: CodestreamScheme) -> dict[str, Any]:
    # Through JSON, so tuples are lists exactly as they are when read back from a sidecar.
    return json.loads(json.dumps(scheme.settings().get("encoder", {}), sort_keys=True))


def scheme_keys(app: AppKey, scheme: CodestreamScheme) -> tuple[bytes, bytes]:
    """(AES key, MAC key) of a scheme's files under ``app`` (:func:`file_keys` of its :func:`canonical` label)."""
    return file_keys(app, scheme.codec, canonical(scheme.paper_name(), _encoder(scheme)))


def _progression(scheme: CodestreamScheme, encoder: dict[str, Any]) -> str:
    # The codestream's progression order; baseline JPEG is sequential ("JPEG").
    return str(encoder.get("progression", scheme.codec.upper()))


# --------------------------------------------------------------------------- keys and tags


def canonical(name: str, encoder: dict[str, Any]) -> str:
    """The key-label string of a parameter set: canonical JSON of the paper name and every encoder setting."""
    return json.dumps({"scheme": name, "encoder": encoder}, sort_keys=True, separators=(",", ":"))


def file_keys(app: AppKey, codec: str, label: str) -> tuple[bytes, bytes]:
    """(AES key, MAC key) of one parameter set: ``app.derive("<codec>/aes/" + label)``, ``…/mac/…``."""
    return app.derive(f"{codec}/aes/{label}"), app.derive(f"{codec}/mac/{label}")


def _tag(mac_key: bytes, kind: bytes, ids: tuple[str, ...], data: bytes) -> str:
    msg = kind + b"\x00"
    for text in ids:  # each length-prefixed: no two id lists share an encoding
        raw = text.encode("utf-8")
        msg += len(raw).to_bytes(4, "big") + raw
    return hmac.new(mac_key, msg + data, hashlib.sha256).hexdigest()


def codestream_tag(mac_key: bytes, sample_id: str, codestream: bytes, *, path: str | None) -> str:
    """Keyed tag (HMAC-SHA256, hex) of a plaintext codestream of one sample.

    Args:
        mac_key: The parameter set's MAC key.
        sample_id: The sample id (the input's path below IN).
        codestream: The plaintext codestream.
        path: The protected file's path below the protected root; None only
            to check a format-1 sidecar, whose tag did not cover it.
    """
    return _tag(mac_key, b"codestream", (sample_id,) if path is None else (sample_id, path), codestream)


def input_tag(mac_key: bytes, sample_id: str, raw: bytes) -> str:
    """Keyed tag of an input file's bytes (to notice an edited input when resuming)."""
    return _tag(mac_key, b"input", (sample_id,), raw)


def synthetic_nonce(app: AppKey, sample_id: str, tag: str) -> bytes:
    """Synthetic AES-CTR nonce: ``app.nonce(sample_id + NUL + tag)`` (see the module docstring)."""
    return app.nonce(f"{sample_id}\x00{tag}")


# --------------------------------------------------------------------------- pixels and codestreams


def read_pixels(source: Path | bytes) -> np.ndarray:
    """Decode an image file (path or its bytes), keeping grey as (H, W) uint8 and colour as (H, W, 3).

    Unlike :func:`benchmark.data.imageio.read_image`, grey stays one channel:
    the codestream must decode back to exactly the input pixels.

    Raises:
        ProtectError: unreadable, not an image, too large, or a mode that
            cannot be kept losslessly in 8 bits (16-bit, alpha, CMYK).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                if im.width * im.height > _MAX_PIXELS:
                    raise ProtectError(f"too large ({im.width}x{im.height})")
                im.load()
                image: Image.Image = im
                if im.mode in ("1", "L"):
                    image = im.convert("L")
                elif im.mode == "P" and "transparency" not in im.info:
                    image = im.convert("RGB")
                elif im.mode != "RGB":
                    raise ProtectError(f"unsupported image mode {im.mode} (8-bit grey or RGB only)")
                arr = np.asarray(image, dtype=np.uint8)
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


def protect_codestream(
    plaintext: bytes, scheme: CodestreamScheme, app: AppKey, sample_id: str, path: str
) -> tuple[bytes, str]:
    """Encrypt the scheme's window of a plaintext codestream with a synthetic nonce.

    ``path`` is where the protected file goes, below the protected root (its
    name for a single file): the tag covers it, binding the file to its place.

    Returns:
        (protected bytes, the codestream tag for the sidecar).

    Raises:
        ProtectError: the codestream cannot be parsed (e.g. no SOP/EPH), the
            window holds no encryptable byte, or decrypting the result does
            not give the plaintext back.
    """
    aes_key, mac_key = scheme_keys(app, scheme)
    tag = codestream_tag(mac_key, sample_id, plaintext, path=path)
    nonce = synthetic_nonce(app, sample_id, tag)
    try:
        protected = scheme.encrypt(plaintext, aes_key, nonce)
        # Cheap (no coding, one window of AES) and it guards every written file
        # against a cipher that could not be undone.
        back = scheme.decrypt(protected, aes_key, nonce)
    except ValueError as exc:  # CodestreamError is a ValueError
        raise ProtectError(f"cannot encrypt the codestream: {exc}") from None
    if back != plaintext:
        raise ProtectError("internal check failed: decryption does not restore the codestream")
    if protected == plaintext:
        raise ProtectError(
            f"window {scheme.window:g} % at offset {scheme.offset:g} % holds no encryptable byte of this "
            "codestream: nothing would be protected"
        )
    return protected, tag


def bound_path(sidecar: dict[str, Any]) -> str | None:
    """The path a (checked) sidecar's tag covers; None for format 1."""
    return None if sidecar["format"] == _OLD_FORMAT else sidecar["path"]


def check_place(sidecar: dict[str, Any], place: str) -> None:
    """Refuse a protected file found at ``place`` when its sidecar binds it elsewhere.

    Args:
        sidecar: The file's (checked) sidecar; the tag, checked after
            decrypting, vouches for its path and sample id.
        place: The file's path below the folder given to ``unprotect`` (its
            name for a single file), POSIX form.

    Raises:
        ProtectError: the file was renamed, copied or moved within its tree.
    """
    path = bound_path(sidecar)
    if path is None:  # format 1: the file a folder protect wrote for its sample id
        if posixpath.splitext(sidecar["sample_id"])[0] != posixpath.splitext(place)[0]:
            raise ProtectError(
                f"format-1 sidecar of sample {sidecar['sample_id']!r}, which does not place it at {place!r}: "
                "renamed, copied or moved (refused; it would restore as another sample)"
            )
    elif path != place:
        raise ProtectError(
            f"protected as {path!r} below its protected folder, found as {place!r}: renamed, copied or moved "
            "(refused; it would restore as another sample); unprotect the folder protect wrote"
        )


def unprotect_codestream(protected: bytes, sidecar: dict[str, Any], app: AppKey, *, place: str) -> bytes:
    """Decrypt a protected codestream with the parameters of its sidecar and check its tag.

    ``place`` is the file's path below the folder given to ``unprotect`` (its
    name for a single file): see :func:`check_place`.

    Raises:
        ProtectError: malformed sidecar, wrong key, a file out of its place,
            unparsable codestream, or a tag mismatch (damaged or tampered file
            or sidecar).
    """
    check_place(sidecar, place)
    if app.key_id != sidecar["key_id"]:
        raise ProtectError(
            f"wrong key: protected with key id {sidecar['key_id']} (application {sidecar['app_id']!r}), "
            f"the key given has id {app.key_id}"
        )
    scheme = scheme_of_sidecar(sidecar)
    aes_key, mac_key = file_keys(app, sidecar["codec"], canonical(sidecar["scheme"], sidecar["encoder"]))
    nonce = synthetic_nonce(app, sidecar["sample_id"], sidecar["tag"])
    try:
        plaintext = scheme.decrypt(protected, aes_key, nonce)
    except ValueError as exc:
        raise ProtectError(f"cannot decrypt the codestream: {exc}") from None
    tag = codestream_tag(mac_key, sidecar["sample_id"], plaintext, path=bound_path(sidecar))
    if not hmac.compare_digest(tag, sidecar["tag"]):
        raise ProtectError("integrity check failed: the file or its sidecar was altered or damaged")
    return plaintext


# --------------------------------------------------------------------------- sidecars

_SIDECAR_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "scheme": str,
    "codec": str,
    "progression": str,
    "window": (int, float),
    "offset": (int, float),
    "encoder": dict,
    "app_id": str,
    "sample_id": str,
    "key_id": str,
    "tag": str,
    "input_tag": str,
    "bytes": int,
}


def sidecar_path(output: Path) -> Path:
    """``OUT/a/b.j2k`` -> ``OUT/a/b.j2k.json``."""
    return output.with_name(output.name + ".json")


def make_sidecar(scheme: CodestreamScheme, app: AppKey, sample_id: str, path: str, **fields: Any) -> dict[str, Any]:
    """The sidecar of one sample protected as ``path`` (below the protected root); ``fields`` adds the tags and size."""
    encoder = _encoder(scheme)
    return {
        "format": SIDECAR_FORMAT,
        "scheme": scheme.paper_name(),
        "codec": scheme.codec,
        "progression": _progression(scheme, encoder),
        "window": float(scheme.window),
        "offset": float(scheme.offset),
        "encoder": encoder,
        "app_id": app.app_id,
        "sample_id": sample_id,
        "path": path,
        "key_id": app.key_id,
        "facesec_version": __version__,
        **fields,
    }


def scheme_of_sidecar(sidecar: dict[str, Any]) -> CodestreamScheme:
    """The scheme a (checked) sidecar names.

    Raises:
        ProtectError: a name no registered scheme takes, or fields that disagree with it.
    """
    try:
        scheme = scheme_from_name(sidecar["scheme"]).with_encoder(sidecar["encoder"])
    except ParamError as exc:
        raise ProtectError(f"scheme {sidecar['scheme']!r}: {exc}") from None
    fields = (sidecar["codec"], sidecar["progression"], float(sidecar["window"]), float(sidecar["offset"]))
    if fields != (scheme.codec, _progression(scheme, _encoder(scheme)), float(scheme.window), float(scheme.offset)):
        raise ProtectError(f"fields disagree with scheme {sidecar['scheme']!r}")
    if scheme.paper_name() != sidecar["scheme"]:
        raise ProtectError(f"scheme {sidecar['scheme']!r} is not in canonical form ({scheme.paper_name()!r})")
    return scheme


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's fields, checked.

    Raises:
        ProtectError: missing or malformed.
    """
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        raise ProtectError(f"no sidecar {path.name} next to it") from None
    except OSError as exc:
        raise ProtectError(f"sidecar {path.name} unreadable: {one_line(exc)}") from None
    if len(raw) > _MAX_SIDECAR_BYTES:
        raise ProtectError(f"sidecar {path.name}: larger than {_MAX_SIDECAR_BYTES} bytes, not a sidecar")
    try:
        data = parse_json(raw)
    except JsonError as exc:
        raise ProtectError(f"sidecar {path.name} unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("format") not in (SIDECAR_FORMAT, _OLD_FORMAT):
        raise ProtectError(f"sidecar {path.name}: not a {SIDECAR_FORMAT} (or {_OLD_FORMAT}) sidecar")
    required = {**_SIDECAR_KEYS, "path": str} if data["format"] == SIDECAR_FORMAT else _SIDECAR_KEYS
    for key, types in required.items():
        if not isinstance(data.get(key), types) or isinstance(data.get(key), bool):
            raise ProtectError(f"sidecar {path.name}: field {key!r} missing or malformed")
    try:
        scheme_of_sidecar(data)
    except ProtectError as exc:
        raise ProtectError(f"sidecar {path.name}: {exc}") from None
    return data

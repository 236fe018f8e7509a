"""``facesec protect`` / ``facesec unprotect``: selective encryption of image files.

``protect`` encodes each input image with a registered codestream scheme
(``lw4o6``: JPEG 2000, layer progression, window 4 % at offset 6 %; ``rw…``
resolution progression; ``pw…`` RPCL; ``jw…`` baseline JPEG; ``ja…`` its
amplitude bits only), encrypts its
window and writes it with a JSON sidecar ``<output>.json``
(:mod:`benchmark.cli.sidecar`: keys, synthetic nonce, tags). ``unprotect``
reads the sidecar and restores the plaintext codestream byte for byte (the
``.j2k`` / ``.jpg`` file ``protect`` encoded, not the original image file),
and refuses a file found anywhere but at the path its tag covers (renamed or
copied: it would restore as another sample). With ``--png`` it also writes
each restored codestream decoded as a PNG beside it (``OUT/a/b.j2k`` ->
``OUT/a/b.png``), by the scheme's own decoder: for lossless JPEG 2000 the
original pixels.

Folders are mirrored: ``IN/a/b.png`` becomes ``OUT/a/b.j2k`` (``.jpg`` for
JPEG) and ``OUT/a/b.j2k.json``. Each output is written atomically, its
sidecar after it, so a present sidecar means a complete output. A rerun
skips a file only when its sidecar matches the settings and key, the input
is unchanged (keyed input tag) and the output decrypts to a codestream with
the sidecar's keyed tag; anything else is redone, so an interrupted run
resumes and a damaged output is replaced.

Entries that are not processed are counted and listed, never dropped
silently: hidden files and folders, symbolic links (never followed inside a
folder; a link given as IN itself is the user's choice and is read), other
non-regular files and files that are not images. Nothing is written through a
symbolic link inside OUT. An OUT holding files protected under another key is
refused unless ``--mix-keys`` is given.

Exit codes: 0 all done, 1 some file failed (each is listed, the others are
done), 2 bad arguments or, for a single file, a bad input.
"""

from __future__ import annotations

import argparse
import hmac
import io
import json
import math
import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from benchmark.cli.sidecar import (
    ProtectError,
    bound_path,
    canonical,
    check_place,
    codestream_tag,
    file_keys,
    input_tag,
    make_sidecar,
    protect_codestream,
    read_pixels,
    read_sidecar,
    scheme_from_name,
    scheme_keys,
    scheme_of_sidecar,
    sidecar_path,
    synthetic_nonce,
    unprotect_codestream,
)
from benchmark.core.cache import atomic_write_bytes, atomic_write_text
from benchmark.core.component import CodestreamScheme, ParamError
from benchmark.core.keys import AppKey, KeySourceError, MasterKey
from benchmark.core.parallel import default_workers, map_chunks

__all__ = ["IMAGE_SUFFIXES", "KEY_RECIPE", "build_scheme", "protect_main", "unprotect_main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff")
_PROTECTED_SUFFIXES = (".j2k", ".j2c", ".jpg", ".jpeg")
_MAX_LISTED = 20
#: How to make a key: outside the source tree, readable by its owner alone, never over an existing key.
KEY_RECIPE = (
    "mkdir -p -m 700 ~/.config/facesec && (set -C; umask 077; head -c 32 /dev/urandom > ~/.config/facesec/facesec.key)"
)
#: Command-line options that set a scheme parameter of the same name.
_OPTION_PARAMS = ("restart", "quality", "restart_interval")


# --------------------------------------------------------------------------- jobs and outcomes


@dataclass(frozen=True)
class _Job:
    src: Path
    dst: Path
    sample_id: str  # posix path of src relative to IN (the file name for a single file)
    out_root: Path  # resolved OUT folder: nothing is written through a link below it
    place: str  # posix path of the protected file below its folder (its name for a single file)


@dataclass(frozen=True)
class _Outcome:
    sample_id: str
    status: str  # "done" | "skipped" | "failed"
    message: str = ""
    bad_input: bool = True  # failed on a bad input (exit 2 for a single file), not a bug


@dataclass(frozen=True)
class _Ignored:
    path: str
    reason: str


def _safe_target(job: _Job) -> None:
    """Refuse to write ``job.dst`` (or its sidecar) through a symbolic link inside OUT."""
    try:
        rel = job.dst.parent.resolve(strict=False).relative_to(job.out_root)
    except ValueError:
        raise ProtectError(f"output folder {job.dst.parent} lies outside {job.out_root} (a symbolic link?)") from None
    current = job.out_root
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            raise ProtectError(f"refusing to write through the symbolic link {current}")
    for target in (job.dst, sidecar_path(job.dst)):
        if target.is_symlink():
            raise ProtectError(f"refusing to replace the symbolic link {target}")


def _guarded(fn: Callable[..., _Outcome], job: _Job, *args: Any) -> _Outcome:
    try:
        return fn(job, *args)
    except ProtectError as exc:
        return _Outcome(job.sample_id, "failed", str(exc))
    except OSError as exc:
        return _Outcome(
            job.sample_id, "failed", f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
        )
    except Exception as exc:  # one odd file must not stop a large folder
        return _Outcome(job.sample_id, "failed", f"{type(exc).__name__}: {exc}", bad_input=False)


# --------------------------------------------------------------------------- protect one file


def _already_done(
    job: _Job, scheme: CodestreamScheme, app: AppKey, keys: tuple[bytes, bytes], expected: dict[str, Any]
) -> bool:
    """True when the output and its sidecar are complete, for this input, settings and key."""
    if not (job.dst.is_file() and sidecar_path(job.dst).is_file()):
        return False
    try:
        old = read_sidecar(sidecar_path(job.dst))
    except ProtectError:
        return False
    if any(old.get(k) != v for k, v in expected.items() if k != "facesec_version"):
        return False
    data = job.dst.read_bytes()
    if old["bytes"] != len(data):
        return False
    # A damaged output of the right size must not pass: decrypt and check the keyed tag.
    aes_key, mac_key = keys
    try:
        plaintext = scheme.decrypt(data, aes_key, synthetic_nonce(app, job.sample_id, old["tag"]))
    except ValueError:
        return False
    return hmac.compare_digest(codestream_tag(mac_key, job.sample_id, plaintext, path=job.place), old["tag"])


def _protect_one(job: _Job, scheme: CodestreamScheme, app: AppKey, keys: tuple[bytes, bytes]) -> _Outcome:
    _safe_target(job)
    raw = job.src.read_bytes()
    mac_key = keys[1]
    expected = make_sidecar(scheme, app, job.sample_id, job.place, input_tag=input_tag(mac_key, job.sample_id, raw))
    if _already_done(job, scheme, app, keys, expected):
        return _Outcome(job.sample_id, "skipped")
    # Decoded from the bytes just tagged: a file changing meanwhile cannot
    # leave a sidecar whose input tag vouches for other pixels.
    pixels = read_pixels(raw)
    try:
        plaintext = scheme.encode(pixels)
    except ValueError as exc:
        raise ProtectError(f"cannot encode: {exc}") from None
    protected, tag = protect_codestream(plaintext, scheme, app, job.sample_id, job.place)
    side = sidecar_path(job.dst)
    # A stale sidecar must not vouch for the new output while it is written.
    side.unlink(missing_ok=True)
    atomic_write_bytes(job.dst, protected)
    # After the output: a sidecar on disk implies a complete output.
    atomic_write_text(
        side, json.dumps({**expected, "tag": tag, "bytes": len(protected)}, indent=2, sort_keys=True) + "\n"
    )
    return _Outcome(job.sample_id, "done")


def _png_path(dst: Path) -> Path:
    """``OUT/a/b.j2k`` -> ``OUT/a/b.png``: the decoded image of a restored codestream."""
    return dst.with_suffix(".png")


def _write_png(path: Path, scheme: CodestreamScheme, codestream: bytes) -> None:
    if path.is_symlink():
        raise ProtectError(f"refusing to replace the symbolic link {path}")
    try:
        pixels = scheme.decode_one(codestream)
    except ValueError as exc:
        raise ProtectError(f"cannot decode the restored codestream: {exc}") from None
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _unprotect_one(job: _Job, master: MasterKey, apps: dict[str, AppKey], png: bool = False) -> _Outcome:
    _safe_target(job)
    side = read_sidecar(sidecar_path(job.src))
    # Before anything is written or skipped: a file out of its place would restore as another sample.
    check_place(side, job.place)
    if side["app_id"] not in apps:
        apps[side["app_id"]] = master.application(side["app_id"])
    app = apps[side["app_id"]]
    if job.dst.is_file() and app.key_id == side["key_id"]:
        # Resumable: an existing output that carries the right tag is the plaintext.
        scheme = scheme_of_sidecar(side)
        _, mac_key = file_keys(app, scheme.codec, canonical(side["scheme"], side["encoder"]))
        existing = job.dst.read_bytes()
        tag = codestream_tag(mac_key, side["sample_id"], existing, path=bound_path(side))
        if hmac.compare_digest(tag, side["tag"]):
            if png:  # cheap, and a damaged or missing PNG is replaced
                _write_png(_png_path(job.dst), scheme, existing)
            return _Outcome(job.sample_id, "skipped")
    plaintext = unprotect_codestream(job.src.read_bytes(), side, app, place=job.place)
    atomic_write_bytes(job.dst, plaintext)
    if png:
        _write_png(_png_path(job.dst), scheme_of_sidecar(side), plaintext)
    return _Outcome(job.sample_id, "done")


def _protect_chunk(jobs: Sequence[_Job], scheme: CodestreamScheme, master: MasterKey, app_id: str) -> list[_Outcome]:
    app = master.application(app_id)
    keys = scheme_keys(app, scheme)  # one parameter set per run: derived once per chunk
    return [_guarded(_protect_one, job, scheme, app, keys) for job in jobs]


def _unprotect_chunk(jobs: Sequence[_Job], master: MasterKey, png: bool = False) -> list[_Outcome]:
    apps: dict[str, AppKey] = {}
    return [_guarded(_unprotect_one, job, master, apps, png) for job in jobs]


def _run(fn: Callable[[Sequence[_Job]], list[_Outcome]], jobs: list[_Job], workers: int, desc: str) -> list[_Outcome]:
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


def _walk(root: Path, suffixes: Sequence[str]) -> tuple[list[Path], list[_Ignored]]:
    """Regular files under ``root`` with one of ``suffixes``, and every entry left out, with why.

    Links are never followed: a link inside the input could pull in files
    from anywhere, or loop.
    """
    found: list[Path] = []
    ignored: list[_Ignored] = []

    def skip(path: Path, reason: str) -> None:
        ignored.append(_Ignored(path.relative_to(root).as_posix(), reason))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                skip(here / d, "hidden folder")
            elif (here / d).is_symlink():
                skip(here / d, "symbolic link to a folder (not followed)")
            else:
                kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            path = here / f
            mode = path.lstat().st_mode
            if f.startswith("."):
                skip(path, "hidden file")
            elif stat.S_ISLNK(mode):
                skip(path, "symbolic link (not followed)")
            elif not stat.S_ISREG(mode):
                skip(path, "not a regular file")
            elif path.suffix.lower() not in suffixes:
                skip(path, "not a file this command reads (suffix)")
            else:
                found.append(path)
    return found, ignored


def _plan(
    src: Path, out: Path, suffixes: Sequence[str], rename: Callable[[Path], Path], *, writes_protected: bool
) -> tuple[list[_Job], list[_Outcome], list[_Ignored], Path]:
    """Jobs mirroring ``src`` into ``out`` (a folder), or the one job of a file.

    ``writes_protected``: the outputs are the protected files (``protect``),
    else the inputs are (``unprotect``); a job's ``place`` is the protected
    file's path below its folder.

    Returns:
        (jobs, failures found while planning, entries left out, output folder for the summary).

    Raises:
        ProtectError: bad arguments.
    """
    if not src.exists():
        raise ProtectError(f"{src}: no such file or folder")
    src_r, out_r = src.resolve(), out.resolve()
    if src.is_dir():
        if _is_within(out_r, src_r):
            raise ProtectError(f"{out}: the output folder must not be inside the input folder {src} (it would recurse)")
        if _is_within(src_r, out_r):
            raise ProtectError(f"{out}: the output folder must not contain the input folder {src}")
        if out.exists() and not out.is_dir():
            raise ProtectError(f"{out}: not a folder (the input is a folder)")
        files, ignored = _walk(src, suffixes)
        jobs = []
        for path in files:
            rel = path.relative_to(src)
            jobs.append(_Job(path, out / rename(rel), rel.as_posix(), out_r, rename(rel).as_posix()))
        jobs, failures = _one_per_target(jobs, lambda job: job.dst, out)
        return jobs, failures, ignored, out
    dst = out / rename(Path(src.name)) if out.is_dir() else out
    if dst.resolve() == src_r:
        raise ProtectError(f"{out}: the output must not be the input file")
    # A single protected file is bound to its name: the output's (chosen freely) when protecting.
    place = dst.name if writes_protected else src.name
    return [_Job(src, dst, src.name, dst.parent.resolve(), place)], [], [], dst.parent


def _one_per_target(
    jobs: Sequence[_Job], target: Callable[[_Job], Path], out: Path
) -> tuple[list[_Job], list[_Outcome]]:
    """The jobs whose ``target`` no other job shares, and a failure for each of the others."""
    by_target: dict[Path, list[_Job]] = {}
    for job in jobs:
        by_target.setdefault(target(job), []).append(job)
    kept = [group[0] for group in by_target.values() if len(group) == 1]
    # Which of a.png and a.bmp should become a.j2k is a guess: do neither.
    failures = [
        _Outcome(
            job.sample_id,
            "failed",
            f"{' and '.join(j.sample_id for j in group)} would both become {path.relative_to(out).as_posix()}",
        )
        for path, group in by_target.items()
        if len(group) > 1
        for job in group
    ]
    return kept, failures


def _foreign_keys(jobs: Sequence[_Job], out_dir: Path, single: bool, key_id: str) -> list[str]:
    """Key ids other than ``key_id`` found in the sidecars of OUT (of the one output for a single file)."""
    if single:
        paths = [sidecar_path(job.dst) for job in jobs]
    else:
        paths = [p for p in out_dir.rglob("*.json") if not p.is_symlink()] if out_dir.is_dir() else []
    found = set()
    for path in paths:
        if not path.is_file():
            continue
        try:
            side = read_sidecar(path)
        except ProtectError:
            continue  # not a sidecar of ours, or damaged: it protects nothing
        if side["key_id"] != key_id:
            found.add(side["key_id"])
    return sorted(found)


def _load_key(args: argparse.Namespace) -> MasterKey:
    if args.key_file is not None and args.key_env is not None:
        raise ProtectError("give --key-file or --key-env, not both")
    if args.key_file is None and args.key_env is None:
        raise ProtectError(
            "a key is required: --key-file FILE or --key-env NAME (a random key would make the files "
            f"impossible to unprotect); make one outside any repository with: {KEY_RECIPE}"
        )
    try:
        return MasterKey.from_file(args.key_file) if args.key_file is not None else MasterKey.from_env(args.key_env)
    except KeySourceError as exc:
        raise ProtectError(str(exc)) from None


def _workers(args: argparse.Namespace) -> int:
    if args.workers is None:
        return default_workers()
    if args.workers < 1:
        raise ProtectError(f"--workers: {args.workers} is not >= 1")
    return int(args.workers)


def build_scheme(name: str, options: dict[str, Any]) -> CodestreamScheme:
    """The scheme of ``--scheme NAME`` with the coding options given on the command line.

    Args:
        name: A paper-style name (``lw4o6``, ``rw4o6-restart``, ``jw10o0``).
        options: Option name -> value, for options given (``restart``, ``quality``, ``restart_interval``).

    Raises:
        ProtectError: unknown name, an option the scheme does not take, or a refused value.
    """
    scheme = scheme_from_name(name)
    for option in options:
        if option not in scheme.param_names():
            flag = "--" + option.replace("_", "-")
            raise ProtectError(f"{flag} does not apply to {name} ({type(scheme).summary()})")
    try:
        return type(scheme).from_params({**scheme.get_params(), **options})
    except ParamError as exc:
        raise ProtectError(f"--{exc.param.replace('_', '-')}: {exc.value!r} {exc.allowed}") from None


def _report(verb: str, outcomes: list[_Outcome], ignored: list[_Ignored], out_dir: Path, single: Path | None) -> int:
    """Failures (stderr), entries left out and the summary line (stdout)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if single is not None and failed:
        o = failed[0]
        print(f"error: {single}: {o.message}", file=sys.stderr)
        return EXIT_BAD_INPUT if o.bad_input else EXIT_FAILED
    if len(failed) > 1 and len(failed) == len(outcomes) and len({o.message for o in failed}) == 1:
        # A wrong key fails every file alike: one line says it all.
        print(f"error: all {len(failed)} files failed: {failed[0].message}", file=sys.stderr)
    else:
        for o in failed[:_MAX_LISTED]:
            print(f"failed: {o.sample_id}: {o.message}", file=sys.stderr)
        if len(failed) > _MAX_LISTED:
            print(f"failed: … and {len(failed) - _MAX_LISTED} more", file=sys.stderr)
    for item in ignored[:_MAX_LISTED]:
        print(f"ignored: {item.path}: {item.reason}")
    if len(ignored) > _MAX_LISTED:
        print(f"ignored: … and {len(ignored) - _MAX_LISTED} more")
    n = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    reasons: dict[str, int] = {}
    for item in ignored:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    left_out = f", {len(ignored)} ignored ({', '.join(f'{v} {k}' for k, v in reasons.items())})" if ignored else ""
    print(
        f"{verb}: {n['done']} done, {n['skipped']} skipped (already done), {n['failed']} failed{left_out}; "
        f"output: {out_dir}"
    )
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- commands


def protect_main(args: argparse.Namespace) -> int:
    """``facesec protect``: see the module docstring. Returns the exit code."""
    try:
        # Options not given are None (and --restart False); 0 is a value.
        given = {k: getattr(args, k) for k in _OPTION_PARAMS}
        options = {k: v for k, v in given.items() if v is not None and v is not False}
        scheme = build_scheme(args.scheme, options)
        if not args.app_id:
            raise ProtectError("--app-id: must not be empty")
        master = _load_key(args)
        workers = _workers(args)
        out = args.output
        if args.input.is_file() and not out.is_dir():
            allowed = (".j2k", ".j2c") if scheme.codec == "j2k" else (".jpg", ".jpeg")
            if out.suffix.lower() not in allowed:
                raise ProtectError(f"{out}: the output of {scheme.label()} must end in {' or '.join(allowed)}")
        jobs, failures, ignored, out_dir = _plan(
            args.input, out, IMAGE_SUFFIXES, lambda rel: rel.with_suffix(scheme.suffix), writes_protected=True
        )
        inputs = {job.src.resolve() for job in jobs}
        for job in jobs:  # JPEG outputs are .jpg: never let one land on an input
            if job.dst.resolve() in inputs or sidecar_path(job.dst).resolve() in inputs:
                raise ProtectError(f"{job.dst}: would overwrite an input file")
        app_key_id = master.application(args.app_id).key_id
        foreign = _foreign_keys(jobs, out_dir, args.input.is_file(), app_key_id)
        if foreign and not args.mix_keys:
            raise ProtectError(
                f"{out_dir}: holds files protected under another key or application (key id {', '.join(foreign)}); "
                "protect into another folder, or pass --mix-keys to re-protect them under this key"
            )
    except ProtectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    single = args.input if args.input.is_file() else None
    fn = partial(_protect_chunk, scheme=scheme, master=master, app_id=args.app_id)
    outcomes = failures + _run(fn, jobs, workers, "protect")
    return _report("protect", outcomes, ignored, out_dir, single)


def unprotect_main(args: argparse.Namespace) -> int:
    """``facesec unprotect``: restore the plaintext codestreams. Returns the exit code."""
    try:
        master = _load_key(args)
        workers = _workers(args)
        jobs, failures, ignored, out_dir = _plan(
            args.input, args.output, _PROTECTED_SUFFIXES, lambda rel: rel, writes_protected=False
        )
        # A sidecar is read with its protected file: not an entry left out.
        inputs = {job.sample_id for job in jobs} | {o.sample_id for o in failures}
        ignored = [i for i in ignored if not (i.path.endswith(".json") and i.path[: -len(".json")] in inputs)]
        if args.png:
            if any(_png_path(job.dst) == job.dst for job in jobs):
                raise ProtectError(f"{args.output}: with --png the restored codestream must not end in .png")
            # a/b.j2k and a/b.jpg (two schemes into one folder) would both decode to a/b.png.
            jobs, clashes = _one_per_target(jobs, lambda job: _png_path(job.dst), out_dir)
            failures += clashes
    except ProtectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    single = args.input if args.input.is_file() else None
    fn = partial(_unprotect_chunk, master=master, png=args.png)
    outcomes = failures + _run(fn, jobs, workers, "unprotect")
    return _report("unprotect", outcomes, ignored, out_dir, single)

"""Speed benchmarks behind ``bench.py perf``.

Each benchmark is a function registered with :func:`benchmark` that takes only
keyword arguments with full-size defaults (tests call it with tiny sizes) and
returns one flat record (a list of them for a table, as ``e2e``'s stages):
``name`` plus numbers, with times in seconds under keys ending in ``_s``. This is a plain name -> function table for timing code,
not a component registry.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from attacks.finetune import FineTuneAttack
from attacks.inpaint import InpaintAttack
from benchmark.codecs.cipher import decrypt_ranges, encrypt_j2k, encrypt_ranges
from benchmark.codecs.j2k import encode_j2k, locate_packets
from benchmark.core.keys import MasterKey
from benchmark.core.registry import SCHEMES
from benchmark.data.datasets.synthetic import SyntheticFaces
from benchmark.metrics.unlinkability import unlinkability
from benchmark.metrics.verification import DEFAULT_TARGETS, compute_all
from schemes.warp import RemapScheme, WarpScheme, build_warp_maps

__all__ = [
    "UnknownBenchmarkError",
    "benchmark",
    "names",
    "run",
    "format_table",
    "best_time",
    "metrics_vs_pyeer",
    "unlinkability_speed",
    "cipher_throughput",
    "j2k_protect_cost",
    "warp_throughput",
    "inpaint_training",
    "finetune_training",
    "end_to_end",
    "hostile_yaml",
    "QUICKSTART",
]

Record = dict[str, Any]
BenchmarkFn = Callable[..., Record | list[Record]]
_F = TypeVar("_F", bound=BenchmarkFn)

_BENCHMARKS: dict[str, BenchmarkFn] = {}


class UnknownBenchmarkError(KeyError):
    """Benchmark names that are not defined; a KeyError like the registries' lookups."""

    def __init__(self, unknown: Sequence[str], known: Sequence[str]):
        self.unknown, self.known = list(unknown), list(known)
        super().__init__(
            f"unknown benchmark(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(known) or 'none'})"
        )

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


def benchmark(name: str) -> Callable[[_F], _F]:
    """Decorator adding a benchmark function to the table under ``name``.

    Raises:
        ValueError: if another function already uses ``name``.
    """

    def decorator(fn: _F) -> _F:
        existing = _BENCHMARKS.get(name)
        if existing is not None and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"benchmark {name!r} is already defined by {existing.__qualname__}")
        _BENCHMARKS[name] = fn
        return fn

    return decorator


def names() -> list[str]:
    """Names of every defined benchmark, sorted."""
    return sorted(_BENCHMARKS)


def run(names: Sequence[str] | None = None) -> list[Record]:
    """Run benchmarks at full size, in the given order (all when ``None``).

    Raises:
        UnknownBenchmarkError: on an unknown name (before anything runs).
    """
    selected = sorted(_BENCHMARKS) if names is None else list(names)
    unknown = [n for n in selected if n not in _BENCHMARKS]
    if unknown:
        raise UnknownBenchmarkError(unknown, sorted(_BENCHMARKS))
    records: list[Record] = []
    for n in selected:
        got = _BENCHMARKS[n]()
        records.extend(got if isinstance(got, list) else [got])
    return records


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` calls of ``fn``, and its last result.

    The minimum is the least noisy estimate of the cost itself: other load on
    the machine only ever adds time.
    """
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _format_cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        return str(value)
    return f"{value:.4g}"


def format_table(records: Sequence[Record]) -> str:
    """Records as a plain-text table, one row each, columns in first-seen key order."""
    if not records:
        return "(no benchmarks)"
    columns: list[str] = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    cells = [[_format_cell(r.get(c, "")) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        # Names read best left-aligned, numbers right-aligned.
        return "  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(values, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(row) for row in cells)])


# --------------------------------------------------------------------------- benchmarks


@benchmark("metrics_vs_pyeer")
def metrics_vs_pyeer(
    *,
    n_scores: int = 1_000_000,
    genuine_fraction: float = 0.1,
    repeats: int = 3,
    seed: int = 0,
) -> Record:
    """EER and FNMR at three target FMRs: :func:`compute_all` against pyeer.

    pyeer's side is its own pipeline on the same scores: ``calculate_roc``,
    ``get_eer_values`` and ``get_fmr_op`` per target (the function its
    ``eer_info`` uses for FNMR at an FMR operating point). Scores are seeded
    Gaussians, genuine N(0.6, 0.15) and impostor N(0.1, 0.1), roughly cosine
    similarities of a decent face recognizer.

    Args:
        n_scores: Total number of scores (genuine plus impostor).
        genuine_fraction: Share of genuine scores.
        repeats: Timed calls per implementation; the fastest is reported.
        seed: Seed of the score generator.

    Returns:
        ``name``, ``n_scores``, ``ours_s``, ``pyeer_s``, ``speedup``
        (pyeer time / ours) and ``eer_agrees`` (our EER inside pyeer's
        [EER_low, EER_high]).
    """
    # Imported here so that merely listing benchmarks does not need pyeer.
    # pyeer.eer_stats is safe to import alone; pyeer.eer_info needs pkg_resources.
    from pyeer.eer_stats import calculate_roc, get_eer_values, get_fmr_op

    rng = np.random.default_rng(seed)
    n_genuine = max(1, int(round(n_scores * genuine_fraction)))
    genuine = rng.normal(0.6, 0.15, n_genuine)
    impostor = rng.normal(0.1, 0.1, max(1, n_scores - n_genuine))
    targets = DEFAULT_TARGETS

    def pyeer_metrics() -> tuple[float, float, list[float]]:
        _, fmr, fnmr = calculate_roc(genuine, impostor)
        _, low, high, _ = get_eer_values(fmr, fnmr)
        return low, high, [float(get_fmr_op(fmr, fnmr, t)[1]) for t in targets]

    ours_s, ours = best_time(lambda: compute_all(genuine, impostor, targets), repeats)
    pyeer_s, (low, high, _) = best_time(pyeer_metrics, repeats)
    return {
        "name": "metrics_vs_pyeer",
        "n_scores": int(genuine.size + impostor.size),
        "ours_s": ours_s,
        "pyeer_s": pyeer_s,
        "speedup": pyeer_s / ours_s,
        "eer_agrees": bool(low <= ours["eer"] <= high),
    }


@benchmark("unlinkability")
def unlinkability_speed(
    *,
    n_scores: int = 1_000_000,
    mated_fraction: float = 0.1,
    n_subjects: int = 1000,
    n_null: int = 20,
    n_boot: int = 200,
    target_s: float = 5.0,
    repeats: int = 3,
    seed: int = 0,
) -> Record:
    """D<->sys with its permutation null and bootstrap CI, on ``n_scores`` scores.

    Timed twice: bootstrapping individual comparisons (what the metric
    component does alone) and resampling ``n_subjects`` probe subjects (what
    the pipeline does). Scores are seeded Gaussians, mated N(2, 1) and
    non-mated N(0, 1); subject ids are drawn uniformly.

    Args:
        n_scores: Total number of scores (mated plus non-mated).
        mated_fraction: Share of mated scores.
        n_subjects: Number of distinct probe subjects.
        n_null: Relabellings in the permutation null.
        n_boot: Bootstrap resamples.
        target_s: The time to stay under (the acceptance target).
        repeats: Timed calls per variant; the fastest is reported.
        seed: Seed of the score generator and of the metric.

    Returns:
        ``name``, ``n_scores``, ``comparisons_s``, ``subjects_s``,
        ``target_s`` and ``meets_target`` (both variants under ``target_s``).
    """
    rng = np.random.default_rng(seed)
    n_mated = max(1, int(round(n_scores * mated_fraction)))
    mated = rng.normal(2.0, 1.0, n_mated)
    nonmated = rng.normal(0.0, 1.0, max(1, n_scores - n_mated))
    mated_subjects = rng.integers(0, n_subjects, mated.size)
    nonmated_subjects = rng.integers(0, n_subjects, nonmated.size)

    def run(with_subjects: bool) -> Any:
        subjects = (mated_subjects, nonmated_subjects) if with_subjects else (None, None)
        return unlinkability(
            mated,
            nonmated,
            n_null=n_null,
            n_boot=n_boot,
            seed=seed,
            mated_subjects=subjects[0],
            nonmated_subjects=subjects[1],
        )

    comparisons_s, _ = best_time(lambda: run(False), repeats)
    subjects_s, _ = best_time(lambda: run(True), repeats)
    return {
        "name": "unlinkability",
        "n_scores": int(mated.size + nonmated.size),
        "comparisons_s": comparisons_s,
        "subjects_s": subjects_s,
        "target_s": float(target_s),
        "meets_target": bool(max(comparisons_s, subjects_s) < target_s),
    }


def _synthetic_faces(n: int) -> np.ndarray:
    """``n`` synthetic RGB faces, one per identity (deterministic)."""
    images = SyntheticFaces(n_subjects=n, n_images=1, seed=0).load().images
    assert images is not None  # a generated dataset always has its images
    return images


def _grey(images: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 luma, the usual grey conversion of face samples.
    return (images @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8)


@benchmark("cipher")
def cipher_throughput(
    *, size_mb: float = 64.0, n_faces: int = 20, repeats: int = 3, target_mb_s: float = 150.0
) -> Record:
    """Format-compliant J2K byte rule against plain AES-CTR, in MB/s.

    The buffer is real packet-body data: the bodies of ``n_faces`` synthetic
    112x112 grey faces coded by :func:`benchmark.codecs.j2k.encode_j2k`
    (default parameters), concatenated and repeated up to ``size_mb`` MB,
    then encrypted as one range (what :func:`encrypt_j2k` does per body, in
    bulk). Plain AES-CTR is ``cryptography``'s encryptor over the same bytes.

    Args:
        size_mb: Buffer size in MB (10**6 bytes).
        n_faces: Faces whose bodies make up the buffer.
        repeats: Timed calls per variant; the fastest is reported.
        target_mb_s: The throughput to reach (acceptance target).

    Returns:
        ``name``, ``size_mb``, ``ff_per_kb`` (FF bytes per 1000 body bytes),
        ``encrypt_mb_s``, ``decrypt_mb_s``, ``aes_ctr_mb_s``, ``target_mb_s``
        and ``meets_target`` (encryption and decryption at or above target).
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    faces = _grey(_synthetic_faces(n_faces))
    bodies = []
    for face in faces:
        cs = encode_j2k(face)
        bodies.append(np.frombuffer(cs, np.uint8)[locate_packets(cs).body_mask(len(cs))])
    n = max(1, int(size_mb * 1e6))
    data = np.resize(np.concatenate(bodies), n).tobytes()
    key, nonce = bytes(range(32)), bytes(range(16))
    ranges = (np.array([0]), np.array([n]))

    aes_s, _ = best_time(lambda: Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor().update(data), repeats)
    enc_s, enc = best_time(lambda: encrypt_ranges(data, *ranges, key, nonce), repeats)
    dec_s, _ = best_time(lambda: decrypt_ranges(enc, *ranges, key, nonce), repeats)
    mb = n / 1e6
    return {
        "name": "cipher",
        "size_mb": mb,
        "ff_per_kb": float(np.mean(np.frombuffer(data, np.uint8) == 0xFF) * 1000),
        "encrypt_mb_s": mb / enc_s,
        "decrypt_mb_s": mb / dec_s,
        "aes_ctr_mb_s": mb / aes_s,
        "target_mb_s": float(target_mb_s),
        "meets_target": bool(min(mb / enc_s, mb / dec_s) >= target_mb_s),
    }


def _encode_all(faces: np.ndarray) -> list[bytes]:
    return [encode_j2k(f) for f in faces]


def _encrypt_all(streams: list[bytes], key: bytes, nonce: bytes) -> list[bytes]:
    return [encrypt_j2k(cs, key, nonce, 100.0, 0.0) for cs in streams]


@benchmark("j2k_protect")
def j2k_protect_cost(*, n_faces: int = 50, repeats: int = 3, target_share: float = 0.05) -> Record:
    """Per-image protection cost (locate packets + encrypt) next to J2K encoding.

    ``n_faces`` synthetic 112x112 faces, grey (luma) and RGB, coded with the
    default :class:`~benchmark.codecs.j2k.J2KParams` (LRCP, 6 layers, 6
    resolutions, SOP/EPH) and protected with a 100 % window
    (:func:`~benchmark.codecs.cipher.encrypt_j2k`, which parses the
    codestream and encrypts every packet body).

    Args:
        n_faces: Number of faces.
        repeats: Timed passes over all faces; the fastest is reported.
        target_share: Protection time / encoding time to stay under.

    Returns:
        ``name``, ``n_faces``, per-image ``encode_s``, ``protect_s``,
        ``protect_share`` (protect / encode) for grey faces, the same three
        with an ``rgb_`` prefix, ``target_share`` and ``meets_target`` (both
        shares under target).
    """
    rgb = _synthetic_faces(n_faces)
    key, nonce = bytes(range(32)), bytes(range(16))
    record: Record = {"name": "j2k_protect", "n_faces": int(n_faces)}
    for prefix, faces in (("", _grey(rgb)), ("rgb_", rgb)):
        encode_s, streams = best_time(functools.partial(_encode_all, faces), repeats)
        protect_s, _ = best_time(functools.partial(_encrypt_all, streams, key, nonce), repeats)
        record[f"{prefix}encode_s"] = encode_s / len(faces)
        record[f"{prefix}protect_s"] = protect_s / len(faces)
        record[f"{prefix}protect_share"] = protect_s / encode_s
    record["target_share"] = float(target_share)
    record["meets_target"] = bool(max(record["protect_share"], record["rgb_protect_share"]) <= target_share)
    return record


@benchmark("warp")
def warp_throughput(
    *, n_faces: int = 2000, scheme: str = "warp_16_6", repeats: int = 3, target_images_s: float = 1000.0
) -> Record:
    """Cancelable warping and block re-mapping throughput, single thread, in images/s.

    ``n_faces`` synthetic 112x112 grey faces (luma in all three channels, the
    layout :meth:`~benchmark.core.component.Scheme.protect` takes) are protected
    under one application key whose map is already cached, so the figure is
    the cost of applying a transform; building one warp map is timed apart.
    OpenCV is held to one thread for the measurement (and restored after).

    Args:
        n_faces: Number of faces per timed call.
        scheme: Registered warp scheme (a ``warp_B_D`` preset or ``warp``).
        repeats: Timed calls per variant; the fastest is reported.
        target_images_s: The warping throughput to reach (acceptance target).

    Returns:
        ``name``, ``scheme``, ``n_faces``, ``warp_images_s``,
        ``remap_images_s`` (block re-mapping, 16-pixel blocks),
        ``map_build_s`` (one uncached warp map), ``target_images_s`` and
        ``meets_target`` (warping at or above target).
    """
    import cv2

    faces = _grey(_synthetic_faces(min(n_faces, 50)))
    grey = np.repeat(np.resize(faces, (n_faces, *faces.shape[1:]))[..., None], 3, axis=3)
    key = MasterKey(bytes(range(32))).application("perf")
    ids, subjects = [str(i) for i in range(n_faces)], ["s"] * n_faces
    warp = SCHEMES.get(scheme)()
    if not isinstance(warp, WarpScheme):
        raise UnknownBenchmarkError(
            [f"warp scheme {scheme!r}"], [n for n, c in SCHEMES.items() if issubclass(c, WarpScheme)]
        )
    remap = RemapScheme(block=16)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        warp.protect(grey[:1], key, ids[:1], subjects[:1])  # build and cache the map
        remap.protect(grey[:1], key, ids[:1], subjects[:1])
        warp_s, _ = best_time(lambda: warp.protect(grey, key, ids, subjects), repeats)
        remap_s, _ = best_time(lambda: remap.protect(grey, key, ids, subjects), repeats)
        seed = key.seed("warp/field")
        build_s, _ = best_time(lambda: build_warp_maps(seed, int(warp.cell), float(warp.displacement)), repeats)
    finally:
        cv2.setNumThreads(threads)
    return {
        "name": "warp",
        "scheme": warp.label(),
        "n_faces": int(n_faces),
        "warp_images_s": n_faces / warp_s,
        "remap_images_s": n_faces / remap_s,
        "map_build_s": build_s,
        "target_images_s": float(target_images_s),
        "meets_target": bool(n_faces / warp_s >= target_images_s),
    }


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


@benchmark("inpaint")
def inpaint_training(
    *, n_pairs: int = 3264, n_val: int = 384, epochs: int | None = None, device: str = "cpu"
) -> Record:
    """Time and peak memory to train ``inpaint`` with its shipped defaults on one setting.

    The defaults match one setting of ``protocols/inpainting.yaml`` on
    lfw-dev (1,824 attacker faces, 10 % held out for validation, 2 keys per
    face: 3,264 training and 384 validation pairs of 112x112 faces). Inputs
    are noise: the cost of a UNet does not depend on what the pixels show.

    Args:
        n_pairs: Training pairs.
        n_val: Validation pairs.
        epochs: Epochs, passed as ``max_epochs`` (None: the attack's default budget).
        device: ``cpu`` (the reference) or ``cuda``.

    Returns:
        ``name``, ``n_pairs``, ``epochs``, ``train_s`` (all epochs),
        ``s_per_pair_epoch``, ``infer_s_per_image`` and ``peak_rss_mb``
        (the process's peak resident memory after training).
    """
    rng = np.random.default_rng(0)
    faces = np.repeat(rng.integers(0, 256, (n_pairs + n_val, 112, 112, 1), dtype=np.uint8), 3, axis=3)
    noisy = np.repeat(rng.integers(0, 256, (n_pairs + n_val, 112, 112, 1), dtype=np.uint8), 3, axis=3)
    params = {"device": device} if epochs is None else {"device": device, "max_epochs": epochs}
    attack = InpaintAttack.from_params(params)
    start = time.perf_counter()
    attack.fit(
        noisy[:n_pairs],
        faces[:n_pairs],
        val_inputs=noisy[n_pairs:] if n_val else None,
        val_originals=faces[n_pairs:] if n_val else None,
    )
    train_s = time.perf_counter() - start
    trained = len(attack.history_)  # epochs run: training may stop on a plateau before the budget
    infer_s, _ = best_time(lambda: attack.reconstruct(noisy[: min(256, n_pairs)]), 1)
    return {
        "name": "inpaint",
        "n_pairs": int(n_pairs),
        "epochs": trained,
        "train_s": train_s,
        "s_per_pair_epoch": train_s / (n_pairs * trained),
        "infer_s_per_image": infer_s / min(256, n_pairs),
        "peak_rss_mb": _peak_rss_mb(),
    }


@benchmark("finetune")
def finetune_training(
    *, n_faces: int = 1632, n_val: int = 192, n_subjects: int = 200, epochs: int | None = None, device: str = "cpu"
) -> Record:
    """Time and peak memory of one ``finetune`` with its shipped defaults.

    The defaults match one training of ``protocols/finetune-generalisation.yaml``
    on lfw-dev (1,824 attacker faces of 222 subjects, 10 % of the subjects held
    out, one key per face: 1,632 training and 192 validation faces). Inputs are
    noise: the cost of the network does not depend on what the pixels show.

    Args:
        n_faces: Training faces.
        n_val: Validation faces.
        n_subjects: Identities (the head's classes).
        epochs: Epochs, passed as ``max_epochs`` (None: the attack's default budget).
        device: ``cpu`` (the reference) or ``cuda``.

    Returns:
        ``name``, ``n_faces``, ``epochs``, ``train_s`` (frozen trunk once,
        then every epoch and validation), ``trunk_s_per_face`` (the frozen
        part, computed once per fit), ``s_per_face_epoch`` (the rest),
        ``embed_s_per_face`` and ``peak_rss_mb``.
    """
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (n_faces + n_val, 112, 112, 3), dtype=np.uint8)
    # Validation subjects have several faces each (whole subjects are held out), so pairs are mated.
    labels = np.concatenate([np.arange(n_faces) % n_subjects, n_subjects + np.arange(n_val) % max(1, n_val // 8)])
    params = {"device": device} if epochs is None else {"device": device, "max_epochs": epochs}
    attack = FineTuneAttack.from_params(params)
    start = time.perf_counter()
    attack.fit(
        faces[:n_faces],
        labels[:n_faces],
        val_inputs=faces[n_faces:] if n_val else None,
        val_labels=labels[n_faces:] if n_val else None,
        val_references=faces[n_faces:] if n_val else None,
    )
    train_s = time.perf_counter() - start
    epochs_s = sum(h["seconds"] for h in attack.history_)
    trained = len(attack.history_) - 1  # epoch 0 is the pretrained model; training may stop on a plateau
    n_embed = min(256, n_faces)
    embed_s, _ = best_time(lambda: attack.embed(faces[:n_embed]), 1)
    return {
        "name": "finetune",
        "n_faces": int(n_faces),
        "epochs": trained,
        "train_s": train_s,
        "trunk_s_per_face": (train_s - epochs_s) / (n_faces + n_val),
        "s_per_face_epoch": epochs_s / (n_faces * trained),
        "embed_s_per_face": embed_s / n_embed,
        "peak_rss_mb": _peak_rss_mb(),
    }


# --------------------------------------------------------------------------- end to end

#: The protocol ``e2e`` times by default (embedded demo faces: runs anywhere).
QUICKSTART = Path(__file__).resolve().parents[2] / "protocols" / "quickstart.yaml"


class _InProcess:
    """Runs every chunk here, isolated or not: a stage's work alone, without pools or isolation."""

    workers = 1

    def map(self, fn: Callable[[Any], Any], chunks: Sequence[Any], *, isolated: bool = False) -> Any:
        for i, chunk in enumerate(chunks):
            yield i, fn(chunk)

    def close(self) -> None:
        """Nothing to release."""


@benchmark("hostile_yaml")
def hostile_yaml(*, size_mb: float = 50.0, at_bound: bool = True, target_s: float = 1.0) -> list[Record]:
    """How fast, and in how much memory, a hostile protocol file is refused.

    A protocol of ``size_mb`` MB, as one long list and as one long string, is
    loaded by :func:`benchmark.engine.protocol.load_protocol` (which must
    refuse it before reading it); with ``at_bound``, so is the costliest file
    within :data:`~benchmark.core.strict_yaml.MAX_BYTES`: a list of one-digit
    items, refused once :data:`~benchmark.core.strict_yaml.MAX_VALUES` of
    them are composed. Each file is timed once without and once with
    ``tracemalloc`` (which slows Python down, so it only gives the memory).

    Args:
        size_mb: Size of the oversized files, in MB (10**6 bytes).
        at_bound: Also time the costliest file within the bound.
        target_s: Seconds a refusal should take at most.

    Returns:
        One record per file: ``form``, ``bytes``, ``refuse_s``, ``peak_mb``
        (Python allocations), ``error`` (the message, which must be the size
        error for the oversized files), ``target_s``, ``meets_target``.
    """
    import tracemalloc

    from benchmark.core.strict_yaml import MAX_BYTES
    from benchmark.engine.protocol import ProtocolError, load_protocol

    head = "name: hostile\nnotes:"
    forms = {
        "list": (head + "\n", "- 0\n", int(size_mb * 1e6)),
        "string": (head + " ", "y", int(size_mb * 1e6)),
    }
    if at_bound:
        forms["list-at-bound"] = (head + "\n", "- 0\n", MAX_BYTES)
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="facesec-hostile-") as tmp:
        for form, (start, item, size) in forms.items():
            path = Path(tmp) / f"{form}.yaml"
            with path.open("w") as fh:
                fh.write(start)
                fh.write(item * ((size - len(start)) // len(item)))

            def refuse(path: Path = path) -> str:
                try:
                    load_protocol(path)
                except ProtocolError as exc:
                    return exc.message
                return "accepted"

            seconds, error = best_time(refuse, 1)
            tracemalloc.start()
            try:
                refuse()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            records.append(
                {
                    "name": "hostile_yaml",
                    "form": form,
                    "bytes": path.stat().st_size,
                    "refuse_s": seconds,
                    "peak_mb": peak / 1e6,
                    "error": error,
                    "target_s": float(target_s),
                    "meets_target": bool(seconds <= target_s),
                }
            )
    return records


@benchmark("e2e")
def end_to_end(
    *, protocol: str | Path = QUICKSTART, overrides: Sequence[str] = (), workers: int = 1, warmup: bool = True
) -> list[Record]:
    """A protocol run end to end, stage by stage, against each stage's work timed alone.

    The harness side is a whole run as ``bench.py run`` does it (cold cache in
    a temporary folder, executor, isolation of decodes, cache writes, results,
    score files, the HTML report). Then every computed stage's work (its
    pure ``compute`` over the same inputs) runs again alone, in this
    process, without cache, pool or isolation, and the report is rendered
    again. With ``warmup`` a first, untimed run loads imports and models, so
    that both sides are timed in a warm process: the overhead is the
    harness's own, not the first import of matplotlib or a model.

    Args:
        protocol: Protocol file.
        overrides: ``--set`` style ``key=value`` overrides.
        workers: Worker processes of the harness run (1 compares like with like:
            the work alone runs on one core).
        warmup: Run once, untimed, first.

    Returns:
        One record per stage (``items`` counted in its largest output:
        images, features or scores; ``harness_s`` every call of the stage in
        the run, cache hits included; ``alone_s`` its work alone;
        ``overhead_pct``), then ``total`` (the run's wall time, protocol
        loading to report, against the sum of the work alone and one report
        rendering).
    """
    # Imported here: the engine and the report renderer are only needed by this benchmark.
    from benchmark.core.cache import Cache
    from benchmark.core.executors import LocalExecutor, using
    from benchmark.engine.pipeline import RunOptions, run_protocol
    from benchmark.engine.protocol import load_protocol
    from reports.render import write_report

    def harness(folder: Path) -> tuple[Any, float, float]:
        start = time.perf_counter()
        lp = load_protocol(Path(protocol), list(overrides))
        executor = LocalExecutor(workers=workers)
        cache = Cache(folder / "cache")
        opts = RunOptions(out=folder / "run", cache=cache, workers=workers, executor=executor, keep_work=True)
        try:
            output = run_protocol(lp, opts)
        finally:
            executor.close()
        report_start = time.perf_counter()
        write_report(output.results, folder / "run" / "report.html")
        end = time.perf_counter()
        return output, end - start, end - report_start

    with tempfile.TemporaryDirectory(prefix="facesec-e2e-") as tmp:
        if warmup:
            harness(Path(tmp) / "warmup")
        output, total_s, report_harness_s = harness(Path(tmp) / "timed")
        stages: dict[str, dict[str, float]] = {}
        for record in output.engine.records:
            row = stages.setdefault(record.stage, {"items": 0, "harness_s": 0.0, "alone_s": 0.0})
            row["items"] += record.items if not record.hit else 0
            row["harness_s"] += record.seconds
        with using(_InProcess()):
            for record, compute in output.engine.work:
                start = time.perf_counter()
                compute()
                stages[record.stage]["alone_s"] += time.perf_counter() - start
        report_s, _ = best_time(lambda: write_report(output.results, Path(tmp) / "alone.html"), 1)
    stages["report"] = {"items": 1, "harness_s": report_harness_s, "alone_s": report_s}
    records = [_e2e_record(stage, row) for stage, row in stages.items()]
    alone_total = sum(row["alone_s"] for row in stages.values())
    records.append(_e2e_record("total", {"items": 0, "harness_s": total_s, "alone_s": alone_total}))
    return records


def _e2e_record(stage: str, row: dict[str, float]) -> Record:
    harness_s, alone_s, items = row["harness_s"], row["alone_s"], int(row["items"])
    measured = harness_s > 0 and alone_s > 0
    return {
        "name": "e2e",
        "stage": stage,
        "items": items,
        "harness_s": harness_s,
        "alone_s": alone_s,
        "harness_items_per_s": items / harness_s if items and measured and harness_s > 0 else float("nan"),
        "alone_items_per_s": items / alone_s if items and alone_s > 0 else float("nan"),
        "overhead_pct": 100.0 * (harness_s / alone_s - 1.0) if measured else float("nan"),
    }


@benchmark("fisher")
def fisher_vectors(*, n_fit: int = 200, n_embed: int = 100, repeats: int = 2) -> list[Record]:
    """Fit and embedding cost of the Fisher-vector recognizers (``fv-sift``, ``fv-brief``), default parameters.

    Synthetic faces, one process, OpenCV held to one thread: the cost a
    worker pays. Fitting covers descriptor extraction on ``n_fit`` faces,
    PCA and the Gaussian mixture (scikit-learn, its own threads).

    Args:
        n_fit: Faces the vocabulary is fitted on (one fold's training faces
            are about 1,800 on lfw-dev: fit time grows with the descriptor
            sample, capped by ``max_descriptors``).
        n_embed: Faces per timed embedding call.
        repeats: Timed embedding calls; the fastest is reported.

    Returns:
        One record per recognizer: ``name``, ``recognizer``, ``n_fit``,
        ``fit_s``, ``embed_ms_per_face``, ``dims`` (Fisher vector length).
    """
    import time

    import cv2

    from benchmark.core.component import FittedRecognizer
    from benchmark.core.registry import RECOGNIZERS

    faces = _synthetic_faces(max(n_fit, n_embed))
    records: list[Record] = []
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for name in ("fv-sift", "fv-brief"):
            model = RECOGNIZERS.get(name)()
            assert isinstance(model, FittedRecognizer)
            start = time.perf_counter()
            model.fit(faces[:n_fit], None)
            fit_s = time.perf_counter() - start
            embed_s, feats = best_time(functools.partial(model.transform, faces[:n_embed]), repeats)
            records.append(
                {
                    "name": "fisher",
                    "recognizer": name,
                    "n_fit": int(n_fit),
                    "fit_s": fit_s,
                    "embed_ms_per_face": 1000.0 * embed_s / n_embed,
                    "dims": int(feats.shape[1]),
                }
            )
    finally:
        cv2.setNumThreads(threads)
    return records

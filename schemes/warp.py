"""Cancelable face transforms after Ratha, Connell and Bolle: block warping and block re-mapping.

Both are image-domain cancelable transforms: recognition runs on the
transformed faces, probe and reference transformed under the same
application key. They were re-assessed for face recognition in "Is
Warping-based Cancellable Biometrics (still) Sensible for Face
Recognition?" (IJCB 2020), whose settings the ``warp_B_D`` presets follow.

``warp`` (mesh warping)
    A grid of ``cell`` x ``cell`` pixel cells is laid over the aligned
    112x112 face. When ``cell`` does not divide 112 the grid has
    ``ceil(112 / cell)`` cells per side and is centred on the face (for
    ``cell`` 20: 6 cells spanning 120 pixels, 4 pixels beyond each edge), so
    the outer cells are cut by the image border symmetrically. Every grid
    vertex, border vertices included, is displaced by a key-seeded offset,
    uniform in ``[-displacement, +displacement]`` pixels in x and in y,
    quantised to :data:`WARP_QUANTUM` (1/32 pixel, the sub-pixel resolution
    of OpenCV's bilinear ``remap``). The vertex offsets are interpolated
    bilinearly to every pixel (piecewise bilinear within each cell, not
    affine triangles), and the protected face samples the original at
    ``pixel + offset`` (backward mapping) with bilinear interpolation;
    sample positions outside the face are clamped to its border (edge
    replication). Adjacent vertex offsets differ by at most ``2D``, so the
    sampling map's derivatives stay within ``2D / B`` of the identity's and
    it cannot fold while ``D < B / 4``; beyond that it may, and with
    ``D > B`` (``warp_20_25``) it folds widely: its Jacobian turns negative,
    parts of the face are sampled twice and others not at all, so the
    transform is no longer invertible. ``displacement`` 0 is the identity,
    exactly.

``remap`` (block re-mapping)
    The face is cut into ``block`` x ``block`` blocks (``block`` must divide
    112) and every target block position receives a key-chosen source
    block: a permutation (one-to-one, invertible with the key, see
    :meth:`RemapScheme.inverse`), or, with ``many_to_one``, sources drawn
    with replacement, so some blocks appear several times and others vanish
    and the transform cannot be inverted even with the key.

Inverse (:meth:`~benchmark.core.component.InvertibleScheme.invert`, the
key-knowing ``invert`` attack): with the key, a warp is undone by linear
interpolation of the protected pixels at the positions they sampled
(:func:`build_inverse_warp`), losing only what no protected pixel sampled (a
border strip at most D pixels wide, even where the mesh folds); a re-mapping by
the inverse permutation, losing the blocks a many-to-one mapping dropped.
What is lost is inpainted and counted. :meth:`recover` still refuses: that
is the stolen-token attacker's capability, not a legitimate path.

Keys: the transform is drawn from ``numpy.random.default_rng(key.seed(label))``
with ``label`` ``"warp/field"`` / ``"remap/mapping"``, or
``"warp/subject/<id>"`` / ``"remap/subject/<id>"`` when ``per_subject``.
:meth:`benchmark.core.keys.AppKey.seed` derives the 128-bit seed with HKDF from
the master key, the application id and the label, so a new application id
(renewal) gives an independent transform. The transform of each seed is
built once and cached (:func:`functools.lru_cache`), then applied to the
whole batch.

Key space (:meth:`key_space_bits`, ``key_space_bits`` in results) is the
effective figure: the number of distinct transforms of the family, capped at
the 128-bit seed that selects one (a brute-force search never needs more);
:meth:`transform_space_bits` (``transform_space_bits`` in results) gives the
uncapped count. A large key space says nothing about irreversibility: the
protected face stays a face, which is exactly what the IJCB 2020 paper shows a
recognizer exploits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from scipy import sparse

from benchmark.core.component import InstanceOf, Interval, InvertibleScheme, ParamError, Protected, check_faces
from benchmark.core.keys import AppKey
from benchmark.core.registry import SCHEMES

__all__ = [
    "FACE_SIZE",
    "SEED_BITS",
    "WARP_QUANTUM",
    "WarpScheme",
    "Warp8x4",
    "Warp16x6",
    "Warp20x9",
    "Warp20x25",
    "RemapScheme",
    "warp_grid",
    "build_warp_maps",
    "build_inverse_warp",
    "displacement_field",
    "block_mapping",
]

FACE_SIZE = 112
_SHAPE = (FACE_SIZE, FACE_SIZE, 3)
# The seed from AppKey.seed: no transform family can hold more key than this.
SEED_BITS = 128
# Vertex offsets are multiples of this many pixels: OpenCV's bilinear remap
# resolves sample positions to 1/32 pixel (INTER_TAB_SIZE), so a finer step
# would mostly give the same images, and a finite set makes the key space count exact.
WARP_QUANTUM = 1.0 / 32.0
# Transforms kept per process: one per (application, subject) in use is enough
# for the views of a run; each warp map is about 50 kB.
_CACHE_SIZE = 4096


def _read_only(*arrays: np.ndarray) -> None:
    # Cached transforms are shared between calls: nobody may edit them.
    for a in arrays:
        a.flags.writeable = False


class _KeyedTransform(InvertibleScheme):
    """Shared protect/decode/invert of image-domain transforms chosen by a key seed.

    Subclasses set ``_label_prefix`` and implement :meth:`_transform` (a
    cached, read-only transform for one seed), :meth:`_apply` and
    :meth:`_undo` (the key holder's inverse of one seed's transform).
    """

    domain = "cancelable"
    _label_prefix = ""
    per_subject: bool

    def _transform(self, seed: int) -> Any:
        raise NotImplementedError

    def _apply(self, images: np.ndarray, transform: Any) -> np.ndarray:
        raise NotImplementedError

    def _seed_label(self, subject: str | None) -> str:
        raise NotImplementedError

    def _undo(self, images: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _seeds(self, key: AppKey, subjects: Sequence[str], n: int) -> list[tuple[np.ndarray, int]]:
        """(rows, seed) of each transform the faces were protected with: one per key, or per subject."""
        if len(subjects) != n:
            raise ValueError(f"got {len(subjects)} subjects for {n} images")
        if not self.per_subject:
            return [(np.arange(n), key.seed(self._seed_label(None)))]
        # One transform per distinct subject, applied to that subject's images
        # as one batch: the loop runs over subjects, never over pixels.
        names, index = np.unique(np.asarray(subjects, dtype=str), return_inverse=True)
        index = index.reshape(-1)
        return [(np.flatnonzero(index == i), key.seed(self._seed_label(str(name)))) for i, name in enumerate(names)]

    def _by_key(
        self, images: Any, key: AppKey, subjects: Sequence[str], apply: Callable[[np.ndarray, Any], np.ndarray]
    ) -> np.ndarray:
        self.validate()
        arr = check_faces(images)
        groups = self._seeds(key, subjects, len(arr))
        if len(arr) == 0:
            return arr.copy()
        if not self.per_subject:
            return apply(arr, self._transform(groups[0][1]))
        out = np.empty_like(arr)
        for rows, seed in groups:
            out[rows] = apply(arr[rows], self._transform(seed))
        return out

    def protect(
        self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """Transform each face under the application key.

        Args:
            images: Aligned faces, uint8 (N, 112, 112, 3).
            key: The application key (:class:`benchmark.core.keys.AppKey`).
            sample_ids: Sample ids (unused: the transform does not depend on them).
            subjects: Subject id of each image (used when ``per_subject``).

        Returns:
            Protected faces, uint8 (N, 112, 112, 3); every channel gets the
            same transform, so a grey face stays grey.
        """
        return self._by_key(images, key, subjects, self._apply)

    def decode(self, protected: Protected) -> tuple[np.ndarray, np.ndarray]:
        """A standard viewer shows the transformed face as it is; nothing fails."""
        arr = check_faces(protected)
        return arr.copy(), np.zeros(len(arr), dtype=bool)

    def invert(
        self, images: np.ndarray, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The key holder's inverse (the ``invert`` attack): undo each face's transform, fill what it discarded.

        The transform of each face is derived from ``key`` (and its subject
        when ``per_subject``) exactly as :meth:`protect` derives it.

        Args:
            images: Protected faces, uint8 (N, 112, 112, 3).
            key: The application key they were protected under.
            sample_ids: Sample ids (unused, as in :meth:`protect`).
            subjects: Subject id of each image (used when ``per_subject``).

        Returns:
            (faces uint8 (N, 112, 112, 3), filled int64 (N,)): pixels no protected pixel determines, filled by
            inpainting (:func:`cv2.inpaint`, Telea) and counted.
        """
        self.validate()
        arr = check_faces(images)
        out, filled = np.empty_like(arr), np.zeros(len(arr), np.int64)
        for rows, seed in self._seeds(key, subjects, len(arr)):
            if rows.size:
                out[rows], filled[rows] = self._undo(arr[rows], seed)
        return out, filled

    def recover(
        self, protected: Protected, key: AppKey, sample_ids: Sequence[str], subjects: Sequence[str]
    ) -> np.ndarray:
        """Not offered: a cancelable scheme compares in the protected domain.

        :meth:`invert` undoes the transform with the key, but that is the
        stolen-token attacker's capability, not a path the system offers:
        no legitimate party ever turns a cancelable template back into a face.
        """
        raise NotImplementedError(
            f"{self.registry_name or type(self).__name__} is a cancelable scheme: comparison happens in the "
            "protected domain; it has no recovery path"
        )

    def transform_space_bits(self) -> float:
        """log2 of the number of distinct transforms of the family (uncapped)."""
        raise NotImplementedError

    def key_space_bits(self) -> float:
        """Effective key space: ``min(transform_space_bits, 128)``.

        The 128-bit seed that :meth:`AppKey.seed` derives selects the
        transform, so a brute-force search never needs more than 2**128
        tries, however many transforms the family has; with fewer transforms
        than seeds, enumerating the transforms is cheaper.
        """
        return float(min(self.transform_space_bits(), SEED_BITS))


# --------------------------------------------------------------------------- warping


def warp_grid(cell: int) -> tuple[int, float]:
    """Cells per side and the position of the first vertex, in pixel coordinates.

    Pixel centres are at integers 0..111, so the face spans [-0.5, 111.5].
    The grid has ``ceil(112 / cell)`` cells per side and is centred on the
    face: when ``cell`` divides 112 it spans the face exactly, otherwise it
    overhangs each edge by half the excess.

    Args:
        cell: Cell size in pixels.

    Returns:
        ``(cells, origin)``: vertices lie at ``origin + k * cell`` for
        ``k = 0..cells``.
    """
    cells = -(-FACE_SIZE // cell)
    return cells, -0.5 - (cells * cell - FACE_SIZE) / 2.0


def _hat_weights(cells: int, origin: float, cell: int) -> np.ndarray:
    """(112, cells + 1) linear interpolation weights of each pixel on the vertices."""
    u = (np.arange(FACE_SIZE) - origin) / cell
    return np.maximum(0.0, 1.0 - np.abs(u[:, None] - np.arange(cells + 1)[None, :]))


def displacement_field(seed: int, cell: int, displacement: float) -> np.ndarray:
    """The key's displacement of every pixel, bilinear between the grid vertices.

    Vertex offsets are ``rng.integers(-m, m + 1) * WARP_QUANTUM`` with
    ``m = floor(displacement / WARP_QUANTUM)``, drawn for y then x of every
    vertex from ``numpy.random.default_rng(seed)``.

    Args:
        seed: The transform's seed (from :meth:`AppKey.seed`).
        cell: Cell size in pixels.
        displacement: Largest vertex offset in pixels, per axis.

    Returns:
        float64 (2, 112, 112): the y and x offsets of each pixel's sample position.
    """
    cells, origin = warp_grid(cell)
    steps = int(math.floor(displacement / WARP_QUANTUM + 1e-9))
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-steps, steps + 1, size=(2, cells + 1, cells + 1)) * WARP_QUANTUM
    w = _hat_weights(cells, origin, cell)
    # Bilinear interpolation on a regular grid is separable: W @ G @ W.T.
    return np.einsum("iy,cyx,jx->cij", w, offsets, w)


def build_warp_maps(seed: int, cell: int, displacement: float) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV fixed-point remap maps of one warp (uncached; :class:`WarpScheme` caches them per seed).

    Args:
        seed: The transform's seed (from :meth:`AppKey.seed`).
        cell: Cell size in pixels.
        displacement: Largest vertex offset in pixels, per axis.

    Returns:
        ``(fixed, fraction)`` as ``cv2.convertMaps`` gives them, read-only.
    """
    field = displacement_field(seed, cell, displacement)
    grid_y, grid_x = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE]
    map_x = (grid_x + field[1]).astype(np.float32)
    map_y = (grid_y + field[0]).astype(np.float32)
    # Fixed-point maps: remap skips the float-to-fixed conversion per call.
    fixed, fraction = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    _read_only(fixed, fraction)
    return fixed, fraction


# Transforms are shared between calls and batches: one build per seed and process.
_warp_maps = lru_cache(maxsize=_CACHE_SIZE)(build_warp_maps)


def _remap_batch(images: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    # OpenCV needs C-contiguous faces to read and to write into.
    images = np.ascontiguousarray(images)
    out = np.empty(images.shape, np.uint8)
    # One remap call per face: OpenCV's remap takes at most 4 channels, so the
    # batch cannot be stacked along channels; the map itself is shared.
    for src, dst in zip(images, out):
        cv2.remap(src, maps[0], maps[1], cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
    return out


def build_inverse_warp(seed: int, cell: int, displacement: float) -> tuple[sparse.csr_array, np.ndarray]:
    """The key holder's inverse of one warp: a linear map from protected to original pixels, and what it misses.

    Protected pixel ``p`` holds the original sampled at ``s(p) = p + field(p)``
    (clamped to the face, rounded to OpenCV's 1/32 pixel), so the protected
    face is a set of scattered samples of the original. The protected pixel
    grid, each square of four neighbours split into two triangles, is carried
    to the sample positions; each original pixel is interpolated linearly
    (barycentric weights) within a carried triangle that contains it. Unlike
    a Delaunay triangulation of the scattered positions (``griddata``), this
    never interpolates between samples that were not neighbours, so where a
    folding warp overlaps itself every layer still holds true samples. A
    pixel no triangle covers is *unreached*: no protected pixel holds a value
    of it (a fold or a border pull skipped it); the caller fills those.

    Args:
        seed: The transform's seed (from :meth:`AppKey.seed`).
        cell: Cell size in pixels.
        displacement: Largest vertex offset in pixels, per axis.

    Returns:
        ``(matrix, unreached)``: float64 sparse (112*112, 112*112) from
        protected to original pixels (row-major), and bool (112, 112); read-only.
    """
    size = FACE_SIZE * FACE_SIZE
    field = displacement_field(seed, cell, displacement)
    grid = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE].astype(np.float64)
    # The positions remap really samples: float32 maps, fixed point in 1/32 pixel.
    quantum = round(1 / WARP_QUANTUM)
    pos = np.clip(np.rint((grid + field).astype(np.float32) * quantum) / quantum, 0, FACE_SIZE - 1).reshape(2, -1)
    corner = np.arange(size).reshape(FACE_SIZE, FACE_SIZE)[:-1, :-1].ravel()
    right, down = corner + 1, corner + FACE_SIZE
    tris = np.concatenate([np.stack([corner, right, down], 1), np.stack([right, down + 1, down], 1)])
    ay, ax = pos[:, tris[:, 0]]
    v0y, v0x = pos[:, tris[:, 1]] - (ay, ax)
    v1y, v1x = pos[:, tris[:, 2]] - (ay, ax)
    det = v0y * v1x - v0x * v1y
    keep = np.abs(det) > 1e-12  # clamping flattens border triangles
    tris, ay, ax, v0y, v0x, v1y, v1x, det = (a[keep] for a in (tris, ay, ax, v0y, v0x, v1y, v1x, det))
    ys, xs = pos[0, tris], pos[1, tris]
    top, left = np.ceil(ys.min(1)).astype(int), np.ceil(xs.min(1)).astype(int)
    bottom, rightmost = np.floor(ys.max(1)).astype(int), np.floor(xs.max(1)).astype(int)
    found_q, found_t, found_w = [], [], []
    # Every pixel of each triangle's bounding box, one offset at a time over all triangles.
    for dy in range(int((bottom - top).max(initial=0)) + 1):
        for dx in range(int((rightmost - left).max(initial=0)) + 1):
            qy, qx = top + dy, left + dx
            ok = (qy <= bottom) & (qx <= rightmost)
            wy, wx = qy - ay, qx - ax
            w1 = (wy * v1x - wx * v1y) / det
            w2 = (v0y * wx - v0x * wy) / det
            w = np.stack([1 - w1 - w2, w1, w2], 1)
            ok &= (w >= -1e-9).all(1)
            found_q.append(qy[ok] * FACE_SIZE + qx[ok])
            found_t.append(np.flatnonzero(ok))
            found_w.append(w[ok])
    q, t, w = np.concatenate(found_q), np.concatenate(found_t), np.concatenate(found_w)
    # A pixel on a shared edge, or under overlapping folds, is covered more
    # than once; every cover holds samples of it, so the first will do.
    q, first = np.unique(q, return_index=True)
    t, w = t[first], np.clip(w[first], 0, 1)
    w /= w.sum(1, keepdims=True)
    matrix = sparse.csr_array((w.ravel(), (np.repeat(q, 3), tris[t].ravel())), shape=(size, size))
    covered = np.zeros(size, bool)
    covered[q] = True
    unreached = ~covered.reshape(FACE_SIZE, FACE_SIZE)
    _read_only(matrix.data, matrix.indices, matrix.indptr, unreached)
    return matrix, unreached


_inverse_warps = lru_cache(maxsize=256)(build_inverse_warp)


def _fill(images: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Inpaint the ``missing`` pixels of each face (OpenCV, Telea), in place; the faces are returned."""
    if missing.any():
        mask = missing.astype(np.uint8)
        for i, face in enumerate(images):
            images[i] = cv2.inpaint(np.ascontiguousarray(face), mask, 3, cv2.INPAINT_TELEA)
    return images


@SCHEMES.register("warp")
class WarpScheme(_KeyedTransform):
    """Block (mesh) warping: key-seeded displacement of a grid of cell x cell pixel cells.

    See the module docstring for the grid, the interpolation and the key.
    The ``warp_B_D`` presets (``warp_8_4``, ``warp_16_6``, ``warp_20_9``,
    ``warp_20_25``) are this scheme with other defaults.

    Args:
        cell: Cell size B in pixels, 1 to 112; any size is accepted: a
            size that does not divide 112 gives a centred grid overhanging
            the face (:func:`warp_grid`).
        displacement: Largest vertex offset D in pixels per axis, 0 to 112
            (used in multiples of 1/32 pixel); 0 is the identity. From
            B/4 up the sampling map may fold, and beyond B it folds widely:
            pixels folded over are lost, though with the key the rest still
            inverts (:meth:`invert`; on ORL about 25 % of ``warp_20_25``'s
            pixels had to be filled).
        per_subject: Draw one transform per subject instead of one per
            application key.
    """

    _constraints = {
        "cell": Interval(int, 1, FACE_SIZE),
        "displacement": Interval(float, 0.0, float(FACE_SIZE)),
        "per_subject": InstanceOf((bool,)),
    }

    def __init__(self, *, cell: int = 16, displacement: float = 6.0, per_subject: bool = False) -> None:
        self.cell = cell
        self.displacement = displacement
        self.per_subject = per_subject

    def label(self) -> str:
        """The paper's name, ``warp_<B>_<D>`` (``_subject`` appended when per subject)."""
        return f"warp_{self.cell}_{float(self.displacement):g}" + ("_subject" if self.per_subject else "")

    def _seed_label(self, subject: str | None) -> str:
        return "warp/field" if subject is None else f"warp/subject/{subject}"

    def _transform(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return _warp_maps(seed, int(self.cell), float(self.displacement))

    def _apply(self, images: np.ndarray, transform: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return _remap_batch(images, transform)

    def _undo(self, images: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
        matrix, unreached = _inverse_warps(seed, int(self.cell), float(self.displacement))
        n = len(images)
        flat = images.reshape(n, -1, 3).transpose(1, 0, 2).reshape(FACE_SIZE * FACE_SIZE, n * 3)
        values = (matrix @ flat.astype(np.float64)).reshape(FACE_SIZE, FACE_SIZE, n, 3).transpose(2, 0, 1, 3)
        out = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return _fill(out, unreached), int(unreached.sum())

    def field(self, key: AppKey, subject: str | None = None) -> np.ndarray:
        """The displacement field of ``key`` (and ``subject`` when per subject), (2, 112, 112)."""
        self.validate()
        label = self._seed_label(subject if self.per_subject else None)
        return displacement_field(key.seed(label), int(self.cell), float(self.displacement))

    def transform_space_bits(self) -> float:
        """Bits of ``(2m + 1) ** (2V)``: V vertices, 2 axes, offsets in steps of 1/32 pixel.

        ``m = floor(D * 32)`` steps each way; ``V = (ceil(112 / B) + 1) ** 2``
        vertices, all of which move. This counts displacement fields, an
        upper bound on distinct transforms (clamping at the border can make
        two fields give the same image). 0 for ``displacement`` 0.
        """
        self.validate()
        cells, _ = warp_grid(int(self.cell))
        steps = int(math.floor(float(self.displacement) / WARP_QUANTUM + 1e-9))
        return 2 * (cells + 1) ** 2 * math.log2(2 * steps + 1)


@SCHEMES.register("warp_8_4")
class Warp8x4(WarpScheme):
    """Block warping preset warp_8_4 (IJCB 2020): 8-pixel cells, vertices moved up to 4 pixels."""

    def __init__(self, *, cell: int = 8, displacement: float = 4.0, per_subject: bool = False) -> None:
        super().__init__(cell=cell, displacement=displacement, per_subject=per_subject)


@SCHEMES.register("warp_16_6")
class Warp16x6(WarpScheme):
    """Block warping preset warp_16_6 (IJCB 2020): 16-pixel cells, vertices moved up to 6 pixels."""

    def __init__(self, *, cell: int = 16, displacement: float = 6.0, per_subject: bool = False) -> None:
        super().__init__(cell=cell, displacement=displacement, per_subject=per_subject)


@SCHEMES.register("warp_20_9")
class Warp20x9(WarpScheme):
    """Block warping preset warp_20_9 (IJCB 2020): 20-pixel cells (centred 120-pixel grid), up to 9 pixels."""

    def __init__(self, *, cell: int = 20, displacement: float = 9.0, per_subject: bool = False) -> None:
        super().__init__(cell=cell, displacement=displacement, per_subject=per_subject)


@SCHEMES.register("warp_20_25")
class Warp20x25(WarpScheme):
    """Block warping preset warp_20_25 (IJCB 2020): 20-pixel cells, up to 25 pixels (folding mesh)."""

    def __init__(self, *, cell: int = 20, displacement: float = 25.0, per_subject: bool = False) -> None:
        super().__init__(cell=cell, displacement=displacement, per_subject=per_subject)


# --------------------------------------------------------------------------- re-mapping


def block_mapping(seed: int, blocks: int, many_to_one: bool) -> np.ndarray:
    """Source block of each target block, in row-major block order.

    Args:
        seed: The transform's seed (from :meth:`AppKey.seed`).
        blocks: Number of blocks n.
        many_to_one: Draw sources with replacement instead of a permutation.

    Returns:
        int64 (n,): ``mapping[t]`` is the block shown at target position ``t``.
    """
    rng = np.random.default_rng(seed)
    if many_to_one:
        return rng.integers(0, blocks, size=blocks)
    return rng.permutation(blocks)


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_mapping(seed: int, blocks: int, many_to_one: bool) -> np.ndarray:
    mapping = block_mapping(seed, blocks, many_to_one)
    _read_only(mapping)
    return mapping


def _move_blocks(images: np.ndarray, block: int, mapping: np.ndarray) -> np.ndarray:
    n, side = len(images), FACE_SIZE // block
    tiles = images.reshape(n, side, block, side, block, 3).transpose(0, 1, 3, 2, 4, 5)
    moved = tiles.reshape(n, side * side, block, block, 3)[:, mapping]
    return np.ascontiguousarray(moved.reshape(n, side, side, block, block, 3).transpose(0, 1, 3, 2, 4, 5)).reshape(
        images.shape
    )


@SCHEMES.register("remap")
class RemapScheme(_KeyedTransform):
    """Block re-mapping: key-chosen rearrangement of block x block pixel blocks.

    See the module docstring.

    Args:
        block: Block size B in pixels; must divide 112 (1, 2, 4, 7, 8, 14,
            16, 28, 56, 112).
        many_to_one: Let several target positions show the same source
            block (sources drawn with replacement): not invertible.
        per_subject: Draw one mapping per subject instead of one per
            application key.
    """

    _constraints = {
        "block": Interval(int, 1, FACE_SIZE),
        "many_to_one": InstanceOf((bool,)),
        "per_subject": InstanceOf((bool,)),
    }

    def __init__(self, *, block: int = 28, many_to_one: bool = False, per_subject: bool = False) -> None:
        self.block = block
        self.many_to_one = many_to_one
        self.per_subject = per_subject

    def _validate_extra(self) -> None:
        if FACE_SIZE % self.block:
            divisors = [d for d in range(1, FACE_SIZE + 1) if FACE_SIZE % d == 0]
            raise ParamError("block", self.block, f"does not divide {FACE_SIZE} (allowed: {divisors})")

    @property
    def blocks(self) -> int:
        """Number of blocks n = (112 / B) ** 2."""
        return (FACE_SIZE // int(self.block)) ** 2

    def label(self) -> str:
        """``remap_<B>``, with ``_m2o`` for many-to-one and ``_subject`` per subject."""
        return f"remap_{self.block}" + ("_m2o" if self.many_to_one else "") + ("_subject" if self.per_subject else "")

    def _seed_label(self, subject: str | None) -> str:
        return "remap/mapping" if subject is None else f"remap/subject/{subject}"

    def _transform(self, seed: int) -> np.ndarray:
        return _cached_mapping(seed, self.blocks, bool(self.many_to_one))

    def _apply(self, images: np.ndarray, transform: np.ndarray) -> np.ndarray:
        return _move_blocks(images, int(self.block), transform)

    def _undo(self, images: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
        mapping = self._transform(seed)
        # Source block -> a target position showing it (the last one: with
        # many-to-one they are all the same block); -1 where none does.
        where = np.full(len(mapping), -1)
        where[mapping] = np.arange(len(mapping))
        lost = where < 0
        block, side = int(self.block), FACE_SIZE // int(self.block)
        out = _move_blocks(images, block, np.where(lost, 0, where))
        missing = np.kron(lost.reshape(side, side), np.ones((block, block), bool))
        return _fill(out, missing), int(missing.sum())

    def mapping(self, key: AppKey, subject: str | None = None) -> np.ndarray:
        """The mapping of ``key`` (and ``subject`` when per subject): source block per target."""
        self.validate()
        return self._transform(key.seed(self._seed_label(subject if self.per_subject else None)))

    def inverse(self, images: np.ndarray, key: AppKey, subjects: Sequence[str]) -> np.ndarray:
        """Undo a one-to-one re-mapping with the key (exact).

        Args:
            images: Protected faces, uint8 (N, 112, 112, 3).
            key: The application key they were protected under.
            subjects: Subject id of each image (used when ``per_subject``).

        Raises:
            ValueError: for ``many_to_one``, which discards blocks.
        """
        if self.many_to_one:
            raise ValueError("a many-to-one re-mapping discards blocks and cannot be inverted")
        return self._by_key(
            images, key, subjects, lambda arr, mapping: _move_blocks(arr, int(self.block), np.argsort(mapping))
        )

    def transform_space_bits(self) -> float:
        """log2(n!) for a permutation, n * log2(n) for many-to-one (n^n mappings)."""
        self.validate()
        n = self.blocks
        if self.many_to_one:
            return n * math.log2(n)
        return math.lgamma(n + 1) / math.log(2)

"""``synthetic``: procedurally generated, aligned face-like images.

The embedded default dataset: it needs no files and is fully determined by its
parameters, so every run of the harness can be reproduced anywhere. Images are
rendered with numpy on coordinate grids (no per-pixel loops); small features
are painted only inside their bounding windows.

Each *identity* is drawn from its own random generator and fixes the face
geometry (head oval and jaw, hair, ears, eyes, brows, nose, mouth), optional
traits (glasses, moustache, baldness, moles and freckles, nasolabial folds,
forehead lines), the colours, and a smooth two-scale skin texture (low-pass
filtered noise). Landmarks scatter only a few pixels around the 5-point
alignment template, as they do after real similarity alignment.

Each *sample* then draws, from a generator of its own, what changes between
two cooperative captures of one person once aligned (standard deviations or
ranges, chosen as plausible for such captures rather than to reach a target
error rate):

* alignment error: shift 1.5 px, in-plane rotation 3 degrees, scale 2.5 %
  (normal, clipped at two standard deviations);
* illumination: gain in [0.8, 1.15], a linear ramp of up to +-25 % across
  the image in a random direction, gamma in [0.9, 1.1];
* expression: smile (which also deepens the folds), mouth opened in 30 % of
  captures, brow raise, eye opening in [0.55, 1.1], gaze; glasses wearers
  take them off in 20 % of captures;
* a plain light background (as ISO/IEC 39794-5 asks of frontal images)
  whose level and shading vary a little;
* optical blur (Gaussian sigma up to 0.8 px) and sensor noise (sigma 1 to 3
  grey levels), then 8-bit quantisation.

The resulting set is neither trivial nor hopeless for a texture descriptor:
``tests/test_synthetic.py`` checks that the ``lbp`` recognizer's equal error
rate on the default set lies between 1 % and 20 %.

Randomness comes from :class:`numpy.random.SeedSequence` with the dataset
seed as entropy and a spawn key of ``(0, subject)`` for identities and
``(1, subject, image)`` for samples: subject ``k`` looks the same whatever
``n_subjects`` is, and sample ``(k, i)`` whatever ``n_images`` is.

Geometry is in *face units*: the aligned 112x112 image spans [-1, 1] on both
axes (one unit is 56 pixels), x to the right and y downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.component import Dataset, Interval, Samples
from benchmark.core.registry import DATASETS

__all__ = ["SIZE", "SyntheticFaces"]

SIZE = 112
_PX = 2.0 / SIZE  # one pixel in face units
# Side of the identity noise fields and the face-unit square they cover; a
# margin beyond [-1, 1] keeps shifted and rotated faces inside the field.
_FIELD = 128
_FIELD_SPAN = 1.3


@dataclass(frozen=True, eq=False)
class _Identity:
    """Everything that makes one synthetic person recognisable."""

    head_cy: float
    head_a: float  # half-width
    head_b: float  # half-height
    jaw_taper: float  # narrowing of the lower half (pointed chin)
    skin: np.ndarray  # RGB in [0, 1]
    texture: np.ndarray  # (_FIELD, _FIELD) relative skin modulation
    cheek_shade: float
    bald: bool
    hair: np.ndarray  # RGB
    hair_texture: np.ndarray  # (_FIELD, _FIELD) streaks
    hair_volume: float
    hairline: float
    hairline_curve: float
    hair_part: float
    hair_length: float  # lowest y of the hair at the sides
    eye_y: float
    eye_dx: float  # half distance between eye centres
    eye_a: float
    eye_b: float
    eye_tilt: float
    iris_r: float
    iris: np.ndarray  # RGB
    brow_gap: float
    brow_len: float
    brow_thick: float
    brow_arch: float
    brow_tilt: float
    brow_shift: float
    nose_tip: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_low: float
    lips: np.ndarray  # RGB
    base_smile: float
    moustache: bool
    spots: np.ndarray  # (k, 4): x, y, radius, darkness of moles and freckles
    fold_depth: float  # nasolabial folds
    fold_bow: float
    forehead_lines: int
    forehead_depth: float
    glasses: float  # frame darkness; 0 for none
    glasses_size: float


@dataclass(frozen=True, eq=False)
class _Nuisance:
    """What changes between two captures of the same person."""

    shift: tuple[float, float]
    angle: float  # radians
    scale: float
    gain: float
    light_dir: float  # radians
    light_amp: float
    gamma: float
    smile: float
    mouth_open: float
    brow_raise: float
    eye_open: float
    gaze: tuple[float, float]
    glasses_on: bool  # glasses wearers take them off now and then
    background: np.ndarray  # RGB
    bg_grad: float
    blur: float  # Gaussian sigma in pixels
    noise: float  # Gaussian sigma on the [0, 1] scale


# ----------------------------------------------------------------------------- drawing


def _smooth_field(rng: np.random.Generator, sigma: tuple[float, float]) -> np.ndarray:
    """Zero-mean, unit-variance low-pass noise on the identity field grid."""
    from scipy import ndimage  # imported on use: a run that finds the faces cached need not load it

    field = ndimage.gaussian_filter(rng.standard_normal((_FIELD, _FIELD)), sigma, mode="wrap")
    return (field - field.mean()) / field.std()


def _draw_identity(rng: np.random.Generator) -> _Identity:
    """Draw one identity; ranges are those of adult faces in aligned crops."""
    u = rng.uniform
    skin_lum = u(0.35, 0.75)
    warmth = u(0.05, 0.2)
    skin = skin_lum * np.array([1 + warmth, 1.0, 1 - warmth])
    # Two scales of skin texture: fine blemishes (~1 px) and broad unevenness (~6 px).
    texture = u(0.04, 0.08) * _smooth_field(rng, (1.0, 1.0)) + u(0.02, 0.05) * _smooth_field(rng, (5, 5))
    hair_lum = u(0.05, 0.55)
    hair_tint = u(0.0, 0.3)
    # Landmarks scatter a few pixels around the 5-point alignment template
    # (eyes at (+-0.32, -0.08), nose tip at y 0.28, mouth at y 0.65): the
    # similarity alignment removes most of their variation between people.
    eye_y = u(-0.12, -0.04)
    nose_tip = eye_y + u(0.3, 0.42)
    mouth_y = nose_tip + u(0.3, 0.42)
    return _Identity(
        head_cy=eye_y + u(0.1, 0.22),
        head_a=u(0.8, 0.95),
        head_b=u(0.95, 1.1),
        jaw_taper=u(0.0, 0.4),
        skin=skin,
        texture=texture,
        cheek_shade=u(0.1, 0.35),
        bald=bool(rng.random() < 0.1),
        hair=hair_lum * np.array([1 + hair_tint, 1.0, 1 - hair_tint]),
        hair_texture=_smooth_field(rng, (8.0, 0.7)),
        hair_volume=u(0.02, 0.14),
        hairline=u(-0.75, -0.5),
        hairline_curve=u(-0.1, 0.4),
        hair_part=u(-0.2, 0.2),
        hair_length=u(-0.3, 0.8),
        eye_y=eye_y,
        eye_dx=u(0.28, 0.35),
        eye_a=u(0.12, 0.16),
        eye_b=u(0.04, 0.065),
        eye_tilt=u(-0.15, 0.15),
        iris_r=u(0.042, 0.058),
        iris=u(0.08, 0.45) * np.array([1.1, 1.0, u(0.7, 1.3)]),
        brow_gap=u(0.12, 0.2),
        brow_len=u(0.14, 0.2),
        brow_thick=u(0.025, 0.05),
        brow_arch=u(0.0, 0.06),
        brow_tilt=u(-0.2, 0.2),
        brow_shift=u(-0.02, 0.04),
        nose_tip=nose_tip,
        nose_w=u(0.09, 0.15),
        mouth_y=mouth_y,
        mouth_w=u(0.2, 0.3),
        lip_up=u(0.02, 0.045),
        lip_low=u(0.03, 0.06),
        lips=skin * np.array([u(0.75, 0.95), u(0.5, 0.7), u(0.55, 0.75)]),
        base_smile=u(-0.2, 0.4),
        moustache=bool(rng.random() < 0.2),
        spots=_draw_spots(rng),
        fold_depth=u(0.05, 0.35),
        fold_bow=u(-0.03, 0.05),
        forehead_lines=int(rng.integers(0, 4)),
        forehead_depth=u(0.1, 0.25),
        glasses=u(0.5, 0.9) if rng.random() < 0.15 else 0.0,
        glasses_size=u(1.4, 1.8),
    )


def _draw_spots(rng: np.random.Generator) -> np.ndarray:
    """Moles and freckles: a Poisson number of small dark discs on the face."""
    k = int(rng.poisson(2.0))
    return np.column_stack(
        [
            rng.uniform(-0.6, 0.6, k),
            rng.uniform(-0.55, 0.75, k),
            rng.uniform(0.01, 0.025, k),
            rng.uniform(0.3, 0.75, k),
        ]
    )


def _draw_nuisance(rng: np.random.Generator) -> _Nuisance:
    """Draw one capture's nuisances (see the module docstring for the ranges)."""
    u = rng.uniform
    # Residual error of a 5-landmark aligner on a cooperative capture:
    # 1.5 px shift, 3 degrees of roll, 2.5 % scale (standard deviations),
    # clipped at 2 sigma.
    shift = tuple(np.clip(rng.normal(0.0, 1.5 * _PX, 2), -3 * _PX, 3 * _PX))
    angle = float(np.deg2rad(np.clip(rng.normal(0.0, 3.0), -6.0, 6.0)))
    scale = float(np.exp(np.clip(rng.normal(0.0, 0.025), -0.05, 0.05)))
    opened = rng.random() < 0.3
    # A plain, light, uniform background as ISO/IEC 39794-5 asks of frontal
    # captures; its level and shading still vary a little between captures.
    bg_lum = u(0.55, 0.8)
    return _Nuisance(
        shift=(float(shift[0]), float(shift[1])),
        angle=angle,
        scale=scale,
        gain=u(0.8, 1.15),
        light_dir=u(0, 2 * np.pi),
        light_amp=u(0.0, 0.25),
        gamma=u(0.9, 1.1),
        smile=u(-0.4, 1.0),
        mouth_open=u(0.01, 0.05) if opened else 0.0,
        brow_raise=float(rng.normal(0.0, 0.015)),
        eye_open=u(0.55, 1.1),
        gaze=(u(-0.3, 0.3), u(-0.15, 0.15)),
        glasses_on=bool(rng.random() < 0.8),
        background=bg_lum * (1 + u(-0.03, 0.03, 3)),
        bg_grad=u(-0.1, 0.1),
        blur=u(0.0, 0.8),
        noise=u(1.0, 3.0) / 255,
    )


# ----------------------------------------------------------------------------- painting


def _alpha(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance (< 0 inside)."""
    return np.clip(0.5 - signed_distance / _PX, 0.0, 1.0)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse."""
    return (np.hypot((x - cx) / a, (y - cy) / b) - 1.0) * min(a, b)


def _band(y: np.ndarray, top: np.ndarray | float, bottom: np.ndarray | float) -> np.ndarray:
    """Coverage of the region ``top < y < bottom``."""
    return _alpha(top - y) * _alpha(y - bottom)


def _over(canvas: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """Composite ``colour`` (RGB or per-pixel RGB) over ``canvas`` in place."""
    canvas += alpha[..., None] * (colour - canvas)


def _sample_field(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear look-up of an identity field at face coordinates."""
    from scipy import ndimage  # imported on use: a run that finds the faces cached need not load it

    scale = (_FIELD - 1) / (2 * _FIELD_SPAN)
    coords = np.stack([(y + _FIELD_SPAN) * scale, (x + _FIELD_SPAN) * scale])
    return ndimage.map_coordinates(field, coords, order=1, mode="wrap")


def _paint_head(canvas: np.ndarray, p: _Identity, x: np.ndarray, y: np.ndarray) -> None:
    """Back hair, neck, ears, textured skin and the top hair."""
    hair_rgb = p.hair * (1 + 0.25 * _sample_field(p.hair_texture, x, y))[..., None]
    outer = _ellipse(x, y, 0.0, p.head_cy - p.hair_volume, p.head_a + p.hair_volume, p.head_b + p.hair_volume)
    if not p.bald:
        _over(canvas, hair_rgb, _alpha(outer) * _alpha(y - p.hair_length))
    neck = _alpha(np.abs(x) - 0.55 * p.head_a) * _alpha(p.head_cy + 0.3 - y)
    _over(canvas, 0.75 * p.skin, neck)
    for side in (-1.0, 1.0):
        ear = _ellipse(x, y, side * (p.head_a - 0.015), p.eye_y + 0.06, 0.055, 0.11)
        _over(canvas, 0.85 * p.skin, _alpha(ear))
    # The lower half narrows with the jaw taper, giving rounder or pointier chins.
    below = np.clip(y - p.head_cy, 0.0, None) / p.head_b
    half_width = p.head_a * (1 - p.jaw_taper * below**2)
    head = (np.hypot(x / half_width, (y - p.head_cy) / p.head_b) - 1.0) * min(p.head_a, p.head_b)
    shade = 1 + _sample_field(p.texture, x, y) - p.cheek_shade * np.clip(x / p.head_a, -1, 1) ** 4
    _over(canvas, p.skin * shade[..., None], _alpha(head))
    if not p.bald:
        line = p.hairline + p.hairline_curve * x**2 + p.hair_part * x
        _over(canvas, hair_rgb, _alpha(outer) * _alpha(y - line))


def _window(n: _Nuisance, cx: float, cy: float, radius: float) -> tuple[slice, slice]:
    """Image rows and columns covering the face-unit disc ((cx, cy), radius).

    Small features are painted only there, which makes rendering several
    times cheaper than painting every layer over the whole image.
    """
    c, s = np.cos(n.angle), np.sin(n.angle)
    u = n.scale * (c * cx - s * cy) + n.shift[0]
    v = n.scale * (s * cx + c * cy) + n.shift[1]
    reach = n.scale * radius / _PX + 2
    col, row = (u + 1) / _PX - 0.5, (v + 1) / _PX - 0.5

    def span(centre: float) -> slice:
        lo = int(np.clip(np.floor(centre - reach), 0, SIZE))
        return slice(lo, int(np.clip(np.ceil(centre + reach) + 1, lo, SIZE)))

    return span(row), span(col)


def _paint_spots(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Moles and freckles."""
    for sx, sy, radius, dark in p.spots:
        w = _window(n, sx, sy, radius)
        _over(canvas[w], 0.35 * p.skin, dark * _alpha(_ellipse(x[w], y[w], sx, sy, radius, radius)))


def _darken_along(patch: np.ndarray, distance: np.ndarray, depth: np.ndarray | float) -> None:
    """Darken a soft crease at ``distance`` (face units) from its centre line."""
    _over(patch, 0.5 * patch, depth * np.exp(-0.5 * (distance / 0.012) ** 2))


def _paint_creases(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Nasolabial folds (deepened by a smile) and forehead lines."""
    y0, y1 = p.nose_tip, p.mouth_y + 0.04
    depth = p.fold_depth * np.clip(1 + 0.5 * n.smile, 0.5, None)
    for side in (-1.0, 1.0):
        x0, x1 = p.nose_w + 0.05, p.mouth_w + 0.05
        w = _window(n, side * 0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * (y1 - y0) + 0.12)
        t = np.clip((y[w] - y0) / (y1 - y0), 0.0, 1.0)
        centre = side * (x0 + (x1 - x0) * t + p.fold_bow * np.sin(np.pi * t))
        _darken_along(canvas[w], x[w] - centre, depth * _band(y[w], y0, y1) * np.sin(np.pi * t))
    top = p.eye_y - p.brow_gap - 0.14 - n.brow_raise
    for k in range(p.forehead_lines):
        cy = top - 0.07 * k
        w = _window(n, 0.0, cy, 0.42)
        fade = _alpha(np.abs(x[w]) - 0.35) * np.cos(np.clip(x[w] / 0.35, -1, 1) * np.pi / 2)
        _darken_along(canvas[w], y[w] - (cy + 0.15 * x[w] ** 2), p.forehead_depth * fade)


def _paint_glasses(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Rims around both eyes and a bridge, for identities wearing glasses."""
    if p.glasses == 0.0 or not n.glasses_on:
        return
    frame = np.full(3, 0.2 * (1 - p.glasses))
    ra, rb = p.glasses_size * p.eye_a, p.glasses_size * 2.2 * p.eye_b
    for side in (-1.0, 1.0):
        w = _window(n, side * p.eye_dx, p.eye_y, max(ra, rb) + 0.03)
        rim = np.abs(_ellipse(x[w], y[w], side * p.eye_dx, p.eye_y, ra, rb)) - 0.012
        _over(canvas[w], frame, p.glasses * _alpha(rim))
    inner = p.eye_dx - ra
    w = _window(n, 0.0, p.eye_y, inner + 0.03)
    bridge = _band(y[w], p.eye_y - rb * 0.5 - 0.01, p.eye_y - rb * 0.5 + 0.01)
    _over(canvas[w], frame, p.glasses * bridge * _alpha(np.abs(x[w]) - inner - 0.01))


def _paint_eyes(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Sockets, sclera, iris, pupil and upper lid of both eyes."""
    for side in (-1.0, 1.0):
        w = _window(n, side * p.eye_dx, p.eye_y, max(1.5 * p.eye_a, 3.0 * p.eye_b) + 0.02)
        patch = canvas[w]
        # Local frame of this eye, tilted symmetrically about the face's axis.
        dx, dy = x[w] - side * p.eye_dx, y[w] - p.eye_y
        c, s = np.cos(side * p.eye_tilt), np.sin(side * p.eye_tilt)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        socket = _ellipse(lx, ly, 0.0, -0.01, 1.5 * p.eye_a, 3.0 * p.eye_b)
        _over(patch, 0.8 * patch, 0.6 * np.clip(-socket / (4 * _PX), 0, 1))
        b = p.eye_b * n.eye_open
        white = _alpha(_ellipse(lx, ly, 0.0, 0.0, p.eye_a, b))
        _over(patch, np.array([0.86, 0.84, 0.8]), white)
        ix, iy = n.gaze[0] * p.eye_a, n.gaze[1] * p.eye_b
        _over(patch, p.iris, white * _alpha(_ellipse(lx, ly, ix, iy, p.iris_r, p.iris_r)))
        pupil = 0.45 * p.iris_r
        _over(patch, np.array([0.03, 0.03, 0.03]), white * _alpha(_ellipse(lx, ly, ix, iy, pupil, pupil)))
        rim = np.abs(_ellipse(lx, ly, 0.0, 0.0, p.eye_a, b)) - 0.6 * _PX
        _over(patch, 0.3 * p.hair, 0.9 * _alpha(rim) * _alpha(ly))


def _paint_brows(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Two arched, tapering brows above the eyes."""
    for side in (-1.0, 1.0):
        cx = side * (p.eye_dx + p.brow_shift)
        w = _window(n, cx, p.eye_y - p.brow_gap, p.brow_len + 0.12)
        lx = side * (x[w] - cx)  # mirrored: +lx points outwards
        t = np.clip(lx / p.brow_len, -1.0, 1.0)
        centre = p.eye_y - p.brow_gap - n.brow_raise - p.brow_arch * (1 - t**2) + p.brow_tilt * p.brow_len * t
        half = 0.5 * p.brow_thick * (1.2 - 0.5 * t)  # thicker at the inner end
        cover = _band(y[w], centre - half, centre + half) * _alpha(np.abs(lx) - p.brow_len)
        _over(canvas[w], p.hair, 0.9 * cover)


def _paint_nose(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Bridge shading, tip highlight and shadow, nostrils."""
    top, tip = p.eye_y + 0.05, p.nose_tip
    w = _window(n, 0.0, 0.5 * (top + tip), 0.5 * (tip - top) + p.nose_w + 0.08)
    patch, xs, ys = canvas[w], x[w], y[w]
    along = _band(ys, top, tip)
    for side in (-1.0, 1.0):
        ridge = np.exp(-0.5 * ((xs - side * 0.5 * p.nose_w) / 0.02) ** 2)
        _over(patch, 0.85 * patch, along * ridge)
    highlight = _alpha(_ellipse(xs, ys, 0.0, tip - 0.025, 0.5 * p.nose_w, 0.04))
    _over(patch, np.minimum(1.12 * patch, 1.0), highlight)
    _over(patch, 0.85 * patch, 0.7 * _alpha(_ellipse(xs, ys, 0.0, tip + 0.035, 0.8 * p.nose_w, 0.026)))
    for side in (-1.0, 1.0):
        nostril = _ellipse(xs, ys, side * 0.5 * p.nose_w, tip + 0.015, 0.032, 0.017)
        _over(patch, 0.4 * patch, _alpha(nostril))


def _paint_mouth(canvas: np.ndarray, p: _Identity, n: _Nuisance, x: np.ndarray, y: np.ndarray) -> None:
    """Lips around a smile-curved centre line, an opening, and a moustache."""
    w = _window(n, 0.0, p.mouth_y - 0.04, 1.15 * p.mouth_w + 0.1)
    patch, xs, ys = canvas[w], x[w], y[w]
    t = xs / p.mouth_w
    envelope = np.sqrt(np.clip(1 - t**2, 0.0, None))
    inside = _alpha(np.abs(xs) - p.mouth_w)
    smile = p.base_smile + n.smile
    centre = p.mouth_y - 0.05 * smile * np.clip(t, -1, 1) ** 2
    gap = 0.5 * n.mouth_open * envelope
    upper = centre - gap - p.lip_up * envelope
    lower = centre + gap + p.lip_low * envelope
    _over(patch, p.lips, inside * _band(ys, upper, centre - gap))
    _over(patch, np.minimum(1.1 * p.lips, 1.0), inside * _band(ys, centre + gap, lower))
    line = _band(ys, centre - gap - 0.5 * _PX, centre + gap + 0.5 * _PX)
    _over(patch, np.array([0.12, 0.06, 0.06]), inside * line)
    if p.moustache:
        top = p.mouth_y - p.lip_up - 0.08
        cover = _band(ys, top, upper - 0.01) * _alpha(np.abs(xs) - 1.1 * p.mouth_w)
        _over(patch, p.hair, 0.85 * cover)


def _finish(canvas: np.ndarray, n: _Nuisance, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply lighting, gamma, blur and noise; quantise to uint8."""
    from scipy import ndimage  # imported on use: a run that finds the faces cached need not load it

    ramp = np.cos(n.light_dir) * u + np.sin(n.light_dir) * v
    lit = canvas * (n.gain * (1 + n.light_amp * ramp))[..., None]
    lit = np.clip(lit, 0.0, 1.0) ** n.gamma
    if n.blur > 0:
        lit = ndimage.gaussian_filter(lit, (n.blur, n.blur, 0), mode="nearest")
    lit = lit + rng.normal(0.0, n.noise, lit.shape)
    return np.clip(np.rint(lit * 255), 0, 255).astype(np.uint8)


def _render_face(identity: _Identity, nuisance: _Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Render one aligned face.

    Args:
        identity: The person.
        nuisance: The capture conditions.
        rng: Source of the sensor noise.

    Returns:
        uint8 array (112, 112, 3), RGB.
    """
    centres = (np.arange(SIZE) + 0.5) * _PX - 1.0
    u, v = np.meshgrid(centres, centres)  # image coordinates
    # Face coordinates: undo the capture's shift, rotation and scale.
    du, dv = u - nuisance.shift[0], v - nuisance.shift[1]
    c, s = np.cos(nuisance.angle), np.sin(nuisance.angle)
    x = (c * du + s * dv) / nuisance.scale
    y = (-s * du + c * dv) / nuisance.scale
    canvas = np.empty((SIZE, SIZE, 3))
    canvas[:] = nuisance.background
    canvas *= (1 + nuisance.bg_grad * u)[..., None]
    _paint_head(canvas, identity, x, y)
    _paint_spots(canvas, identity, nuisance, x, y)
    _paint_creases(canvas, identity, nuisance, x, y)
    _paint_eyes(canvas, identity, nuisance, x, y)
    _paint_brows(canvas, identity, nuisance, x, y)
    _paint_nose(canvas, identity, nuisance, x, y)
    _paint_mouth(canvas, identity, nuisance, x, y)
    _paint_glasses(canvas, identity, nuisance, x, y)
    return _finish(canvas, nuisance, u, v, rng)


# ----------------------------------------------------------------------------- dataset


@DATASETS.register("synthetic")
class SyntheticFaces(Dataset):
    """Procedural face-like images, generated deterministically from a seed.

    Args:
        n_subjects: Number of identities.
        n_images: Images per identity.
        seed: Seed of every random draw; the same parameters always give
            byte-identical images.
        first_subject: Number of the first identity: subjects ``first_subject`` to
            ``first_subject + n_subjects - 1`` of the same generator, so a second
            dataset (an attacker's own faces) can hold other identities than the first.
    """

    generated = True
    _constraints = {
        "n_subjects": Interval(int, 1, None),
        "n_images": Interval(int, 1, None),
        "seed": Interval(int, 0, None),
        "first_subject": Interval(int, 0, None),
    }

    def __init__(self, *, n_subjects: int = 40, n_images: int = 10, seed: int = 0, first_subject: int = 0):
        self.n_subjects = n_subjects
        self.n_images = n_images
        self.seed = seed
        self.first_subject = first_subject

    def load(self, root: Path | None = None) -> Samples:
        """Generate the samples; ``root`` is ignored (nothing is read).

        Returns:
            Samples with ids ``sSSS/II``, subjects ``sSSS``, images uint8
            (N, 112, 112, 3) RGB, ``aligned=True`` and ``demo=True``.
        """
        self.validate()
        ids: list[str] = []
        subjects: list[str] = []
        images = np.empty((self.n_subjects * self.n_images, SIZE, SIZE, 3), dtype=np.uint8)
        for subject in range(self.first_subject, self.first_subject + self.n_subjects):
            identity = _draw_identity(self._rng(0, subject))
            for image in range(self.n_images):
                rng = self._rng(1, subject, image)
                images[len(ids)] = _render_face(identity, _draw_nuisance(rng), rng)
                ids.append(f"s{subject:03d}/{image:02d}")
                subjects.append(f"s{subject:03d}")
        return Samples(ids=ids, subjects=subjects, paths=None, images=images, aligned=True, demo=True)

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

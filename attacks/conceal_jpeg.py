"""``conceal-mcu``: error concealment on selectively encrypted baseline JPEG.

The naive attacker decodes the encrypted entropy-coded bytes as data: from
the first encrypted byte on, the Huffman decoder is out of step and the DC
predictors drift, so the MCUs coded there are noise and everything after
them, up to the next restart marker, is shifted in brightness. By Kerckhoffs
the window (``window``% of the entropy-coded bytes at ``offset``%) is public,
so the attacker knows which bytes are encrypted. This attack walks the MCUs
of the scan (:mod:`benchmark.codecs.jpeg_scan`) and rewrites it:

* an MCU whose bits all lie before the first encrypted byte ``lo`` is kept;
* in a restart interval that meets the encrypted range ``[lo, hi)`` (the
  whole scan without restart markers), the plaintext after ``hi`` still
  codes the interval's last MCUs: decodes tried from the first bits after
  ``hi`` fall back in step (Huffman codes resynchronise) and the part they
  agree on, which ends exactly at the interval's end, is kept bit for bit
  (:func:`~benchmark.codecs.jpeg_scan.resync_tail`). Its DC values are only
  known as differences, so its level is set to put its mean at mid-grey;
* the MCUs in between, whose data is encrypted or could not be placed,
  become flat MCUs (no AC) at that level, or mid-grey (level 128) when no
  tail was found, coded with the file's own Huffman tables;
* intervals entirely before ``lo`` or at/after ``hi`` are plaintext and
  kept byte for byte (the decoder resynchronises at their RST marker).

The rewritten file is a valid JPEG, decoded with the standard decoder.
Per-sample counts of what was replaced (:data:`STAT_KEYS`) come with the
images in the :class:`~benchmark.core.component.AttackResult`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attacks.window import WindowConcealAttack
from benchmark.codecs.cipher import jpeg_selection
from benchmark.codecs.jpeg import decode_jpeg
from benchmark.codecs.jpeg_scan import Cut, Scan, parse_scan, resync_tail, walk_interval, write_scan
from benchmark.core.registry import ATTACKS

__all__ = ["ConcealMCUAttack", "STAT_KEYS", "conceal_jpeg", "plan_concealment"]

STAT_KEYS = ("mcus_greyed", "mcus_resynced", "bytes_dropped", "intervals_hit")


def plan_concealment(scan: Scan, lo: int, hi: int) -> dict[int, Cut]:
    """Where to cut each restart interval that meets the encrypted bytes ``[lo, hi)``.

    Args:
        scan: A :class:`~benchmark.codecs.jpeg_scan.Scan`.
        lo: File offset of the first encrypted byte.
        hi: One past the last encrypted byte.

    Returns:
        Interval index -> :class:`~benchmark.codecs.jpeg_scan.Cut` (the MCUs
        kept before ``lo``); intervals not listed are kept whole.

    Raises:
        CodestreamError: undecodable plaintext before ``lo``.
    """
    if hi <= lo:
        return {}
    cuts = {}
    for k, iv in enumerate(scan.intervals):
        if not (iv.end > iv.start and iv.start < hi and iv.end > lo):
            continue
        cut = walk_interval(scan, k, stop=lo)
        after = int(np.searchsorted(iv.offsets, hi))  # first plaintext byte after the window
        if after < len(iv.data):
            cut = replace(cut, tail=resync_tail(scan, k, 8 * after, cut.kept + 1))
        cuts[k] = cut
    return cuts


def conceal_jpeg(data: bytes, window: float, offset: float) -> tuple[bytes, dict[str, int]]:
    """Rewrite a protected JPEG with its encrypted MCUs replaced by flat ones (see the module docstring).

    Args:
        data: Protected JPEG file.
        window: Public window length, % of the entropy-coded bytes.
        offset: Public window start, % of the entropy-coded bytes.

    Returns:
        (valid JPEG, counts: ``mcus_greyed``, ``mcus_resynced`` (MCUs after
        the window decoded in step again), ``bytes_dropped`` (entropy-coded
        bytes between the last kept MCU and the resynchronised ones, or the
        end of each cut interval), ``intervals_hit``).

    Raises:
        CodestreamError: a file outside the baseline single-scan scope, or malformed.
    """
    scan = parse_scan(data)
    starts, ends = jpeg_selection(data, window, offset)
    lo, hi = (int(starts.min()), int(ends.max())) if starts.size else (0, 0)
    cuts = plan_concealment(scan, lo, hi)
    stats = dict.fromkeys(STAT_KEYS, 0)
    for k, cut in cuts.items():
        iv = scan.intervals[k]
        kept_end = int(iv.offsets[(cut.bits - 1) >> 3]) + 1 if cut.bits else iv.start
        tail = cut.tail.mcus if cut.tail else 0
        tail_start = int(iv.offsets[cut.tail.start >> 3]) if cut.tail and tail else iv.end
        stats["mcus_greyed"] += iv.mcus - cut.kept - tail
        stats["mcus_resynced"] += tail
        stats["bytes_dropped"] += tail_start - kept_end
        stats["intervals_hit"] += 1
    return write_scan(data, scan, cuts), stats


@ATTACKS.register("conceal-mcu")
class ConcealMCUAttack(WindowConcealAttack):
    """MCU-level concealment of selectively encrypted JPEG: encrypted MCUs become flat, the rest is kept.

    MCUs coded before the public encryption window are kept; in each restart
    interval that meets the window (the whole scan without restart markers)
    the MCUs after it are found again by Huffman resynchronisation and kept
    (their brightness estimated), the MCUs in between become flat, and the
    rewritten file is decoded with the standard decoder. Samples whose
    rewrite or decode fails are flagged; per-sample counts are :data:`STAT_KEYS`.
    """

    knowledge = (
        "protected JPEG files and the public scheme parameters (window, offset; Kerckhoffs); no key; no training data"
    )
    codec = "jpeg"
    counters = STAT_KEYS
    rewrite = staticmethod(conceal_jpeg)
    decode = staticmethod(decode_jpeg)

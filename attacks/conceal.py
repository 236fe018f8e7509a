"""Error-concealment attacks on selectively encrypted JPEG 2000: leave out what is encrypted.

The naive attacker decodes the encrypted packet-body bytes as if they were
data and gets noise wherever they land. Packet headers are plaintext, and by
Kerckhoffs the window (``window``% of the codestream at ``offset``%) is
public, so the attacker knows exactly which code-block contributions hold
encrypted bytes. These attacks rewrite the codestream without them
(:mod:`benchmark.codecs.tier2`) and decode the valid rest with OpenJPEG; the
decoder then fills the gaps with zero wavelet coefficients (or coarser
bit-planes), a smooth approximation instead of noise.

* ``conceal-packet``: per precinct, the first packet whose body touches the
  window and every later-layer packet of that precinct become empty packets
  (later layers must go too: their headers and bodies continue the
  code-blocks of the dropped one).
* ``conceal-codeblock``: per code-block, contributions that end before the
  window are kept, and the code-block is cut at its first encrypted byte:
  with RESTART each coding pass is its own codeword segment, so the cut is
  exact at the last fully plaintext pass; without RESTART the straddling
  contribution keeps its plaintext prefix (less a trailing FF) and declares
  ``floor(passes * kept / length)`` of its passes, i.e. bytes are assumed to
  spread evenly over the passes of one contribution (declaring more passes
  than the bytes carry makes the MQ decoder run on padding and emit
  spurious refinements; fewer wastes a few plaintext bytes). Everything of
  that code-block in later layers is dropped.

Per-sample counts of what was left out (:data:`STAT_KEYS`) come with the
images in the :class:`~benchmark.core.component.AttackResult`.
"""

from __future__ import annotations

import numpy as np

from attacks.window import WindowConcealAttack
from benchmark.codecs.cipher import window_range
from benchmark.codecs.j2k import decode_j2k
from benchmark.codecs.tier2 import Contribution, Tier2, parse_tier2, write_tier2
from benchmark.core.registry import ATTACKS

__all__ = [
    "ConcealPacketAttack",
    "ConcealCodeblockAttack",
    "conceal_packets",
    "conceal_codeblocks",
    "conceal_codestream",
    "STAT_KEYS",
]

STAT_KEYS = ("bytes_dropped", "passes_dropped", "codeblocks_dropped", "packets_changed")


def _overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    return end > start and start < hi and end > lo


def conceal_packets(tier2: Tier2, lo: int, hi: int) -> tuple[Tier2, dict[str, int]]:
    """Empty, per precinct, every packet from the first one whose body meets ``[lo, hi)``.

    Args:
        tier2: A :class:`~benchmark.codecs.tier2.Tier2` (left unchanged).
        lo: First encrypted byte (absolute offset).
        hi: One past the last encrypted byte.

    Returns:
        (edited copy, counts of what was dropped: :data:`STAT_KEYS`).
    """
    out = tier2.copy()
    cut: set[tuple[int, int, int]] = set()
    blocks: set[tuple[int, int, int, int]] = set()
    stats = dict.fromkeys(STAT_KEYS, 0)
    for p in out.packets:
        key = (p.component, p.resolution, p.precinct)
        if key not in cut and not _overlaps(p.body_start, p.body_end, lo, hi):
            continue
        cut.add(key)
        stats["packets_changed"] += 1
        for c in p.contributions:
            stats["bytes_dropped"] += c.length
            stats["passes_dropped"] += c.passes
            blocks.add((p.component, p.resolution, c.band, c.block))
        p.contributions = []
        p.empty = True
    stats["codeblocks_dropped"] = len(blocks)
    return out, stats


def _truncate(c: Contribution, lo: int, hi: int, restart: bool, data: bytes) -> tuple[int, tuple[int, ...]]:
    """(passes, lengths) of the plaintext part of a contribution that meets ``[lo, hi)``."""
    bounds = c.start + np.concatenate(([0], np.cumsum(c.lengths)))
    hit = next(k for k in range(len(c.lengths)) if _overlaps(int(bounds[k]), int(bounds[k + 1]), lo, hi))
    if restart:
        return hit, tuple(c.lengths[:hit])
    if len(c.lengths) != 1:
        # A contribution split over several codeword segments (over 109
        # passes) has no per-segment pass count here: drop it whole.
        return 0, ()
    kept = max(0, lo - c.start)
    while kept and data[c.start + kept - 1] == 0xFF:  # a segment must not end in FF
        kept -= 1
    passes = (c.passes * kept) // c.lengths[0]
    return (passes, (kept,)) if passes else (0, ())


def conceal_codeblocks(tier2: Tier2, lo: int, hi: int, data: bytes) -> tuple[Tier2, dict[str, int]]:
    """Cut every code-block at its first byte in ``[lo, hi)`` (see the module docstring).

    Args:
        tier2: A :class:`~benchmark.codecs.tier2.Tier2` (left unchanged).
        lo: First encrypted byte (absolute offset).
        hi: One past the last encrypted byte.
        data: The codestream ``tier2`` was parsed from (to avoid ending a
            truncated segment in FF).

    Returns:
        (edited copy, counts of what was dropped: :data:`STAT_KEYS`).
    """
    out = tier2.copy()
    cut: set[tuple[int, int, int, int]] = set()
    stats = dict.fromkeys(STAT_KEYS, 0)
    for p in out.packets:
        changed = False
        new = []
        for c in p.contributions:
            key = (p.component, p.resolution, c.band, c.block)
            lengths: tuple[int, ...]
            if key in cut:
                passes, lengths = 0, ()
            elif _overlaps(c.start, c.end, lo, hi):
                passes, lengths = _truncate(c, lo, hi, out.restart, data)
                cut.add(key)
            else:
                new.append(c)
                continue
            changed = True
            stats["bytes_dropped"] += c.length - sum(lengths)
            stats["passes_dropped"] += c.passes - passes
            if passes:
                new.append(type(c)(c.band, c.block, passes, lengths, c.start))
        if changed:
            stats["packets_changed"] += 1
            p.contributions = new
    stats["codeblocks_dropped"] = len(cut)
    return out, stats


def conceal_codestream(data: bytes, window: float, offset: float, mode: str) -> tuple[bytes, dict[str, int]]:
    """Rewrite a protected codestream without its encrypted contributions.

    Args:
        data: Protected codestream.
        window: Public window length, % of the codestream length.
        offset: Public window start, % of the codestream length.
        mode: ``"packet"`` or ``"codeblock"``.

    Returns:
        (valid codestream, counts of what was dropped).

    Raises:
        CodestreamError: a codestream the tier-2 parser does not handle.
    """
    tier2 = parse_tier2(data)
    lo, hi = window_range(len(data), window, offset)
    if mode == "packet":
        edited, stats = conceal_packets(tier2, lo, hi)
    elif mode == "codeblock":
        edited, stats = conceal_codeblocks(tier2, lo, hi, data)
    else:
        raise ValueError(f"mode: {mode!r} is not 'packet' or 'codeblock'")
    return write_tier2(edited, data), stats


def _conceal_packets(data: bytes, window: float, offset: float) -> tuple[bytes, dict[str, int]]:
    return conceal_codestream(data, window, offset, "packet")


def _conceal_codeblocks(data: bytes, window: float, offset: float) -> tuple[bytes, dict[str, int]]:
    return conceal_codestream(data, window, offset, "codeblock")


@ATTACKS.register("conceal-packet")
class ConcealPacketAttack(WindowConcealAttack):
    """Packet-level concealment: encrypted packets and their later layers become empty packets.

    Per precinct, from the first packet whose body meets the public
    encryption window on, every packet is replaced by an empty one and the
    rewritten codestream is decoded with OpenJPEG. Samples whose rewrite or
    decode fails are flagged.
    """

    codec = "j2k"
    counters = STAT_KEYS
    rewrite = staticmethod(_conceal_packets)
    decode = staticmethod(decode_j2k)


@ATTACKS.register("conceal-codeblock")
class ConcealCodeblockAttack(WindowConcealAttack):
    """Code-block-level concealment: each code-block is cut at its first encrypted byte.

    Contributions before the public encryption window are kept (with
    RESTART to the last plaintext coding pass, without it the plaintext
    prefix with proportionally fewer passes), the rest of the code-block is
    dropped in all layers, and the rewritten codestream is decoded with
    OpenJPEG. Samples whose rewrite or decode fails are flagged.
    """

    codec = "j2k"
    counters = STAT_KEYS
    rewrite = staticmethod(_conceal_codeblocks)
    decode = staticmethod(decode_j2k)

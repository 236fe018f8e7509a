"""MCU-level walking and rewriting of a baseline JPEG scan.

A small, defensive entropy decoder for one sequential Huffman scan (SOF0 or
SOF1, 8-bit, interleaved or single-component): it parses the frame, Huffman
tables, restart interval and scan headers, splits the entropy-coded segment
into restart intervals, and walks the Huffman-coded MCUs of an interval,
recording the bit where each MCU ends and the DC predictors. It does not
dequantise or transform: the point is to know *where* MCUs lie, so that the
plaintext MCUs of a selectively encrypted file can be kept bit for bit and
the rest replaced by flat MCUs coded with the file's own tables
(:func:`write_scan`). After encrypted bytes, :func:`resync_tail` finds
where the plaintext MCUs of an interval can be decoded in step again.
:func:`coefficient_fields` lists where every coefficient's Huffman code and
appended amplitude bits lie, and :func:`replace_data` writes new data bits
of the same length back with the byte stuffing redone (amplitude encryption).

Untrusted input: malformed data raises
:class:`~benchmark.codecs.CodestreamError`, and anything outside that scope
(progressive, arithmetic, lossless, hierarchical, 12-bit, several scans, a
scan without every component) raises it with a message starting
``"unsupported:"``. Every loop is bounded by the data or the frame size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from benchmark.codecs import MAX_SIDE, CodestreamError
from benchmark.codecs.jpeg import parse_jpeg

__all__ = [
    "Cut",
    "Fields",
    "HuffmanTable",
    "Tail",
    "Interval",
    "coefficient_fields",
    "Scan",
    "ScanComponent",
    "grey_bits",
    "parse_scan",
    "reencode_jpeg",
    "replace_data",
    "resync_tail",
    "walk_interval",
    "write_scan",
]

_SOF0, _SOF1, _DHT, _DRI, _SOS, _DAC = 0xC0, 0xC1, 0xC4, 0xDD, 0xDA, 0xCC
_SOF_NAMES = {
    0xC2: "progressive",
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical",
    0xC7: "hierarchical",
    0xC9: "arithmetic",
    0xCA: "arithmetic",
    0xCB: "arithmetic",
    0xCD: "arithmetic",
    0xCE: "arithmetic",
    0xCF: "arithmetic",
}
_MAX_DC_CATEGORY = 11  # 8-bit samples: DC differences fit in 11 bits
_MAX_AC_CATEGORY = 10
_MAX_BLOCKS_PER_MCU = 10
# One block reads at most 27 + 63 * 26 bits; windows past the data are
# padded this far so lookups never leave the table before the bound check.
_PAD_BITS = 2048


@dataclass(frozen=True)
class HuffmanTable:
    """A Huffman table as a 16-bit lookahead decoder and an encoder.

    Attributes:
        lookup: 65536 entries indexed by the next 16 bits: ``(length << 8) |
            symbol`` of the code they start with, 0 where no code matches.
        codes: symbol -> (code, length) for encoding.
    """

    lookup: tuple[int, ...]
    codes: dict[int, tuple[int, int]]


@dataclass(frozen=True)
class ScanComponent:
    """A component of the scan, with its frame parameters and tables.

    Attributes:
        ident: Component identifier (Ci).
        h: Horizontal sampling factor.
        v: Vertical sampling factor.
        tq: Quantisation table id.
        dc: DC Huffman table.
        ac: AC Huffman table.
    """

    ident: int
    h: int
    v: int
    tq: int
    dc: HuffmanTable
    ac: HuffmanTable


@dataclass(frozen=True)
class Interval:
    """One restart interval of the scan (the whole scan without restarts).

    Attributes:
        start: File offset of its first entropy-coded byte.
        end: File offset one past its last byte (an RSTn marker or the end
            of the segment follows).
        first_mcu: Index of its first MCU in the scan.
        mcus: Number of MCUs it codes.
        data: Its entropy-coded bytes with stuffing and fill bytes removed.
        offsets: File offset of each byte of ``data`` (int64).
    """

    start: int
    end: int
    first_mcu: int
    mcus: int
    data: bytes
    offsets: np.ndarray


@dataclass(frozen=True)
class Scan:
    """What :func:`parse_scan` found.

    Attributes:
        width: Frame width.
        height: Frame height.
        components: Scan components, in scan order.
        blocks: Component index (into ``components``) of each block of an MCU.
        restart_interval: MCUs per restart interval (0: none).
        mcu_cols: MCUs per row.
        mcu_rows: MCU rows.
        mcu_size: (height, width) in pixels covered by one MCU.
        segment: ``[start, end)`` of the entropy-coded segment.
        intervals: The restart intervals, in order.
    """

    width: int
    height: int
    components: tuple[ScanComponent, ...]
    blocks: tuple[int, ...]
    restart_interval: int
    mcu_cols: int
    mcu_rows: int
    mcu_size: tuple[int, int]
    segment: tuple[int, int]
    intervals: tuple[Interval, ...]

    @property
    def mcus(self) -> int:
        """Number of MCUs in the scan."""
        return self.mcu_cols * self.mcu_rows


@dataclass(frozen=True)
class Cut:
    """Where an interval is cut: its first ``kept`` MCUs and a ``tail`` stay, the MCUs between go flat.

    Attributes:
        kept: MCUs kept from the start of the interval.
        bits: Bits of ``Interval.data`` those MCUs take.
        preds: DC predictor of each scan component after them.
        tail: The interval's last MCUs, found again after the cut, or None.
    """

    kept: int
    bits: int
    preds: tuple[int, ...]
    tail: Tail | None = None


@dataclass(frozen=True)
class Tail:
    """The last MCUs of an interval, found again after the encrypted bytes.

    Attributes:
        mcus: MCUs recovered at the end of the interval.
        start: Bit of ``Interval.data`` where the first of them starts.
        end: Bit after the last of them (the padding follows).
        level: Estimated DC predictor of each scan component where the tail
            starts (its DC values are coded as differences from it).
    """

    mcus: int
    start: int
    end: int
    level: tuple[int, ...] = ()


@dataclass(frozen=True)
class Fields:
    """Where the coefficients of a scan are coded, one entry per coefficient with a Huffman symbol.

    Bits count along the scan's data (:attr:`Interval.data` of every interval
    laid end to end, stuffing, fill and RST markers left out; intervals are
    byte-aligned there). EOB and ZRL symbols have no entry.

    Attributes:
        code: Bit where the coefficient's Huffman code starts (int64).
        start: Bit where its appended amplitude bits start (int64).
        size: How many amplitude bits follow the code: its category (int64; 0
            for a DC difference of 0).
        dc: Whether it is a DC difference (bool).
        nbits: Bits of the scan's data.
    """

    code: np.ndarray
    start: np.ndarray
    size: np.ndarray
    dc: np.ndarray
    nbits: int


class _BitError(Exception):
    """Invalid entropy-coded data at bit ``pos`` of an interval (internal)."""

    def __init__(self, pos: int, what: str):
        super().__init__(what)
        self.pos = pos


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------- headers


@functools.lru_cache(maxsize=8)  # ~2.5 MB a table: standard tables hit, fuzzed ones do not pile up
def _huffman(counts: bytes, values: bytes) -> HuffmanTable:
    """Canonical Huffman codes (JPEG Annex C) from BITS and HUFFVAL."""
    lengths = np.repeat(np.arange(1, 17), np.frombuffer(counts, np.uint8))
    codes: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            codes.setdefault(values[k], (code, length))
            code, k = code + 1, k + 1
        if code > (1 << length):
            raise CodestreamError("malformed JPEG: Huffman table with more codes than its lengths allow")
        code <<= 1
    # Canonical codes in order cover a contiguous prefix of the 16-bit space.
    span = 1 << (16 - lengths)
    entries = (lengths << 8) | np.frombuffer(values, np.uint8)
    lookup = np.zeros(1 << 16, np.int64)
    lookup[: int(span.sum())] = np.repeat(entries, span)
    return HuffmanTable(tuple(lookup.tolist()), codes)


def _read_dht(seg: bytes, tables: dict[tuple[int, int], HuffmanTable]) -> None:
    pos = 0
    while pos < len(seg):
        if pos + 17 > len(seg):
            raise CodestreamError("malformed JPEG: truncated Huffman table")
        tc, th = seg[pos] >> 4, seg[pos] & 15
        if tc > 1 or th > 3:
            raise CodestreamError(f"malformed JPEG: Huffman table class {tc} id {th}")
        counts = seg[pos + 1 : pos + 17]
        total = sum(counts)
        if total == 0 or total > 256 or pos + 17 + total > len(seg):
            raise CodestreamError(f"malformed JPEG: Huffman table with {total} codes")
        tables[(tc, th)] = _huffman(bytes(counts), bytes(seg[pos + 17 : pos + 17 + total]))
        pos += 17 + total


def _read_sof(code: int, seg: bytes) -> tuple[int, int, dict[int, tuple[int, int, int]]]:
    """(width, height, {component id: (h, v, tq)}) of a SOF0/SOF1 segment."""
    if code not in (_SOF0, _SOF1):
        raise CodestreamError(f"unsupported: {_SOF_NAMES.get(code, 'non-baseline')} JPEG (SOF 0xFF{code:02X})")
    if seg[0] != 8:
        raise CodestreamError(f"unsupported: {seg[0]}-bit JPEG samples (8-bit only)")
    height, width, count = (seg[1] << 8) | seg[2], (seg[3] << 8) | seg[4], seg[5]
    if max(width, height) > MAX_SIDE:
        raise CodestreamError(f"unsupported: JPEG image {width}x{height} over {MAX_SIDE} a side")
    if not 1 <= count <= 4:
        raise CodestreamError(f"unsupported: {count} frame components")
    comps: dict[int, tuple[int, int, int]] = {}
    for i in range(count):
        ident, hv, tq = seg[6 + 3 * i : 9 + 3 * i]
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3 or ident in comps:
            raise CodestreamError(f"malformed JPEG: frame component {ident} (sampling {h}x{v}, table {tq})")
        comps[ident] = (h, v, tq)
    return width, height, comps


def _read_sos(
    seg: bytes, frame: dict[int, tuple[int, int, int]], tables: dict[tuple[int, int], HuffmanTable]
) -> tuple[ScanComponent, ...]:
    count = seg[0]
    ss, se, a = seg[1 + 2 * count : 4 + 2 * count]
    if (ss, se, a) != (0, 63, 0):
        raise CodestreamError(f"unsupported: scan with spectral selection {ss}..{se}, approximation {a:#x}")
    comps: list[ScanComponent] = []
    for i in range(count):
        ident, td_ta = seg[1 + 2 * i : 3 + 2 * i]
        td, ta = td_ta >> 4, td_ta & 15
        if ident not in frame or any(c.ident == ident for c in comps):
            raise CodestreamError(f"malformed JPEG: scan component {ident} not in the frame or repeated")
        if (0, td) not in tables or (1, ta) not in tables:
            raise CodestreamError(f"malformed JPEG: scan component {ident} uses an undefined Huffman table")
        h, v, tq = frame[ident]
        comps.append(ScanComponent(ident, h, v, tq, tables[(0, td)], tables[(1, ta)]))
    if len(comps) != len(frame):
        raise CodestreamError("unsupported: the scan does not hold every frame component")
    return tuple(comps)


def _headers(data: bytes, sos_end: int) -> tuple[int, int, tuple[ScanComponent, ...], int]:
    """(width, height, scan components, restart interval) from the headers before the scan."""
    frame = None
    tables: dict[tuple[int, int], HuffmanTable] = {}
    restart = 0
    pos = 2
    while pos < sos_end:  # parse_jpeg has checked the segment lengths
        while data[pos + 1] == 0xFF:
            pos += 1
        code = data[pos + 1]
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        seg = data[pos + 4 : end]
        if code == _DAC:
            raise CodestreamError("unsupported: arithmetic-coded JPEG (DAC segment)")
        if code in _SOF_NAMES or code in (_SOF0, _SOF1):
            if frame is not None:
                raise CodestreamError("malformed JPEG: a second frame header")
            width, height, frame = _read_sof(code, seg)
        elif code == _DHT:
            _read_dht(seg, tables)
        elif code == _DRI:
            if len(seg) != 2:
                raise CodestreamError("malformed JPEG: DRI segment length")
            restart = (seg[0] << 8) | seg[1]
        elif code == _SOS:
            if end != sos_end or frame is None:
                raise CodestreamError("malformed JPEG: scan header out of place")
            return width, height, _read_sos(seg, frame, tables), restart
        pos = end
    raise CodestreamError("malformed JPEG: no scan header")


def _mcu_geometry(
    width: int, height: int, comps: tuple[ScanComponent, ...]
) -> tuple[tuple[int, ...], int, int, tuple[int, int]]:
    """(blocks per MCU, MCU columns, MCU rows, MCU size in pixels) of the scan (JPEG A.2)."""
    hmax, vmax = max(c.h for c in comps), max(c.v for c in comps)
    if len(comps) == 1:
        # Non-interleaved: one block per MCU, over the component's own grid.
        c = comps[0]
        cols, rows = _ceil_div(_ceil_div(width * c.h, hmax), 8), _ceil_div(_ceil_div(height * c.v, vmax), 8)
        return (0,), cols, rows, (8 * vmax // c.v, 8 * hmax // c.h)
    blocks = tuple(i for i, c in enumerate(comps) for _ in range(c.h * c.v))
    if len(blocks) > _MAX_BLOCKS_PER_MCU:
        raise CodestreamError(f"malformed JPEG: {len(blocks)} blocks per MCU (at most {_MAX_BLOCKS_PER_MCU})")
    return blocks, _ceil_div(width, 8 * hmax), _ceil_div(height, 8 * vmax), (8 * vmax, 8 * hmax)


def _split_intervals(data: bytes, start: int, end: int, mcus: int, restart: int) -> tuple[Interval, ...]:
    """Restart intervals of the segment ``[start, end)``, stuffing and fill removed."""
    seg = np.frombuffer(data, np.uint8, end - start, start)
    ff = seg == 0xFF
    after_ff = np.zeros_like(ff)
    after_ff[1:] = ff[:-1]
    rst_byte = after_ff & (seg >= 0xD0) & (seg <= 0xD7)
    stuffing = after_ff & (seg == 0x00)
    nxt = np.full(seg.size, 0xFF, np.uint8)  # the segment ends at a marker's FF
    nxt[:-1] = seg[1:]
    bad = ff & (nxt != 0x00) & (nxt != 0xFF) & ((nxt < 0xD0) | (nxt > 0xD7))
    if bad.any():
        raise CodestreamError(f"malformed JPEG: marker inside the scan at byte {start + int(np.argmax(bad))}")
    # An FF is data only when stuffed; before a marker or another FF it is fill.
    keep = ~(stuffing | rst_byte | (ff & (nxt != 0x00)))
    rst = np.flatnonzero(rst_byte)
    count = _ceil_div(mcus, restart) if restart else 1
    if rst.size != count - 1:
        raise CodestreamError(f"malformed JPEG: {rst.size} restart markers where {count - 1} are due")
    if rst.size and np.any(seg[rst] != 0xD0 + np.arange(rst.size) % 8):
        raise CodestreamError("malformed JPEG: restart markers out of sequence")
    bounds = np.concatenate(([0], rst + 1)), np.concatenate((rst - 1, [seg.size]))
    intervals = []
    for k, (a, b) in enumerate(zip(bounds[0].tolist(), bounds[1].tolist())):
        idx = a + np.flatnonzero(keep[a:b])
        first = k * restart
        n_mcus = (min(mcus, first + restart) - first) if restart else mcus
        intervals.append(
            Interval(start + a, start + b, first, n_mcus, seg[idx].tobytes(), idx.astype(np.int64) + start)
        )
    return tuple(intervals)


def parse_scan(data: bytes) -> Scan:
    """Parse the headers and split the single scan of a baseline JPEG into restart intervals.

    Args:
        data: A JPEG file (untrusted).

    Returns:
        The :class:`Scan`.

    Raises:
        CodestreamError: malformed, or ``"unsupported: ..."`` outside baseline
            / extended sequential Huffman 8-bit with one scan.
    """
    layout = parse_jpeg(data)
    data = bytes(data)
    if len(layout.segments) != 1:
        raise CodestreamError(f"unsupported: {len(layout.segments)} scans (one sequential scan only)")
    start, end = layout.segments[0]
    width, height, comps, restart = _headers(data, start)
    blocks, cols, rows, size = _mcu_geometry(width, height, comps)
    intervals = _split_intervals(data, start, end, cols * rows, restart)
    return Scan(width, height, comps, blocks, restart, cols, rows, size, (start, end), intervals)


# ---------------------------------------------------------------- decoding


@functools.lru_cache(maxsize=4)  # an interval is walked, then resynchronised: decode its bits once
def _windows(data: bytes) -> list[int]:
    """The 16 bits starting at each bit of ``data`` (1-bits past the end)."""
    buf = np.frombuffer(data + b"\xff" * (_PAD_BITS // 8 + 3), np.uint8).astype(np.int64)
    i = np.arange(8 * len(data) + _PAD_BITS)
    byte, shift = i >> 3, 8 - (i & 7)
    v = (buf[byte] << 16) | (buf[byte + 1] << 8) | buf[byte + 2]
    return ((v >> shift) & 0xFFFF).tolist()


def _decode_block(
    win: list[int], pos: int, dc: tuple[int, ...], ac: tuple[int, ...], fields: list | None = None
) -> tuple[int, int]:
    """Skip one block's codes from bit ``pos``: (bit after the block, DC difference).

    With ``fields``, append ``(code bit, amplitude bit, category, is DC)`` of
    the DC difference and of every nonzero AC coefficient to it.
    """
    e = dc[win[pos]]
    if not e:
        raise _BitError(pos, "invalid DC Huffman code")
    if fields is not None:
        fields.append((pos, pos + (e >> 8), e & 0xFF, True))
    pos += e >> 8
    s = e & 0xFF
    diff = 0
    if s:
        if s > _MAX_DC_CATEGORY:
            raise _BitError(pos, f"DC category {s}")
        bits = win[pos] >> (16 - s)
        diff = bits if bits >> (s - 1) else bits - (1 << s) + 1
        pos += s
    k = 1
    while k < 64:  # every symbol but EOB advances k, so at most 63 symbols
        e = ac[win[pos]]
        if not e:
            raise _BitError(pos, "invalid AC Huffman code")
        code = pos
        pos += e >> 8
        r, s = (e >> 4) & 15, e & 15
        if s == 0:
            if r == 0:
                break
            if r != 15:
                raise _BitError(pos, f"AC symbol {e & 0xFF:#04x}")
            k += 16
            if k > 64:
                raise _BitError(pos, "zero run past the end of the block")
            continue
        k += r
        if k > 63 or s > _MAX_AC_CATEGORY:
            raise _BitError(pos, f"AC coefficient {k} of category {s}")
        if fields is not None:
            fields.append((code, pos, s, False))
        pos += s
        k += 1
    return pos, diff


def _decode_mcu(win: list[int], pos: int, plan: tuple, preds: list[int], nbits: int, fields: list | None = None) -> int:
    for comp, dc, ac in plan:
        pos, diff = _decode_block(win, pos, dc, ac, fields)
        if pos > nbits:
            raise _BitError(nbits, "MCU runs past the end of its interval")
        preds[comp] += diff
    return pos


def walk_interval(scan: Scan, index: int, stop: int | None = None) -> Cut:
    """Walk the MCUs of one interval, from its start, up to ``stop``.

    Args:
        scan: From :func:`parse_scan`.
        index: Interval index.
        stop: File offset of the first untrusted byte, or None to walk the
            whole interval. The walk keeps the MCUs whose last bit lies in a
            byte before ``stop``; it ends at the first MCU that reaches
            ``stop`` or fails to decode with bits at or after ``stop``.

    Returns:
        The :class:`Cut` after the kept MCUs (all of them when ``stop`` is None).

    Raises:
        CodestreamError: undecodable data entirely before ``stop`` (anywhere
            when ``stop`` is None), or fewer coded MCUs than the interval needs.
    """
    iv = scan.intervals[index]
    preds = [0] * len(scan.components)
    if stop is not None and stop <= iv.start:
        return Cut(0, 0, tuple(preds))
    win, nbits = _windows(iv.data), 8 * len(iv.data)
    plan = tuple((c, scan.components[c].dc.lookup, scan.components[c].ac.lookup) for c in scan.blocks)
    pos = 0
    for kept in range(iv.mcus):
        trial = list(preds)
        try:
            end = _decode_mcu(win, pos, plan, trial, nbits)
        except _BitError as err:
            last = min(err.pos + 15, nbits - 1)
            if stop is not None and last >= 0 and int(iv.offsets[last >> 3]) >= stop:
                return Cut(kept, pos, tuple(preds))
            raise CodestreamError(f"malformed JPEG: {err} in MCU {iv.first_mcu + kept}") from None
        if stop is not None and int(iv.offsets[(end - 1) >> 3]) >= stop:
            return Cut(kept, pos, tuple(preds))
        pos, preds = end, trial
    return Cut(iv.mcus, pos, tuple(preds))


def coefficient_fields(scan: Scan) -> Fields:
    """Walk every MCU of the scan and list where each coefficient's code and amplitude bits lie.

    Raises:
        CodestreamError: undecodable data, or fewer coded MCUs than an interval needs.
    """
    plan = tuple((c, scan.components[c].dc.lookup, scan.components[c].ac.lookup) for c in scan.blocks)
    rows: list[tuple[int, int, int, bool]] = []
    base = 0
    for iv in scan.intervals:
        win, nbits = _windows(iv.data), 8 * len(iv.data)
        found: list[tuple[int, int, int, bool]] = []
        preds = [0] * len(scan.components)
        pos = 0
        for m in range(iv.mcus):
            try:
                pos = _decode_mcu(win, pos, plan, preds, nbits, found)
            except _BitError as err:
                raise CodestreamError(f"malformed JPEG: {err} in MCU {iv.first_mcu + m}") from None
        rows += [(code + base, start + base, size, dc) for code, start, size, dc in found]
        base += nbits
    table = np.array(rows, np.int64).reshape(-1, 4)
    return Fields(table[:, 0], table[:, 1], table[:, 2], table[:, 3].astype(bool), base)


_RESYNC_SPAN = 32  # candidate start bits tried after the encrypted bytes


def _ends_at(win: list[int], pos: int, nbits: int) -> bool:
    """True when only 1-bit padding (fewer than 8 bits) follows ``pos``."""
    left = nbits - pos
    return 0 <= left < 8 and win[pos] >> (16 - left) == (1 << left) - 1


class _Chains:
    """Block-by-block decodes of one interval from trial starts, sharing what they learn.

    A Huffman decoder started at the wrong bit usually falls back into step
    within a few codewords, so decodes from neighbouring starts merge. Each
    block start ``(bit, phase)`` (phase: the block's place in the MCU) that
    a decode reached the end from is remembered with its count of blocks
    to the end and its *entry*: where that decode joined the first
    successful one. Starts that led to a decoding error are remembered as dead.
    """

    def __init__(self, scan: Scan, iv: Interval):
        self.win, self.nbits = _windows(iv.data), 8 * len(iv.data)
        self.tables = [(scan.components[c].dc.lookup, scan.components[c].ac.lookup) for c in scan.blocks]
        self.max_blocks = iv.mcus * len(scan.blocks)
        self.to_end: dict[tuple[int, int], int] = {}
        self.entry: dict[tuple[int, int], tuple[int, int]] = {}
        self.main: list[tuple[int, int]] = []
        self.dead: set[tuple[int, int]] = set()

    def run(self, state: tuple[int, int]) -> tuple[int, int] | None:
        """Decode from ``state`` to the end; where it joined the first successful decode, or None."""
        path: list[tuple[int, int]] = []
        bpm = len(self.tables)
        while state not in self.to_end:
            pos, phase = state
            if state in self.dead or len(path) > self.max_blocks or pos > self.nbits:
                self.dead.update(path)
                return None
            if phase == 0 and _ends_at(self.win, pos, self.nbits):
                # An end of its own: the first decode's, or a rival parse that
                # shares none of it (then nothing before the end is trusted).
                self.to_end[state] = 0
                self.entry[state] = state if not self.main else self.main[-1]
                break
            path.append(state)
            try:
                pos, _ = _decode_block(self.win, pos, *self.tables[phase])
            except _BitError:
                self.dead.update(path)
                return None
            state = (pos, (phase + 1) % bpm)
        count = self.to_end[state]
        if not self.main:
            self.main = path + [state]
        for i, s in enumerate(path):
            self.to_end[s] = count + len(path) - i
            self.entry[s] = s if self.main[0] == path[0] else self.entry[state]
        return self.entry[path[0] if path else state]


def resync_tail(scan: Scan, index: int, start: int, after_mcu: int) -> Tail | None:
    """Find the MCUs of an interval that follow bit ``start`` and can be decoded in step again.

    Encrypted bytes throw the Huffman decoder out of step, but the plaintext
    after them still codes the interval's last MCUs. Decodes are tried from
    each of the first bits after ``start`` and each place in an MCU; the ones
    that end exactly at the interval's padding, on an MCU boundary, are
    kept. They merge (Huffman codes resynchronise), and only the part that
    all of them share is trusted: its first MCU boundary starts the tail.

    Args:
        scan: From :func:`parse_scan`.
        index: Interval index.
        start: First bit of ``Interval.data`` after the untrusted bytes.
        after_mcu: MCUs of the interval that come before ``start`` (kept
            or lost): the tail never claims them.

    Returns:
        The :class:`Tail`, or None when no decode from those starts reaches
        the end in step.
    """
    iv = scan.intervals[index]
    chains = _Chains(scan, iv)
    entries = []
    for pos in range(start, min(start + _RESYNC_SPAN, chains.nbits)):
        for phase in range(len(scan.blocks)):
            entry = chains.run((pos, phase))
            if entry is not None:
                entries.append(entry)
    if not entries:
        return None
    order = {s: i for i, s in enumerate(chains.main)}
    first = max(order[e] for e in entries)
    trusted = [s for s in chains.main[first:] if s[1] == 0]
    bpm = len(scan.blocks)
    begin = trusted[0] if trusted else None
    if begin is None or chains.to_end[begin] == 0:
        return None
    mcus = chains.to_end[begin] // bpm
    if mcus > iv.mcus - after_mcu:
        return None
    return Tail(mcus, begin[0], chains.main[-1][0], _tail_level(scan, chains, begin[0]))


def _tail_level(scan: Scan, chains: _Chains, start: int) -> tuple[int, ...]:
    """DC predictors that put each component's mean tail DC at mid-grey.

    The tail's DC values are known only up to the predictor it starts from
    (lost with the encrypted MCUs); a face's mean level is near mid-grey, so
    that is the guess.
    """
    sums = [0.0] * len(scan.components)
    counts = [0] * len(scan.components)
    running = [0] * len(scan.components)
    pos = start
    for _ in range(chains.max_blocks):
        for phase, c in enumerate(scan.blocks):
            pos, diff = _decode_block(chains.win, pos, *chains.tables[phase])
            running[c] += diff
            sums[c] += running[c]
            counts[c] += 1
        if _ends_at(chains.win, pos, chains.nbits):
            break
    return tuple(-round(sm / max(n, 1)) for sm, n in zip(sums, counts))


# ---------------------------------------------------------------- encoding


def _code_bits(table: HuffmanTable, symbol: int, what: str) -> list[int]:
    if symbol not in table.codes:
        raise CodestreamError(f"unsupported: the {what} Huffman table has no code for symbol {symbol:#04x}")
    code, length = table.codes[symbol]
    return [(code >> (length - 1 - i)) & 1 for i in range(length)]


def _grey_block(comp: ScanComponent, diff: int) -> list[int]:
    """Bits of a block whose DC moves the predictor by ``diff`` and whose AC are all zero."""
    s = abs(diff).bit_length()
    if s > _MAX_DC_CATEGORY:
        raise CodestreamError(f"unsupported: DC difference {diff} out of the 8-bit range")
    extra = diff if diff > 0 else diff + (1 << s) - 1
    return (
        _code_bits(comp.dc, s, "DC") + [(extra >> (s - 1 - i)) & 1 for i in range(s)] + _code_bits(comp.ac, 0x00, "AC")
    )


def grey_bits(scan: Scan, preds: tuple[int, ...], count: int, level: tuple[int, ...] | None = None) -> np.ndarray:
    """Bits of ``count`` flat MCUs (every AC coefficient 0) after predictors ``preds``.

    The first block of each component codes ``level - pred`` to bring its DC
    to ``level`` (default 0: mid-grey, 128 after the level shift); every
    later block codes 0. All AC are an EOB.

    Returns:
        uint8 array of 0/1 bits.
    """
    if count <= 0:
        return np.zeros(0, np.uint8)
    target = level if level is not None else (0,) * len(preds)
    pending = list(preds)
    first: list[int] = []
    for c in scan.blocks:
        first += _grey_block(scan.components[c], target[c] - pending[c])
        pending[c] = target[c]
    rest = [b for c in scan.blocks for b in _grey_block(scan.components[c], 0)]
    return np.concatenate((np.array(first, np.uint8), np.tile(np.array(rest, np.uint8), count - 1)))


def _emit(bits: np.ndarray) -> bytes:
    """Interval bytes from its bits: 1-bit padding to a byte, FF stuffed with 00."""
    padded = np.concatenate((bits, np.ones(-bits.size % 8, np.uint8)))
    return np.packbits(padded).tobytes().replace(b"\xff", b"\xff\x00")


def write_scan(data: bytes, scan: Scan, cuts: dict[int, Cut]) -> bytes:
    """Rewrite the scan: cut intervals keep their first MCUs and their tail, and go flat in between.

    Headers and everything after the segment are copied; intervals not in
    ``cuts`` are copied byte for byte; RST markers are written in sequence.

    Args:
        data: The file ``scan`` was parsed from.
        scan: From :func:`parse_scan`.
        cuts: Interval index -> :class:`Cut` (from :func:`walk_interval`).

    Returns:
        The rewritten JPEG file.

    Raises:
        CodestreamError: the file's tables cannot code a flat MCU.
    """
    data = bytes(data)
    parts = [data[: scan.segment[0]]]
    for k, iv in enumerate(scan.intervals):
        if k:
            parts.append(bytes((0xFF, 0xD0 + (k - 1) % 8)))
        cut = cuts.get(k)
        if cut is None:
            parts.append(data[iv.start : iv.end])
            continue
        bits = np.unpackbits(np.frombuffer(iv.data, np.uint8))
        tail = cut.tail or Tail(0, 0, 0)
        # A recovered tail codes its DC as differences from the predictor the
        # flat MCUs leave behind: they sit at the tail's estimated level.
        level = tail.level if tail.mcus else None
        grey = grey_bits(scan, cut.preds, iv.mcus - cut.kept - tail.mcus, level)
        parts.append(_emit(np.concatenate((bits[: cut.bits], grey, bits[tail.start : tail.end]))))
    parts.append(data[scan.segment[1] :])
    return b"".join(parts)


def replace_data(data: bytes, scan: Scan, new: bytes) -> bytes:
    """The file with the scan's data bytes replaced, byte stuffing redone, everything else in place.

    Args:
        data: The file ``scan`` was parsed from.
        scan: From :func:`parse_scan`.
        new: New data for every interval laid end to end, as long as theirs
            (same bit layout, see :class:`Fields`).

    Returns:
        The file: each data byte replaced, stuffed (FF 00) when it is FF;
        headers, RST markers, fill bytes and whatever follows the scan are kept.
        Its length changes by the change in the count of FF data bytes.

    Raises:
        CodestreamError: ``"unsupported: ..."`` for fill bytes just before a
            stuffed FF (``FF FF 00``, which only markers may follow in valid
            JPEG): replacing that FF by another byte would make a marker.
        ValueError: ``new`` of another length than the scan's data.
    """
    data = bytes(data)
    start, end = scan.segment
    seg = np.frombuffer(data, np.uint8, end - start, start)
    pos = np.concatenate([iv.offsets for iv in scan.intervals]) - start if scan.intervals else np.zeros(0, np.int64)
    vals = np.frombuffer(new, np.uint8)
    if vals.size != pos.size:
        raise ValueError(f"new scan data has {vals.size} bytes, the scan {pos.size}")
    stuffed = pos[seg[pos] == 0xFF]  # the parser only takes an FF as data when 00 follows it
    before = stuffed[stuffed > 0] - 1
    if np.any(seg[before] == 0xFF):
        at = start + int(before[np.argmax(seg[before] == 0xFF)])
        raise CodestreamError(f"unsupported: fill byte before stuffed data at byte {at} of the scan")
    out = seg.copy()
    out[pos] = vals
    keep = np.ones(seg.size, bool)
    keep[stuffed + 1] = False
    removed = np.cumsum(~keep)
    moved = pos - removed[pos]
    body = np.insert(out[keep], moved[vals == 0xFF] + 1, 0)
    return data[:start] + body.tobytes() + data[end:]


def reencode_jpeg(data: bytes) -> bytes:
    """Walk every MCU of every interval and write them back (a round-trip check).

    The result decodes to the same pixels as ``data``; bytes after the last
    MCU of an interval other than the 1-bit padding are dropped.

    Raises:
        CodestreamError: see :func:`parse_scan` and :func:`walk_interval`.
    """
    scan = parse_scan(data)
    return write_scan(data, scan, {k: walk_interval(scan, k) for k in range(len(scan.intervals))})

"""The leaderboard's data model: grouping, ranking, conventions and comparisons.

Measured rows are grouped by dataset (name and content fingerprint) and
recognizer (name and parameters), reported entries by citation, dataset and
recognizer; the two are never ranked together. Within a group, attacks on
each scheme setting are ranked by the strength-view EER (lower: stronger),
and scheme settings by the EER under their strongest attack. A reported line
is shown beside measured lines of the same scheme label and attack, with the
conventions on which their figures differ; lines measured on demo data
(synthetic faces) are never set beside published figures. Figures stay numbers here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmark.engine.results import Results
from benchmark.metrics.irreversibility import SAR_TARGETS
from benchmark.metrics.unlinkability import MAX_DEFAULT_BINS, MIN_BINS, default_bins
from benchmark.metrics.verification import target_key
from reports.leaderboard.common import PLAIN, LeaderboardError, Metrics, Number, canonical, finite, optional_text
from reports.leaderboard.entries import NOT_STATED, Conventions, EntryFile
from reports.leaderboard.runs import Run
from reports.training import not_converged

__all__ = [
    "DEFAULT_SAR_TARGET",
    "HARNESS_EER_RULE",
    "HARNESS_BINS_RULE",
    "PROTOCOL_BINS_RULE",
    "Line",
    "SchemeBoard",
    "Group",
    "Comparison",
    "Leaderboard",
    "measured_conventions",
    "build_leaderboard",
]

#: FMR at which the SAR column is read unless another target is asked for.
DEFAULT_SAR_TARGET = SAR_TARGETS[0]  # the first SAR every run reports
#: How the harness interpolates the EER (:func:`benchmark.metrics.verification.eer`).
HARNESS_EER_RULE = (
    "crossing FMR = FNMR of the empirical ROC, linear between operating points "
    "(inside the FVC2000 [EER_low, EER_high] interval)"
)
#: How the harness bins scores for D↔sys and maximal linkability by default.
HARNESS_BINS_RULE = (
    f"equal-width bins over the pooled score range, n_mated // 10 clipped to [{MIN_BINS}, {MAX_DEFAULT_BINS}] "
    "(harness default)"
)
#: The same, where the protocol set the number of bins.
PROTOCOL_BINS_RULE = "equal-width bins over the pooled score range, number set by the protocol"

_FMR_KEY_RE = re.compile(r"^(?:fnmr|sar)_at_fmr_([0-9.eE+-]+)$")


# --------------------------------------------------------------------------- the model


@dataclass
class Line:
    """One attack (or a baseline) on one scheme setting, from one run or from reported entries.

    ``strength`` holds the strength-view metrics (for a baseline line: the
    baseline's), ``linkage`` the linkage-view metrics of the same attack.
    Exactly one of ``run`` (measured) and ``entries`` (reported) is set.
    """

    attack: str
    conventions: Conventions
    strength: Metrics | None = None
    linkage: Metrics | None = None
    knowledge: str | None = None
    run: Run | None = None
    entries: tuple[EntryFile, ...] = ()
    rank: int | None = None
    #: Whose impostor scores set the strength row's SAR thresholds (measured lines that record it).
    threshold_source: str | None = None
    #: The flag of a learned attack whose model stopped on a budget, not on a validation plateau (measured lines).
    not_converged: str | None = None

    @property
    def reported(self) -> bool:
        """True for a line of reported entries."""
        return self.run is None

    def value(self, view: Literal["strength", "linkage"], key: str) -> float | None:
        """A finite figure of one view, else None."""
        return finite(self.strength if view == "strength" else self.linkage, key)


@dataclass
class SchemeBoard:
    """The attacks on one scheme setting, ranked, and the scheme's line in the scheme table."""

    scheme: str
    params: Mapping[str, Any]
    lines: list[Line]
    strongest: Line | None = None
    most_linking: Line | None = None
    rank: int | None = None
    description: str = ""

    @property
    def n_attacks(self) -> int:
        """Distinct attacks tried against this setting."""
        return len({line.attack for line in self.lines})


@dataclass
class Group:
    """One (dataset, recognizer) of measured runs, or one (citation, dataset, recognizer) of reported entries."""

    reported: bool
    dataset_name: str
    fingerprint: str | None
    dataset_description: str
    roots: tuple[str, ...]
    n_faces: int | None
    n_subjects: int | None
    recognizer: str
    recognizer_params: Mapping[str, Any]
    baselines: list[Line]
    schemes: list[SchemeBoard]
    citation: str | None = None
    url: str | None = None
    doi: str | None = None
    index: int = 0
    #: Measured on demo data (the synthetic faces): labelled, and never set beside reported figures.
    demo: bool = False

    @property
    def runs(self) -> list[Run]:
        """Runs contributing a line, in run order."""
        found = {line.run.index: line.run for line in self.all_lines() if line.run is not None}
        return [found[i] for i in sorted(found)]

    @property
    def protocols(self) -> list[str]:
        """Distinct protocols of the contributing runs."""
        return list(dict.fromkeys(run.protocol for run in self.runs))

    @property
    def splits_differ(self) -> bool:
        """True when contributing runs evaluated different splits (folds, test folds, seed)."""
        return len({(r.folds, r.test_folds, r.seed) for r in self.runs}) > 1

    @property
    def notes(self) -> list[str]:
        """Distinct notes of the group's reported entries, in entry order."""
        found = sorted({item.index: item for line in self.all_lines() for item in line.entries}.items())
        return list(dict.fromkeys(item.entry.notes for _, item in found if item.entry.notes))

    def all_lines(self) -> Iterable[Line]:
        """Baseline lines, then every scheme's attack lines."""
        yield from self.baselines
        for board in self.schemes:
            yield from board.lines


@dataclass
class Comparison:
    """A reported line shown beside a measured line of the same scheme label and attack (never ranked)."""

    reported: Line
    reported_group: Group
    measured: Line
    measured_group: Group
    scheme: str
    differs: tuple[str, ...]


@dataclass
class Leaderboard:
    """Everything the renderers show; figures are numbers."""

    runs: list[Run]
    entries: list[EntryFile]
    measured: list[Group]
    reported: list[Group]
    comparisons: list[Comparison]
    sar_target: float
    conventions: list[Conventions] = field(default_factory=list)

    def footnote(self, conventions: Conventions) -> int:
        """1-based number of a conventions footnote (registered on first use by the builder)."""
        return self.conventions.index(conventions) + 1

    @property
    def sar_key(self) -> str:
        """Metric key of the SAR column."""
        return f"sar_at_fmr_{target_key(self.sar_target)}"


# --------------------------------------------------------------------------- conventions


def _targets(metrics: Metrics | None) -> set[float]:
    out = set()
    for key in metrics or {}:
        match = _FMR_KEY_RE.match(key)
        if match:
            try:
                out.add(float(match.group(1)))
            except ValueError:
                continue
    return out


def measured_conventions(strength: Metrics | None, linkage: Metrics | None = None) -> Conventions:
    """The conventions of the harness's figures on one line.

    The EER rule is the harness's; the bins are those of the linkage row
    (else the strength row), with the default rule when the number equals
    :func:`benchmark.metrics.unlinkability.default_bins` of the row's mated
    count, else the protocol's; the FMR targets are those of the rows' keys.

    Args:
        strength: Strength-view (or baseline) metrics.
        linkage: Linkage-view metrics of the same attack.

    Returns:
        The conventions.
    """
    binned = linkage if finite(linkage, "bins") is not None else strength
    bins, n_mated = finite(binned, "bins"), finite(binned, "n_genuine")
    rule = HARNESS_BINS_RULE
    if bins is not None and n_mated is not None and int(bins) != default_bins(int(n_mated)):
        rule = PROTOCOL_BINS_RULE
    return Conventions(
        eer_interpolation=HARNESS_EER_RULE,
        d_sys_bins=rule,
        bins=int(bins) if bins is not None else None,
        fmr_targets=tuple(_targets(strength) | _targets(linkage)),
    )


def _differences(reported: Line, measured: Line) -> tuple[str, ...]:
    """Conventions on which two lines' compared figures differ, or that one of them does not state.

    Only the figures the comparison shows count (EER, D↔sys), and only
    where either side has the figure: the EER rule for EERs, the bins for
    D↔sys. The FMR targets of each side stay in its conventions footnote.
    """

    def present(key: str, view: Literal["strength", "linkage"]) -> bool:
        return reported.value(view, key) is not None or measured.value(view, key) is not None

    def differ(x: str, y: str) -> bool:
        return x != y or x == NOT_STATED

    a, b = reported.conventions, measured.conventions
    out = []
    if (present("eer", "strength") or present("eer", "linkage")) and differ(a.eer_interpolation, b.eer_interpolation):
        out.append("EER interpolation")
    if present("d_sys", "linkage") and (differ(a.d_sys_bins, b.d_sys_bins) or a.bins != b.bins):
        out.append("D↔sys bins")
    return tuple(out)


# --------------------------------------------------------------------------- ranking


def _attack_order(line: Line, sar_key: str) -> tuple[bool, float, float, float]:
    eer, sar, d_sys = line.value("strength", "eer"), line.value("strength", sar_key), line.value("linkage", "d_sys")
    return (
        eer is None,
        eer if eer is not None else 0.0,
        -sar if sar is not None else math.inf,
        -d_sys if d_sys is not None else math.inf,
    )


def _rank_attacks(lines: list[Line], sar_key: str) -> list[Line]:
    """Strongest attack first: lowest strength EER, then highest SAR, then highest D↔sys; stable otherwise.

    Ranks are competition ranks (equal keys share a rank); lines without a
    strength EER are listed last, unranked.
    """
    ordered = sorted(lines, key=lambda line: _attack_order(line, sar_key))
    previous: tuple[bool, float, float, float] | None = None
    for position, line in enumerate(ordered, start=1):
        key = _attack_order(line, sar_key)
        if key[0]:
            line.rank = None
        else:
            line.rank = ordered[position - 2].rank if key == previous else position
        previous = key
    return ordered


def _summarise(board: SchemeBoard) -> None:
    with_eer = [line for line in board.lines if line.value("strength", "eer") is not None]
    board.strongest = with_eer[0] if with_eer else None
    linking = [line for line in board.lines if line.value("linkage", "d_sys") is not None]
    board.most_linking = max(linking, key=lambda line: line.value("linkage", "d_sys") or 0.0) if linking else None


def _rank_schemes(boards: list[SchemeBoard]) -> list[SchemeBoard]:
    """Most resistant setting first: highest EER under its strongest attack; settings without one last."""

    def eer(board: SchemeBoard) -> float | None:
        return board.strongest.value("strength", "eer") if board.strongest is not None else None

    ordered = sorted(boards, key=lambda b: (eer(b) is None, -(eer(b) or 0.0)))
    for position, board in enumerate(ordered, start=1):
        value = eer(board)
        if value is None:
            board.rank = None
        elif position > 1 and eer(ordered[position - 2]) == value:
            board.rank = ordered[position - 2].rank
        else:
            board.rank = position
    return ordered


# --------------------------------------------------------------------------- building


@dataclass
class _Slot:
    """A line being assembled from a strength and a linkage row."""

    attack: str
    knowledge: str | None
    run: Run | None = None
    entries: list[EntryFile] = field(default_factory=list)
    strength: Metrics | None = None
    linkage: Metrics | None = None
    conventions: Conventions | None = None
    threshold_source: str | None = None
    not_converged: str | None = None


@dataclass
class _Acc:
    """A group being assembled."""

    group: Group
    baselines: list[_Slot] = field(default_factory=list)
    schemes: dict[tuple[str, str], tuple[str, Mapping[str, Any], str, list[_Slot]]] = field(default_factory=dict)


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Number]:
    out: dict[str, Number] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = value if math.isfinite(value) else None
        else:
            out[str(key)] = None
    return out


def _place(slots: list[_Slot], slot_key: tuple[Any, ...], index: dict[tuple[Any, ...], _Slot], kind: str) -> _Slot:
    """The slot for ``slot_key`` whose ``kind`` view is still empty (a repeated row opens a new slot)."""
    slot = index.get(slot_key)
    if slot is None or getattr(slot, kind) is not None:
        slot = _Slot(attack=str(slot_key[-1]), knowledge=None)
        slots.append(slot)
        index[slot_key] = slot
    return slot


def _measured_groups(runs: Sequence[tuple[Run, Results]]) -> list[Group]:
    accs: dict[tuple[str, str | None, str, str], _Acc] = {}
    for run, results in runs:
        index: dict[tuple[Any, ...], _Slot] = {}
        flag = not_converged(results.get("trained_models"))
        for raw in results["rows"]:
            row: Mapping[str, Any] = raw
            kind = str(row["view"]).partition(":")[0]
            if kind not in ("baseline", "strength", "linkage"):
                continue  # preservation and renewal rows measure the scheme, not an attack
            rec_params = row.get("recognizer_params") or {}
            key = (run.dataset_name, run.fingerprint, row["recognizer"], canonical(rec_params))
            acc = accs.get(key)
            if acc is None:
                group = Group(
                    reported=False,
                    dataset_name=run.dataset_name,
                    fingerprint=run.fingerprint,
                    dataset_description="",
                    roots=(),
                    n_faces=run.n_faces,
                    n_subjects=run.n_subjects,
                    recognizer=row["recognizer"],
                    recognizer_params=dict(rec_params),
                    baselines=[],
                    schemes=[],
                    index=len(accs) + 1,
                )
                acc = accs[key] = _Acc(group)
            acc.group.demo = acc.group.demo or run.demo
            if run.dataset_root and run.dataset_root not in acc.group.roots:
                acc.group.roots = (*acc.group.roots, run.dataset_root)
            metrics = _clean_metrics(row.get("metrics") or {})
            if kind == "baseline":
                acc.baselines.append(_Slot(attack=str(row["attack"]), knowledge=None, run=run, strength=metrics))
                continue
            scheme_params = row.get("scheme_params") or {}
            scheme_key = (str(row["scheme"]), canonical(scheme_params))
            board = acc.schemes.setdefault(scheme_key, (str(row["scheme"]), dict(scheme_params), "", []))
            slot = _place(board[3], (id(acc), *scheme_key, row["attack"]), index, kind)
            slot.run = run
            slot.knowledge = slot.knowledge or optional_text(row.get("attacker_knowledge"))
            slot.not_converged = slot.not_converged or flag(row["scheme"], row["attack"]) or None
            if kind == "strength":
                slot.threshold_source = optional_text(row.get("threshold_source"))
            setattr(slot, kind, metrics)
    return [_finish(acc) for acc in accs.values()]


def _reported_groups(entries: Sequence[EntryFile]) -> list[Group]:
    accs: dict[tuple[str, str, str], _Acc] = {}
    index: dict[tuple[Any, ...], _Slot] = {}
    for item in entries:
        entry = item.entry
        key = (entry.citation, entry.dataset.name, entry.recognizer.name)
        acc = accs.get(key)
        if acc is None:
            group = Group(
                reported=True,
                dataset_name=entry.dataset.name,
                fingerprint=None,
                dataset_description=entry.dataset.description,
                roots=(),
                n_faces=None,
                n_subjects=None,
                recognizer=entry.recognizer.name,
                recognizer_params={},
                baselines=[],
                schemes=[],
                citation=entry.citation,
                url=entry.url,
                doi=entry.doi,
                index=len(accs) + 1,
            )
            acc = accs[key] = _Acc(group)
        metrics: Metrics = entry.metrics.flat()
        if entry.view == "baseline":
            acc.baselines.append(
                _Slot(
                    attack=entry.attack, knowledge=None, entries=[item], strength=metrics, conventions=entry.conventions
                )
            )
            continue
        if entry.view not in ("strength", "linkage"):
            continue  # preservation and renewal figures: kept in the entry, not ranked
        scheme_key = (entry.scheme, "")
        board = acc.schemes.setdefault(scheme_key, (entry.scheme, {}, entry.scheme_description, []))
        # Strength and linkage figures of one attack share a line only under the same conventions.
        slot_key = (id(acc), entry.scheme, entry.conventions, entry.attack)
        slot = _place(board[3], slot_key, index, entry.view)
        slot.entries.append(item)
        slot.conventions = entry.conventions
        setattr(slot, entry.view, metrics)
    return [_finish(acc) for acc in accs.values()]


def _line(slot: _Slot) -> Line:
    conventions = slot.conventions or measured_conventions(slot.strength, slot.linkage)
    return Line(
        attack=slot.attack,
        conventions=conventions,
        strength=slot.strength,
        linkage=slot.linkage,
        knowledge=slot.knowledge,
        run=slot.run,
        entries=tuple(slot.entries),
        threshold_source=slot.threshold_source,
        not_converged=slot.not_converged,
    )


def _finish(acc: _Acc) -> Group:
    group = acc.group
    group.baselines = [_line(slot) for slot in acc.baselines]
    boards = []
    for scheme, params, description, slots in acc.schemes.values():
        boards.append(SchemeBoard(scheme, params, [_line(slot) for slot in slots], description=description))
    group.schemes = boards
    return group


def _rank(groups: Sequence[Group], sar_key: str) -> None:
    for group in groups:
        for board in group.schemes:
            board.lines = _rank_attacks(board.lines, sar_key)
            _summarise(board)
        group.schemes = _rank_schemes(group.schemes)


def _comparisons(measured: Sequence[Group], reported: Sequence[Group]) -> list[Comparison]:
    # Demo figures say how the harness works, not how a scheme fares on faces: never beside published ones.
    measured = [g for g in measured if not g.demo]
    out = []
    for rgroup in reported:
        pairs: list[tuple[str, Line, list[tuple[Group, Line]]]] = []
        for line in rgroup.baselines:
            pairs.append((PLAIN, line, [(g, m) for g in measured for m in g.baselines]))
        for board in rgroup.schemes:
            for line in board.lines:
                found = [
                    (g, m)
                    for g in measured
                    for b in g.schemes
                    if b.scheme == board.scheme
                    for m in b.lines
                    if m.attack == line.attack
                ]
                pairs.append((board.scheme, line, found))
        for scheme, line, found in pairs:
            for mgroup, mline in found:
                out.append(Comparison(line, rgroup, mline, mgroup, scheme, _differences(line, mline)))
    return out


def build_leaderboard(
    runs: Sequence[tuple[Run, Results]],
    entries: Sequence[EntryFile] = (),
    *,
    sar_target: float = DEFAULT_SAR_TARGET,
) -> Leaderboard:
    """Group, rank and compare.

    Args:
        runs: Loaded runs (:func:`load_runs`).
        entries: Loaded reported entries (:func:`load_entries`).
        sar_target: FMR of the SAR column and of the tie-break between attacks of equal EER.

    Returns:
        The leaderboard: measured groups in order of first appearance,
        reported groups in entry order, each group's schemes in scheme-table
        order and each scheme's attacks strongest first.

    Raises:
        LeaderboardError: ``sar_target`` not in (0, 1).
    """
    if not 0.0 < sar_target < 1.0:
        raise LeaderboardError(f"--fmr: {sar_target!r} is not an FMR in (0, 1)")
    board = Leaderboard(
        runs=[run for run, _ in runs],
        entries=list(entries),
        measured=_measured_groups(runs),
        reported=_reported_groups(entries),
        comparisons=[],
        sar_target=sar_target,
    )
    _rank(board.measured, board.sar_key)
    _rank(board.reported, board.sar_key)
    board.comparisons = _comparisons(board.measured, board.reported)
    for group in (*board.measured, *board.reported):
        for line in group.all_lines():
            if line.conventions not in board.conventions:
                board.conventions.append(line.conventions)
    return board

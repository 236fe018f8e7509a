"""``facesec leaderboard``: rank attacks and schemes over many runs, with published figures kept apart.

Reads ``results.json`` files (or run folders: a folder's own
``results.json``, else every one below it) and the reported entries (one
YAML file per published figure set; the shipped ones unless
``--no-reported``), and writes ``leaderboard.html`` (self-contained),
``leaderboard.md``, ``leaderboard.csv`` and ``schemes.csv`` into ``--out``
(see :mod:`reports.leaderboard`).

Exit codes: 0 written, 2 bad input (a missing or invalid results file or
entry, named in one line; nothing is written then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.metrics.irreversibility import SAR_TARGETS

__all__ = ["add_parser", "leaderboard_main"]

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``leaderboard`` subcommand to an argparse subparsers object.

    Args:
        sub: What ``ArgumentParser.add_subparsers`` returned.

    Returns:
        The subcommand's parser.
    """
    p: argparse.ArgumentParser = sub.add_parser(
        "leaderboard",
        help="rank attacks and schemes over runs (HTML, Markdown, CSV)",
        description="Rank attacks per (dataset, recognizer, scheme setting) by strength-view EER and schemes by "
        "their strongest known attack, over results.json files or run folders; published figures (reported "
        "entries, one YAML file each) are shown apart with their conventions. Writes leaderboard.html, "
        "leaderboard.md, leaderboard.csv and schemes.csv into --out.",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        metavar="RESULTS_OR_DIR",
        help="results.json files or run folders (a folder: its results.json, else every results.json below it)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--reported",
        action="append",
        type=Path,
        default=[],
        metavar="DIR_OR_FILE",
        help="also load reported entries from this YAML file or folder (repeatable)",
    )
    p.add_argument("--no-reported", action="store_true", help="do not load the reported entries shipped with FaceSec")
    p.add_argument(
        "--fmr",
        type=float,
        default=SAR_TARGETS[0],
        metavar="TARGET",
        help=f"FMR of the SAR column, as a fraction (default {SAR_TARGETS[0]})",
    )
    return p


def leaderboard_main(args: argparse.Namespace) -> int:
    """Run ``facesec leaderboard``.

    Args:
        args: Parsed arguments of the ``leaderboard`` subcommand.

    Returns:
        The exit code: 0, or 2 on a bad input (one line on stderr).
    """
    # Imported here: the page's renderer pulls in matplotlib, which other commands need not load.
    from reports.leaderboard import LeaderboardError, make_leaderboard

    try:
        board, paths = make_leaderboard(
            args.inputs,
            args.out,
            reported=args.reported,
            shipped=not args.no_reported,
            sar_target=args.fmr,
        )
    except LeaderboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    n_groups = len(board.measured) + len(board.reported)
    print(
        f"{len(board.runs)} run(s), {len(board.entries)} reported entr{'y' if len(board.entries) == 1 else 'ies'}, "
        f"{n_groups} group(s)"
    )
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK

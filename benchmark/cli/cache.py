"""``facesec cache``: where the stage cache is, what it holds per stage, and pruning it by age or size.

``facesec cache`` (or ``cache info``) shows entries, size and least recent use
per stage folder; ``cache prune --older-than 30d`` removes entries unused for
30 days, ``cache prune --max-size 2G`` the least recently used ones until
2 GiB remain (both may be given; ``--dry-run`` only lists what would go);
``cache clear`` empties it, ``cache path`` prints its folder.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from benchmark.core.cache import Cache, Usage, tally
from benchmark.core.numbers import format_bytes

__all__ = ["add_parser", "cache_main", "parse_age", "parse_size"]

EXIT_OK, EXIT_BAD_INPUT = 0, 2

_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_UNITS = {"": 1} | {c: 1 << 10 * (i + 1) for i, u in enumerate("KMGT") for c in (u, u.lower())}
_AGE_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


def _quantity(text: str, pattern: re.Pattern[str], units: dict[str, int], what: str) -> float:
    """A number times its unit's factor; a ValueError saying what is allowed otherwise."""
    m = pattern.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not {what}")
    return float(m[1]) * units[m[2]]


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` in seconds (ValueError otherwise)."""
    return _quantity(text, _AGE_RE, _AGE_UNITS, "an age; allowed: a number and a unit of s, m, h, d, w (e.g. 30d)")


def parse_size(text: str) -> int:
    """``2G``, ``500M``, ``1.5GiB`` or ``4096`` in bytes, K, M, G, T as powers of 1024 (ValueError otherwise)."""
    what = "a size; allowed: a number and K, M, G or T (powers of 1024), e.g. 2G"
    return int(_quantity(text, _SIZE_RE, _SIZE_UNITS, what))


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``cache`` command to a subparser set."""
    p = sub.add_parser(
        "cache",
        help="show what the stage cache holds; prune or clear it",
        description="Show the stage cache's folder, entries and size per stage (default: info); prune it by "
        "last use (--older-than) or size (--max-size, least recently used first), or clear it. Removing an "
        "entry never leaves a half entry: each is one self-checking file, and a removed one is recomputed.",
    )
    p.add_argument(
        "action",
        nargs="?",
        default="info",
        choices=["info", "prune", "clear", "path"],
        help="info (default): usage per stage; prune: remove old entries; clear: remove all; path: print the folder",
    )
    p.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: $FACESEC_CACHE or $XDG_CACHE_HOME/facesec)"
    )
    p.add_argument("--older-than", default=None, metavar="AGE", help="prune: entries unused for AGE (e.g. 30d, 12h)")
    p.add_argument(
        "--max-size", default=None, metavar="SIZE", help="prune: down to SIZE, least recently used first (e.g. 2G)"
    )
    p.add_argument("--dry-run", action="store_true", help="prune: list what would be removed, remove nothing")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return "just now"


def _table(usage: dict[str, Usage], now: float) -> list[str]:
    width = max([len(k) for k in usage] + [5])
    lines = [f"  {'stage':<{width}}  {'entries':>8}  {'size':>10}  least recent use"]
    for stage, u in usage.items():
        since = None if u.oldest is None else now - u.oldest
        lines.append(f"  {stage:<{width}}  {u.entries:>8,}  {format_bytes(u.bytes):>10}  {_age(since)}")
    return lines


def cache_main(args: argparse.Namespace) -> int:
    """Run ``facesec cache``; returns the exit code."""
    prune_options = [
        flag
        for flag, value in (
            ("--older-than", args.older_than),
            ("--max-size", args.max_size),
            ("--dry-run", args.dry_run),
        )
        if value not in (None, False)
    ]
    if args.action != "prune" and prune_options:
        return _error(f"{prune_options[0]} applies to 'facesec cache prune' only")
    cache = Cache(args.cache) if args.cache else Cache()
    now = time.time()
    if args.action == "path":
        print(cache.root)
    elif args.action == "clear":
        n = cache.clear()
        print(f"cleared {cache.root} ({n} stage folder(s))")
    elif args.action == "info":
        usage = cache.usage()
        print(f"cache: {cache.root}" + ("" if cache.root.is_dir() else " (absent)"))
        print("\n".join(_table(usage, now)))
    else:
        return _prune(cache, args, now)
    return EXIT_OK


def _prune(cache: Cache, args: argparse.Namespace, now: float) -> int:
    if args.older_than is None and args.max_size is None:
        return _error("cache prune needs --older-than AGE and/or --max-size SIZE (e.g. --older-than 30d)")
    limits: dict[str, float | None] = {}
    for flag, text, parse in (("--older-than", args.older_than, parse_age), ("--max-size", args.max_size, parse_size)):
        try:
            limits[flag] = None if text is None else parse(text)
        except ValueError as exc:
            return _error(f"{flag}: {exc}")
    max_size = limits["--max-size"]
    gone = cache.prune(
        older_than=limits["--older-than"], max_bytes=None if max_size is None else int(max_size), dry_run=args.dry_run
    )
    left = cache.usage()["total"]
    if not gone:
        print(f"{cache.root}: nothing to prune ({format_bytes(left.bytes)} in {left.entries:,} entries)")
        return EXIT_OK
    removed = tally(gone)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{cache.root}: {verb} {removed['total'].entries:,} entries, {format_bytes(removed['total'].bytes)}:")
    print("\n".join(_table(removed, now)))
    if not args.dry_run:
        print(f"left: {format_bytes(left.bytes)} in {left.entries:,} entries")
    return EXIT_OK

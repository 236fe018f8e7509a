"""JSON read from files a user hands over (results, sidecars): nesting bounded, errors in one line.

``json.loads`` recurses once per nesting level: a file nested 100,000 deep
ends in a ``RecursionError`` (a crash, not bad input), and one nested just
under the interpreter's limit parses but crashes whatever walks it next
(rendering, comparing). :func:`parse_json` turns the first into an error and
measures the nesting of the second without recursion, refusing anything
deeper than :data:`MAX_DEPTH`; every failure is a :class:`JsonError`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "JsonError", "json_depth", "parse_json"]

#: Most nesting levels of lists and objects (results files nest about 8).
MAX_DEPTH = 100


class JsonError(ValueError):
    """Text that is not JSON, or JSON refused (nested too deeply, an integer too long); one line."""


def json_depth(value: Any, limit: int | None = None) -> int:
    """The deepest nesting of lists and dicts in a parsed JSON value (0 for a scalar), without recursion.

    Args:
        value: The value.
        limit: Stop counting once deeper than this (None: count it all).

    Returns:
        The depth (with ``limit``: at most ``limit + 1``).
    """
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (list, dict)) else []
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if limit is not None and deepest > limit:
            break
        items = node.values() if isinstance(node, dict) else node
        stack.extend((item, depth + 1) for item in items if isinstance(item, (list, dict)))
    return deepest


def parse_json(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, refusing nesting deeper than ``max_depth``.

    Args:
        text: The JSON text (bytes are read as UTF-8).
        max_depth: Most nesting levels.

    Returns:
        The parsed value.

    Raises:
        JsonError: ``nested too deeply (more than <max_depth> levels)``, or what the
            parser says (malformed JSON, bad UTF-8, an integer beyond
            Python's digit limit).
    """
    too_deep = JsonError(f"nested too deeply (more than {max_depth} levels)")
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the digit limit
        raise JsonError(" ".join(str(exc).split()) or type(exc).__name__) from None
    if json_depth(value, max_depth) > max_depth:
        raise too_deep
    return value

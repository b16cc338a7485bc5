"""The documented limits on what a workflow, a context and a JSON document may be.

Every limit is checked before the expensive work it protects (parsing, graph ordering, storing),
and refused with ``LimitExceeded``, whose message names the limit, the value found and the fix.
The host's own limits (archive and file sizes, load output) live beside the code that reads those
inputs; the README lists them all.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import CloacinaError

MiB = 1024 * 1024

#: Largest context, as compact JSON (UTF-8 bytes): an initial ``--context``, a task's output, a
#: worker's reply. A bigger payload belongs in a file or a database, with its path in the context.
MAX_CONTEXT_BYTES = 16 * MiB
#: Deepest nesting of lists and objects in any JSON the host reads or a context holds.
MAX_JSON_DEPTH = 100
#: Most tasks one workflow may declare.
MAX_TASKS_PER_WORKFLOW = 10_000
#: Most workflows one package (one manifest) may declare.
MAX_WORKFLOWS_PER_PACKAGE = 1_000


class LimitExceeded(CloacinaError, ValueError):
    """An input is over one of the documented limits. ``limit`` names it (``MAX_JSON_DEPTH``...)."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum


def json_depth_exceeded(what: str, depth: int | None = None) -> LimitExceeded:
    found = f"{depth} levels" if depth is not None else "more levels than Python can parse"
    return LimitExceeded(
        f"{what} nests lists/objects {found} deep, more than the limit of {MAX_JSON_DEPTH} (MAX_JSON_DEPTH). "
        "Flatten the data.",
        limit="MAX_JSON_DEPTH",
        value=depth if depth is not None else MAX_JSON_DEPTH + 1,
        maximum=MAX_JSON_DEPTH,
    )


def context_too_large(what: str, size: int) -> LimitExceeded:
    return LimitExceeded(
        f"{what} is {size:,} bytes of JSON, more than the limit of {MAX_CONTEXT_BYTES:,} (MAX_CONTEXT_BYTES). "
        "Keep large data in a file or a database and put its path in the context.",
        limit="MAX_CONTEXT_BYTES",
        value=size,
        maximum=MAX_CONTEXT_BYTES,
    )


def check_json_depth(value: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``LimitExceeded`` if ``value`` (parsed JSON) nests deeper than ``max_depth``; iterative."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > max_depth:
            raise json_depth_exceeded(what, depth)
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))


def loads_limited(
    text: str | bytes, what: str, *, max_bytes: int = MAX_CONTEXT_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """``json.loads`` with the size checked first and the depth after; ``LimitExceeded`` when over.

    Raises ``json.JSONDecodeError`` (a ``ValueError``) for text that is not JSON, as ``json.loads`` does.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise LimitExceeded(
            f"{what} is {size:,} bytes, more than the limit of {max_bytes:,}. "
            "Keep large data in a file or a database and put its path in the context.",
            limit="MAX_CONTEXT_BYTES" if max_bytes == MAX_CONTEXT_BYTES else "size",
            value=size,
            maximum=max_bytes,
        )
    try:
        value = json.loads(text)
    except RecursionError:
        raise json_depth_exceeded(what) from None
    check_json_depth(value, what, max_depth)
    return value


__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_TASKS_PER_WORKFLOW",
    "MAX_WORKFLOWS_PER_PACKAGE",
    "LimitExceeded",
    "check_json_depth",
    "context_too_large",
    "json_depth_exceeded",
    "loads_limited",
]

"""The documented limits on what a workflow, a context and a JSON document may be.

Every limit is checked before the expensive work it protects (parsing, graph ordering, storing),
and refused with ``LimitExceeded``, whose message names the limit, the value found and the fix.
The host's own limits (archive and file sizes, load output) live beside the code that reads those
inputs; the README lists them all.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from ._errors import CloacinaError, ContextNotSerializable, WorkflowDefinitionError

MiB = 1024 * 1024

#: Largest context, as compact JSON (UTF-8 bytes): an initial ``--context``, a task's output, a
#: worker's reply. A bigger payload belongs in a file or a database, with its path in the context.
MAX_CONTEXT_BYTES = 16 * MiB
#: Deepest nesting of lists and objects in any JSON the host reads or a context holds.
MAX_JSON_DEPTH = 100
#: Longest integer (decimal digits) in a context or any JSON the host reads: Python's own default
#: ``int_max_str_digits``, so every value can be written back as JSON. Store longer numbers as strings.
MAX_INT_DIGITS = 4300
#: Most tasks one workflow may declare.
MAX_TASKS_PER_WORKFLOW = 10_000
#: Most workflows one package (one manifest) may declare.
MAX_WORKFLOWS_PER_PACKAGE = 1_000
#: Most times one task may defer itself (``TaskError.Deferred``) in one execution; the deferral past
#: it fails the attempt instead, so a task cannot wait for ever unnoticed. Poll less often, or fail.
MAX_DEFERRALS = 100


class LimitExceeded(CloacinaError, ValueError):
    """An input is over one of the documented limits. ``limit`` names it (``MAX_JSON_DEPTH``...)."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.maximum = maximum

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only fields across pickling
        return (_rebuild_limit, (type(self), str(self), self.limit, self.value, self.maximum))


def _rebuild_limit(cls: type[LimitExceeded], message: str, limit: str, value: int, maximum: int) -> LimitExceeded:
    return cls(message, limit=limit, value=value, maximum=maximum)


class WorkflowLimitExceeded(LimitExceeded, WorkflowDefinitionError):
    """A workflow over ``MAX_TASKS_PER_WORKFLOW``: both a ``LimitExceeded`` and a ``WorkflowDefinitionError``."""

    def __init__(self, message: str, *, limit: str, value: int, maximum: int, workflow: str | None = None) -> None:
        LimitExceeded.__init__(self, message, limit=limit, value=value, maximum=maximum)
        self.workflow = workflow
        self.task = None


class ContextLimitExceeded(LimitExceeded, ContextNotSerializable):
    """A context value over a limit: both a ``LimitExceeded`` and a ``ContextError.NotSerializable``.

    So ``except ContextError`` in a task, and the engine's handling of a task's bad write, keep working.
    """

    def __init__(self, message: str, *, limit: str, value: int, maximum: int, key: str | None = None) -> None:
        LimitExceeded.__init__(self, message, limit=limit, value=value, maximum=maximum)
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_context_limit, (str(self), self.limit, self.value, self.maximum, self.key))


def _rebuild_context_limit(message: str, limit: str, value: int, maximum: int, key: str | None) -> LimitExceeded:
    return ContextLimitExceeded(message, limit=limit, value=value, maximum=maximum, key=key)


def check_task_count(count: int, what: str) -> None:
    """Refuse a workflow of more than ``MAX_TASKS_PER_WORKFLOW`` tasks; call it before any graph work.

    ``what`` names the workflow as the user knows it (``"Workflow 'etl'"``, ``"workflows[0] 'p::etl'"``).
    """
    if count > MAX_TASKS_PER_WORKFLOW:
        raise WorkflowLimitExceeded(
            f"{what} declares {count:,} tasks, more than the limit of {MAX_TASKS_PER_WORKFLOW:,} "
            "(MAX_TASKS_PER_WORKFLOW). Split it into smaller workflows.",
            limit="MAX_TASKS_PER_WORKFLOW",
            value=count,
            maximum=MAX_TASKS_PER_WORKFLOW,
            workflow=what,
        )


def check_workflow_count(count: int, what: str) -> None:
    """Refuse a package (manifest) of more than ``MAX_WORKFLOWS_PER_PACKAGE`` workflows."""
    if count > MAX_WORKFLOWS_PER_PACKAGE:
        raise LimitExceeded(
            f"{what} declares {count:,} workflows, more than the limit of {MAX_WORKFLOWS_PER_PACKAGE:,} "
            "(MAX_WORKFLOWS_PER_PACKAGE). Split it into several packages.",
            limit="MAX_WORKFLOWS_PER_PACKAGE",
            value=count,
            maximum=MAX_WORKFLOWS_PER_PACKAGE,
        )


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


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SIGNS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # opening +1, closing -1 (as signed bytes)
_CLOSED_PAIR = b"\x01\xff"


def json_text_too_deep(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether UTF-8 JSON text nests lists/objects deeper than ``max_depth``, found without parsing it.

    ``json``'s C parser recurses once per level and, at a few hundred thousand levels, can crash the
    interpreter (3.10/3.11 with a raised recursion limit, 3.13 in a thread with a small stack) instead
    of raising ``RecursionError``: so the depth is measured first, at C speed, iteratively. Strings
    are cut out (escapes first), brackets kept, innermost pairs removed a few times, and the running
    depth of what remains summed. Exact for valid JSON; for invalid JSON it never under-counts the
    depth the parser would reach before its error.
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    if b'"' in data:
        data = b"".join(data.split(b'"')[::2])  # odd pieces are strings (an unterminated one runs to the end)
    signs = data.translate(_SIGNS, _NOT_BRACKETS)
    allowed = max_depth  # each pass removes every innermost pair: the depth left is one less
    for _ in range(min(4, max_depth)):  # removing leaves shrinks ordinary documents to little
        if len(signs) <= allowed:
            return False
        if b"\x01" * (allowed + 1) in signs:
            return True
        fewer = signs.replace(_CLOSED_PAIR, b"")
        if len(fewer) == len(signs):
            break
        signs = fewer
        allowed -= 1
    if len(signs) <= allowed:
        return False
    return max(accumulate(memoryview(signs).cast("b")), default=0) > allowed


def check_json_text_depth(data: bytes, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``LimitExceeded`` if UTF-8 JSON text nests deeper than ``max_depth``; never parses it."""
    if json_text_too_deep(data, max_depth):
        raise json_depth_exceeded(what)


def loads_limited(
    text: str | bytes, what: str, *, max_bytes: int = MAX_CONTEXT_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """``json.loads`` with the size and the depth checked first; ``LimitExceeded`` when over.

    Never raises ``RecursionError`` nor lets the parser recurse past ``max_depth``. Raises
    ``json.JSONDecodeError`` (a ``ValueError``) for text that is not JSON, bytes that are not
    UTF-8/16/32 included.
    """
    if isinstance(text, str):
        size = len(text)  # a lower bound of its UTF-8 size: refuse a huge text before encoding it
        data = b"" if size > max_bytes else text.encode("utf-8", "surrogatepass")
        size = max(size, len(data))
    else:
        size = len(text)
        data = text
    if size > max_bytes:
        raise LimitExceeded(
            f"{what} is {size:,} bytes, more than the limit of {max_bytes:,}"
            f"{' (MAX_CONTEXT_BYTES)' if max_bytes == MAX_CONTEXT_BYTES else ''}. "
            "Keep large data in a file or a database and put its path in the context.",
            limit="MAX_CONTEXT_BYTES" if max_bytes == MAX_CONTEXT_BYTES else "size",
            value=size,
            maximum=max_bytes,
        )
    try:
        if isinstance(text, bytes):
            encoding = json.detect_encoding(text)
            if encoding != "utf-8":
                data = text.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
        check_json_text_depth(data, what, max_depth)
        return json.loads(text)
    except RecursionError:  # only if called from an already deep stack
        raise json_depth_exceeded(what) from None
    except (json.JSONDecodeError, LimitExceeded):
        raise
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8/16/32: not JSON text either
        raise json.JSONDecodeError(f"not UTF-8 text ({exc.reason})", "", exc.start) from None
    except ValueError as exc:  # an integer longer than int_max_str_digits
        raise LimitExceeded(
            f"{what} holds an integer of more than {MAX_INT_DIGITS:,} digits (MAX_INT_DIGITS). "
            "Store such numbers as strings.",
            limit="MAX_INT_DIGITS",
            value=MAX_INT_DIGITS + 1,
            maximum=MAX_INT_DIGITS,
        ) from exc


__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_TASKS_PER_WORKFLOW",
    "MAX_WORKFLOWS_PER_PACKAGE",
    "ContextLimitExceeded",
    "LimitExceeded",
    "WorkflowLimitExceeded",
    "check_json_depth",
    "check_json_text_depth",
    "check_task_count",
    "check_workflow_count",
    "context_too_large",
    "json_depth_exceeded",
    "json_text_too_deep",
    "loads_limited",
]

"""The JSON context that tasks read and write."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Union

from ._errors import ContextKeyExists, ContextKeyNotFound, ContextNotSerializable
from .limits import MAX_INT_DIGITS, MAX_JSON_DEPTH, ContextLimitExceeded

JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]


#: integers shorter than this many bits have fewer than MAX_INT_DIGITS digits: no conversion needed to tell
_INT_BITS_CHECKED = int(MAX_INT_DIGITS * 3.32) - 8
_INT_TOO_LONG = 10**MAX_INT_DIGITS  # the smallest integer of MAX_INT_DIGITS + 1 digits

#: Deepest nesting of one context value: the context itself is the outermost JSON object.
MAX_VALUE_DEPTH = MAX_JSON_DEPTH - 1

_Crumbs = Union[tuple["_Crumbs", str], None]  # the path to a container, as a linked list of segments


def _scalar(value: object) -> tuple[bool, JSONValue, str]:
    """``(True, copy, "")`` for a JSON scalar, ``(False, None, why)`` for what is not one; containers aside."""
    if value is None or isinstance(value, (bool, str)):
        return True, value, ""
    if isinstance(value, int):
        if value.bit_length() > _INT_BITS_CHECKED and abs(value) >= _INT_TOO_LONG:
            return (
                False,
                None,
                f"an integer of more than {MAX_INT_DIGITS:,} digits is over the limit (MAX_INT_DIGITS): "
                "store it as a string",
            )
        return True, int(value), ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return False, None, f"{value!r} is not a finite number"
        return True, value, ""
    return False, None, f"a {type(value).__name__} is not a JSON value"


def _path(crumbs: _Crumbs) -> str:
    parts: list[str] = []
    while crumbs is not None:
        crumbs, segment = crumbs
        parts.append(segment)
    return "".join(reversed(parts))


_PLAIN = frozenset({str, bool, type(None)})


def _flat_copy(value: object) -> JSONValue:
    """A copy of a list, tuple or dict holding only JSON scalars of the exact built-in types (the common
    case, checked at C speed); None when it holds anything else, for ``to_json_value`` to walk."""
    kind = type(value)
    if kind is dict:
        assert isinstance(value, dict)
        if not set(map(type, value)) <= {str}:
            return None
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return None
    kinds = set(map(type, items))
    if not kinds <= _PLAIN:
        if kinds == {int}:
            if not (min(items) > -_INT_TOO_LONG and max(items) < _INT_TOO_LONG):
                return None
        elif kinds == {float}:
            if not all(map(math.isfinite, items)):
                return None
        else:
            return None
    return dict(value) if kind is dict else list(items)  # type: ignore[call-overload]


def to_json_value(value: object, *, key: str, path: str = "", max_depth: int = MAX_VALUE_DEPTH) -> JSONValue:
    """Return a private copy of ``value`` if it is JSON, else raise ``ContextNotSerializable``.

    Strict on purpose: ``json.dumps`` would silently turn int keys into strings and tuples into
    lists, so a value would not read back as written. Tuples are accepted as lists. Iterative:
    nesting deeper than ``max_depth`` lists/objects (a self-containing list included) is refused
    with ``ContextLimitExceeded``, a ``ContextNotSerializable`` naming ``MAX_JSON_DEPTH``.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:  # the common cases first: no ABC check
        return value  # type: ignore[return-value]
    if (kind is list or kind is dict or kind is tuple) and max_depth >= 1:
        flat = _flat_copy(value)
        if flat is not None:
            return flat
    if not isinstance(value, (Mapping, list, tuple)):
        ok, copy, why = _scalar(value)
        if not ok:
            raise _not_serializable(key, path, why)
        return copy
    root: list[JSONValue] = []
    # each frame: the items left to copy, where the copies go, the container's depth and path
    stack: list[tuple[Iterator[tuple[Any, Any]], Any, int, _Crumbs]] = []

    def open_container(item: Any, segment: object, parent: Any, depth: int, crumbs: _Crumbs) -> None:
        if depth > max_depth:
            raise _too_deep(key, max_depth)
        if isinstance(item, Mapping):
            out: Any = {}
            items: Iterator[tuple[Any, Any]] = iter(item.items())
        else:
            out = []
            items = enumerate(item)
        if isinstance(parent, dict):
            parent[segment] = out
        else:
            parent.append(out)
        stack.append((items, out, depth, crumbs))

    open_container(value, None, root, 1, (None, path) if path else None)
    while stack:
        items, out, depth, crumbs = stack[-1]
        is_dict = isinstance(out, dict)
        for k, v in items:
            if is_dict and not isinstance(k, str):
                raise _not_serializable(key, _path(crumbs), f"dict key {k!r} is a {type(k).__name__}, not a str")
            kind = type(v)
            if (
                kind is str
                or kind is bool
                or v is None
                or (kind is int and v.bit_length() <= _INT_BITS_CHECKED)
                or (kind is float and math.isfinite(v))
            ):
                copy = v
            elif isinstance(v, (Mapping, list, tuple)):
                flat = _flat_copy(v) if depth < max_depth else None
                if flat is None:
                    open_container(v, k, out, depth + 1, (crumbs, f"[{k!r}]" if is_dict else f"[{k}]"))
                    break
                copy = flat
            else:
                ok, copy, why = _scalar(v)
                if not ok:
                    raise _not_serializable(key, _path((crumbs, f"[{k!r}]" if is_dict else f"[{k}]")), why)
            if is_dict:
                out[k] = copy
            else:
                out.append(copy)
        else:
            stack.pop()
    return root[0]


def _too_deep(key: str, max_depth: int) -> ContextLimitExceeded:
    return ContextLimitExceeded(
        f"Context value for key {key!r} cannot be stored: it nests lists/objects more than {max_depth} "
        f"levels deep (or contains itself), so the context would nest more than the limit of "
        f"{MAX_JSON_DEPTH} (MAX_JSON_DEPTH). Flatten the data, or keep it in a file and put its path "
        "in the context.",
        key=key,
        limit="MAX_JSON_DEPTH",
        value=max_depth + 2,
        maximum=MAX_JSON_DEPTH,
    )


def _not_serializable(key: str, path: str, why: str) -> ContextNotSerializable:
    where = f"{key!r}{path}" if path else repr(key)
    return ContextNotSerializable(
        f"Context value for key {where} cannot be stored: {why}. "
        "Store only JSON values (dict with str keys, list, str, int, float, bool, None); "
        "convert other objects first, e.g. datetime.isoformat().",
        key=key,
    )


class Context:
    """A mapping of string keys to JSON values, passed from task to task.

    Every write checks the value is JSON and stores a private copy of it.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, object] | None = None) -> None:
        self._data: dict[str, JSONValue] = {}
        if data:
            for key, value in data.items():
                self.set(key, value)

    @classmethod
    def _trusted(cls, data: dict[str, JSONValue]) -> Context:
        """Wrap ``data`` already known to be JSON (read back from storage); no copy is made."""
        ctx = cls.__new__(cls)
        ctx._data = data
        return ctx

    def insert(self, key: str, value: object) -> None:
        """Add a new key; raises ``ContextError.KeyExists`` if it is already there."""
        if key in self._data:
            raise ContextKeyExists(
                f"Context key {key!r} already exists; use update() to change it or set() to upsert.",
                key=key,
            )
        self._data[self._check_key(key)] = to_json_value(value, key=key)

    def update(self, key: str, value: object) -> None:
        """Change an existing key; raises ``ContextError.KeyNotFound`` if it is absent."""
        if key not in self._data:
            raise ContextKeyNotFound(
                f"Context key {key!r} does not exist; use insert() to add it or set() to upsert.",
                key=key,
            )
        self._data[key] = to_json_value(value, key=key)

    def set(self, key: str, value: object) -> None:
        """Insert or replace ``key``."""
        self._data[self._check_key(key)] = to_json_value(value, key=key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when absent."""
        return self._data.get(key, default)

    def remove(self, key: str) -> JSONValue:
        """Delete ``key`` and return its value; raises ``ContextError.KeyNotFound`` if absent."""
        try:
            return self._data.pop(key)
        except KeyError:
            raise ContextKeyNotFound(f"Context key {key!r} does not exist; nothing to remove.", key=key) from None

    def keys(self) -> list[str]:
        return list(self._data)

    def to_dict(self) -> dict[str, JSONValue]:
        """A deep copy of the context as plain JSON data."""
        return {k: to_json_value(v, key=k) for k, v in self._data.items()}

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Context):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        return f"Context({self._data!r})"

    @staticmethod
    def _check_key(key: object) -> str:
        if not isinstance(key, str):
            raise ContextNotSerializable(f"Context keys must be str, got {type(key).__name__} {key!r}.", key=str(key))
        return key

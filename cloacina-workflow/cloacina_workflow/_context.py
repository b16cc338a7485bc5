"""The JSON context that tasks read and write."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Union

from ._errors import ContextKeyExists, ContextKeyNotFound, ContextNotSerializable

JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]


def to_json_value(value: object, *, key: str, path: str = "") -> JSONValue:
    """Return a private copy of ``value`` if it is JSON, else raise ``ContextNotSerializable``.

    Strict on purpose: ``json.dumps`` would silently turn int keys into strings and tuples into
    lists, so a value would not read back as written. Tuples are accepted as lists.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _not_serializable(key, path, f"{value!r} is not a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _not_serializable(key, path, f"dict key {k!r} is a {type(k).__name__}, not a str")
            out[k] = to_json_value(v, key=key, path=f"{path}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, key=key, path=f"{path}[{i}]") for i, v in enumerate(value)]
    raise _not_serializable(key, path, f"a {type(value).__name__} is not a JSON value")


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

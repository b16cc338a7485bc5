from __future__ import annotations

import math
from datetime import datetime

import pytest

from cloacina_workflow import CloacinaError, Context, ContextError


def test_insert_get_and_contains() -> None:
    ctx = Context()
    ctx.insert("raw_data", {"records": 1000})
    assert "raw_data" in ctx
    assert ctx.get("raw_data") == {"records": 1000}
    assert ctx.get("missing") is None
    assert ctx.get("missing", 5) == 5
    assert ctx.keys() == ["raw_data"]


def test_insert_refuses_existing_key() -> None:
    ctx = Context({"a": 1})
    with pytest.raises(ContextError.KeyExists, match="'a' already exists; use update"):
        ctx.insert("a", 2)
    assert ctx.get("a") == 1


def test_update_requires_existing_key() -> None:
    ctx = Context()
    with pytest.raises(ContextError.KeyNotFound) as info:
        ctx.update("a", 1)
    assert info.value.key == "a"
    assert isinstance(info.value, KeyError)  # `except KeyError` keeps working
    assert "use insert() to add it" in str(info.value)
    ctx.set("a", 1)
    ctx.update("a", 2)
    assert ctx.to_dict() == {"a": 2}


def test_remove_returns_value_and_refuses_absent_key() -> None:
    ctx = Context({"a": [1, 2]})
    assert ctx.remove("a") == [1, 2]
    assert "a" not in ctx
    with pytest.raises(ContextError.KeyNotFound):
        ctx.remove("a")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1: "x"}, "dict key 1 is a int"),
        ({"when": datetime(2024, 1, 1)}, "['when']"),
        ([1, {2, 3}], "[1]"),
        (math.nan, "not a finite number"),
        (object(), "object is not a JSON value"),
        (b"bytes", "bytes is not a JSON value"),
    ],
)
def test_non_json_values_are_refused_naming_the_key(value: object, fragment: str) -> None:
    ctx = Context()
    with pytest.raises(ContextError.NotSerializable) as info:
        ctx.set("payload", value)
    assert info.value.key == "payload"
    assert fragment in str(info.value)
    assert "payload" in str(info.value)
    assert "payload" not in ctx  # nothing half-written


def test_values_are_copied_on_write_so_later_mutation_is_not_stored() -> None:
    data = {"items": [1, 2]}
    ctx = Context()
    ctx.insert("d", data)
    data["items"].append(object())  # would not be JSON
    assert ctx.to_dict() == {"d": {"items": [1, 2]}}


def test_tuples_become_lists_and_to_dict_is_a_deep_copy() -> None:
    ctx = Context({"t": (1, 2)})
    out = ctx.to_dict()
    assert out == {"t": [1, 2]}
    out["t"].append(3)  # type: ignore[union-attr]
    assert ctx.get("t") == [1, 2]


def test_keys_must_be_strings() -> None:
    with pytest.raises(ContextError.NotSerializable):
        Context().set(1, "x")  # type: ignore[arg-type]


def test_errors_share_the_cloacina_root() -> None:
    assert issubclass(ContextError, CloacinaError)
    assert issubclass(ContextError.NotSerializable, ContextError)

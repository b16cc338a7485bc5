from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloacina_workflow import CloacinaError, Context, ContextError, _context
from cloacina_workflow._context import to_json_value


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


class _Str(str):
    pass


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.builds(_Str, st.text(max_size=3)),
    st.integers(min_value=-(10**5000), max_value=10**5000) | st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
)
_KEYS = st.one_of(st.text(max_size=3), st.integers(0, 3))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _outcome(value: object) -> tuple[str, object]:
    try:
        return "ok", to_json_value(value, key="k", max_depth=3)
    except CloacinaError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_flat_container_shortcut_gives_what_the_walk_gives(value: object) -> None:
    # a list/dict of plain scalars is copied at C speed; anything else is walked. Both must agree:
    # the same copy (same types: a tuple becomes a list, a str subclass is kept), the same refusals.
    fast = _outcome(value)
    original = _context._flat_copy
    _context._flat_copy = lambda _value: None  # type: ignore[assignment]  # the walk alone
    try:
        walked = _outcome(value)
    finally:
        _context._flat_copy = original
    assert fast == walked
    if fast[0] == "ok":
        assert _types(fast[1]) == _types(walked[1])
        if isinstance(value, (list, dict)):
            assert fast[1] is not value  # a private copy


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)

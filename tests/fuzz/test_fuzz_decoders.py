"""Fuzzing the decoders of what users and packages hand the host: the manifest model, context writes,
``loads_limited`` and ``--context``. Each input is accepted (and then is JSON within the documented
limits) or refused with the project's own error (``CloacinaError``: ``ContextError``, ``LimitExceeded``,
``UsageError``), or the error the API documents; never anything else, never a hang."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from pydantic import ValidationError

from cloacina_host._packaging._manifest import Manifest
from cloacina_host.cli._run import read_context as parse_context
from cloacina_workflow import CloacinaError, Context
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, MAX_JSON_DEPTH, LimitExceeded, check_json_depth, loads_limited

from ._archives import CONTROL, HOSTILE_TEXT, TEXT
from ._budget import fuzz


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"k":' * depth + "0" + "}" * depth
    return "[" * depth  # unterminated


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """Text near JSON: real JSON (any value, unicode, control characters), nesting up to 200,000
    levels, long numbers, NaN/Infinity, a BOM, truncations and byte edits of those."""
    kind = draw(st.sampled_from(["json", "deep", "number", "special", "edited", "garbage"]))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans()))
    if kind == "deep":
        depth = draw(
            st.sampled_from([MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 1_000, 50_000, 200_000]) | st.integers(1, 3_000)
        )
        inner = nested(depth, draw(st.sampled_from(["list", "object", "open"])))
        return '{"deep": ' + inner + "}" if draw(st.booleans()) else inner
    if kind == "number":
        digits = draw(st.sampled_from([10, 4_300, 4_301, 100_000]))
        return (
            '{"n": '
            + draw(st.sampled_from(["", "-"]))
            + "9" * digits
            + draw(st.sampled_from(["", ".5", "e999999"]))
            + "}"
        )
    if kind == "special":
        return draw(
            st.sampled_from(['{"x": NaN}', '{"x": Infinity}', "\ufeff{}", '{"\\ud800": 1}', '{"a":1,"a":2}', "", " "])
        )
    if kind == "edited":
        text = json.dumps(draw(JSON_VALUES))
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(TEXT | CONTROL) + text[at + draw(st.integers(0, 3)) :]
    return draw(st.text(max_size=200))


def accepted_is_json_within_limits(value: Any, what: str, *, allow_nan: bool = False) -> None:
    """What a decoder accepted serialises, reads back the same, and is within the limits. ``allow_nan``
    for the decoders that, like ``json.loads``, read ``NaN``/``Infinity`` (a context refuses them)."""
    text = json.dumps(value, allow_nan=allow_nan)
    assert len(text.encode()) <= MAX_CONTEXT_BYTES, f"{what} accepted {len(text):,} bytes"
    try:
        check_json_depth(value, what)
    except LimitExceeded as exc:
        raise AssertionError(f"{what} accepted JSON deeper than MAX_JSON_DEPTH ({exc.value} levels)") from None
    assert json.dumps(json.loads(text)) == text


def test_manifest_model_from_json_text() -> None:
    """``Manifest.model_validate_json``: a manifest or pydantic's ``ValidationError`` (the reader turns it
    into an ``ArchiveError``), never a RecursionError or any other exception."""

    def check(text: str) -> None:
        try:
            Manifest.model_validate_json(text)
        except ValidationError:
            return

    fuzz("manifest: model from JSON text", json_texts(), check, share=0.06)


class Opaque:
    pass


PYTHON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**5000), max_value=10**5000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None), max_size=20)  # lone surrogates too
    | HOSTILE_TEXT
    | st.binary(max_size=8)
    | st.builds(Opaque)
    | st.sampled_from([math.nan, -math.inf, 2**64, b"", bytearray(b"x"), frozenset(), ..., complex(1, 2)]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.sets(st.integers(), max_size=3)
        | st.dictionaries(
            st.text(max_size=5) | st.integers() | st.none() | st.tuples(st.integers()), children, max_size=4
        )
    ),
    max_leaves=12,
)


def _deep_python(depth: int, kind: str) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@dataclass(frozen=True)
class Deep:
    """Built inside the check (hypothesis itself recurses over the values it draws)."""

    depth: int
    kind: str

    def build(self) -> Any:
        return _deep_python(self.depth, self.kind)


DEEP_PYTHON = st.builds(
    Deep,
    st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 2_000, 100_000]) | st.integers(1, 5_000),
    st.sampled_from(["list", "dict"]),
)


def test_context_writes() -> None:
    """``Context`` ``set``/``insert``/``update``: stored as JSON within the limits, or ``ContextError`` /
    ``LimitExceeded``; a self-referencing value is refused too."""

    def check(case: tuple[str, Any, str]) -> None:
        op, value, key = case
        if op == "self-reference":
            loop: list[Any] = [1]
            loop.append(loop)
            value = loop
        elif isinstance(value, Deep):
            value = value.build()
        ctx = Context({"present": 1})
        try:
            if op == "update":
                ctx.update("present", value)
                key = "present"
            elif op == "insert":
                ctx.insert(key, value)
            else:
                ctx.set(key, value)
        except CloacinaError:
            return
        accepted_is_json_within_limits(ctx.to_dict(), "a context")
        json.dumps(ctx.to_dict()).encode("utf-8")  # storable as UTF-8

    ops = st.sampled_from(["set", "insert", "update", "self-reference"])
    keys = st.text(st.characters(codec=None), max_size=10) | st.just("present")
    fuzz("context: writes", st.tuples(ops, PYTHON_VALUES | DEEP_PYTHON, keys), check, share=0.1)


def test_loads_limited() -> None:
    """``loads_limited``: the value, ``LimitExceeded``, or ``json.JSONDecodeError`` as it documents."""

    def check(case: tuple[str, bool]) -> None:
        text, as_bytes = case
        data: str | bytes = text.encode("utf-8", errors="surrogatepass") if as_bytes else text
        try:
            value = loads_limited(data, "a fuzzed document")
        except CloacinaError:
            return
        except json.JSONDecodeError:
            return
        accepted_is_json_within_limits(value, "loads_limited", allow_nan=True)

    raw = st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
    fuzz("limits: loads_limited", st.tuples(json_texts() | raw, st.booleans()), check, share=0.1)


def test_loads_limited_on_bytes_that_are_not_utf8() -> None:
    def check(data: bytes) -> None:
        try:
            loads_limited(data, "fuzzed bytes")
        except (CloacinaError, json.JSONDecodeError):
            return

    blobs = st.binary(max_size=64) | st.sampled_from([b'{"a": "\xff"}', b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}"])
    fuzz("limits: loads_limited bytes", blobs, check, share=0.04)


def _parsed_or_refused(value: str) -> None:
    try:
        data = parse_context(value)
    except CloacinaError as exc:
        refused: CloacinaError = exc
    else:
        return _runnable(data)
    status = getattr(refused, "exit_status", 1)
    assert status == 1, f"a bad --context exits {status}: {refused}"


def _runnable(data: dict[str, Any]) -> None:
    assert isinstance(data, dict)
    accepted_is_json_within_limits(data, "--context", allow_nan=True)
    try:  # what `run` does next with it
        context = Context(data)
    except CloacinaError:
        return
    accepted_is_json_within_limits(context.to_dict(), "--context")


def test_context_option_inline() -> None:
    """``--context JSON``: a JSON object within the limits, or a ``CloacinaError`` with exit status 1."""
    fuzz("cli: --context inline", json_texts(), _parsed_or_refused, share=0.08)


def test_context_option_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--context @FILE``: the same for any file content (not UTF-8 too) and for what is not a regular
    file (a FIFO, a directory, /dev/zero, a missing path, a 6 GiB sparse file)."""
    contents = json_texts().map(lambda t: t.encode("utf-8", errors="surrogatepass")) | st.binary(max_size=64)
    kinds = st.sampled_from(["file"] * 6 + ["fifo", "directory", "dev-zero", "missing", "sparse"])

    def check(case: tuple[str, bytes]) -> None:
        kind, content = case
        where = tmp_path_factory.mktemp("ctx")
        path = where / "context.json"
        if kind == "file":
            path.write_bytes(content)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            path.mkdir()
        elif kind == "dev-zero":
            path = Path("/dev/zero")
        elif kind == "sparse":
            with path.open("wb") as f:
                f.truncate(6 * 1024**3)
        try:
            _parsed_or_refused(f"@{path}")
        finally:
            if kind == "sparse":
                path.unlink()

    fuzz("cli: --context @file", st.tuples(kinds, contents), check, share=0.06)

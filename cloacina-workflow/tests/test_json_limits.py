"""MAX_JSON_DEPTH and MAX_CONTEXT_BYTES: deep or huge JSON and context values are refused, never crash."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloacina_workflow import Context, ContextError, LimitExceeded, task, workflow
from cloacina_workflow.limits import (
    MAX_CONTEXT_BYTES,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    ContextLimitExceeded,
    check_json_depth,
    json_text_too_deep,
    loads_limited,
)
from cloacina_workflow.testing import run_workflow

KIT = Path(__file__).resolve().parents[1]
DEEP = 200_000


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def depth_of(value: Any) -> int:
    try:
        check_json_depth(value, "v", max_depth=0)
    except LimitExceeded:
        for d in range(1, 1000):
            try:
                check_json_depth(value, "v", max_depth=d)
                return d
            except LimitExceeded:
                continue
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\\u00e9\u2028'),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='k[{"\\'), children, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_text_depth_agrees_with_the_parsed_depth(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = depth_of(value)
    for limit in range(0, depth + 2):
        assert json_text_too_deep(text, limit) == (depth > limit), (text, depth, limit)


def test_loads_limited_accepts_the_limit_and_refuses_one_more() -> None:
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_limited(ok, "the context") is not None
    with pytest.raises(LimitExceeded) as info:
        loads_limited("[" + ok + "]", "the context")
    assert info.value.limit == "MAX_JSON_DEPTH"
    assert "the limit of 100 (MAX_JSON_DEPTH). Flatten the data." in str(info.value)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"s": "[" * 500, "e": '\\"[[[' * 100, "u": "\u00e9{" * 300})
    assert loads_limited(text, "x") == json.loads(text)
    assert loads_limited(text.encode("utf-16"), "x") == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        "[" * DEEP,  # not even JSON: refused for its depth before the parser sees it
        '"' + "[" * DEEP,  # an unterminated string: no depth at all, a JSONDecodeError
    ],
    ids=["lists", "objects", "unclosed", "unterminated-string"],
)
def test_200k_levels_are_refused_without_recursion(text: str) -> None:
    for form in (text, text.encode(), text.encode("utf-16")):
        if text.startswith('"'):
            with pytest.raises(json.JSONDecodeError):
                loads_limited(form, "the context")
            continue
        with pytest.raises(LimitExceeded, match=r"the context nests lists/objects .* \(MAX_JSON_DEPTH\)"):
            loads_limited(form, "the context")


def test_deep_json_cannot_crash_the_interpreter() -> None:
    """json's C parser segfaults on 200k levels with a raised recursion limit (3.10, 3.11) or in a
    small-stack thread (3.13); ``loads_limited`` never lets it get there."""
    script = textwrap.dedent(
        f"""
        import sys, threading
        from cloacina_workflow.limits import LimitExceeded, loads_limited
        text = "[" * {DEEP} + "]" * {DEEP}
        def attempt(label):
            try:
                loads_limited(text, "the context")
            except LimitExceeded as exc:
                print(label, exc.limit, flush=True)
        sys.setrecursionlimit(1_000_000)
        attempt("main")
        threading.stack_size(512 * 1024)
        worker = threading.Thread(target=attempt, args=("thread",))
        worker.start()
        worker.join()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(KIT)}
    )
    assert (done.returncode, done.stdout.split()) == (0, ["main", "MAX_JSON_DEPTH", "thread", "MAX_JSON_DEPTH"]), (
        done.stderr
    )


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(LimitExceeded) as info:
        loads_limited(" " * (MAX_CONTEXT_BYTES + 1), "--context")
    assert info.value.limit == "MAX_CONTEXT_BYTES"
    assert str(info.value).startswith(
        "--context is 16,777,217 bytes, more than the limit of 16,777,216 (MAX_CONTEXT_BYTES)."
    )
    with pytest.raises(LimitExceeded, match="MAX_CONTEXT_BYTES"):  # UTF-8 bytes, not characters
        loads_limited('"' + "\u00e9" * (MAX_CONTEXT_BYTES // 2) + '"', "--context")


# -- context values --------------------------------------------------------------------------------


def test_a_200k_level_context_value_is_refused_with_the_limit_named() -> None:
    ctx = Context({"kept": 1})
    with pytest.raises(ContextError.NotSerializable) as info:
        ctx.insert("deep", nested(DEEP))
    assert isinstance(info.value, LimitExceeded)
    assert info.value.limit == "MAX_JSON_DEPTH"
    assert info.value.key == "deep"
    assert str(info.value) == (
        "Context value for key 'deep' cannot be stored: it nests lists/objects more than 99 levels deep "
        "(or contains itself), so the context would nest more than the limit of 100 (MAX_JSON_DEPTH). "
        "Flatten the data, or keep it in a file and put its path in the context."
    )
    assert ctx.to_dict() == {"kept": 1}


def test_a_context_at_the_depth_limit_round_trips_through_loads_limited() -> None:
    ctx = Context({"v": nested(MAX_JSON_DEPTH - 1)})
    text = json.dumps(ctx.to_dict())
    assert loads_limited(text, "the stored context") == ctx.to_dict()
    with pytest.raises(ContextLimitExceeded):
        ctx.set("v", nested(MAX_JSON_DEPTH))


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ContextLimitExceeded, match="or contains itself"):
        Context({"loop": loop})


def test_to_dict_of_deep_trusted_data_is_refused() -> None:
    ctx = Context._trusted({"deep": nested(DEEP)})
    with pytest.raises(ContextLimitExceeded):
        ctx.to_dict()


def test_limit_error_in_a_context_survives_pickling() -> None:
    with pytest.raises(ContextLimitExceeded) as info:
        Context({"deep": nested(200)})
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ContextLimitExceeded
    assert (str(copy), copy.key, copy.limit) == (str(info.value), "deep", "MAX_JSON_DEPTH")


def test_a_task_writing_a_deep_value_fails_or_catches_it_as_a_context_error() -> None:
    @workflow(name="deep")
    class deep:
        @task(id="careful")
        def careful(context: Context) -> None:
            try:
                context.insert("v", nested(DEEP))
            except ContextError as exc:
                context.insert("refused", str(exc))

        @task(id="careless", dependencies=["careful"])
        def careless(context: Context) -> None:
            context.insert("w", nested(DEEP))

    result = run_workflow(deep)
    assert "MAX_JSON_DEPTH" in result.context.get("refused")
    assert result.tasks["careful"].status == "completed"
    outcome = result.tasks["careless"]
    assert outcome.status == "failed"
    assert (outcome.error or "").startswith("ContextLimitExceeded: Context value for key 'w' cannot be stored")
    assert "RecursionError" not in "".join(outcome.errors)


def test_integers_longer_than_max_int_digits_are_refused_by_name() -> None:

    Context().set("ok", 10**MAX_INT_DIGITS - 1)  # the longest allowed
    with pytest.raises(ContextError, match=r"\(MAX_INT_DIGITS\): store it as a string"):
        Context().set("big", -(10**MAX_INT_DIGITS))
    with pytest.raises(ContextError, match=r"'nested'\['a'\]\[0\] cannot be stored: an integer of more than"):
        Context().set("nested", {"a": [10**MAX_INT_DIGITS]})
    with pytest.raises(LimitExceeded, match=r"more than 4,300 digits \(MAX_INT_DIGITS\)") as info:
        loads_limited('{"n": ' + "9" * 5000 + "}", "--context")
    assert info.value.limit == "MAX_INT_DIGITS"


def test_bytes_that_are_not_utf8_are_a_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="not UTF-8 text"):
        loads_limited(b'{"a": "\xff"}', "the reply")

"""Errors raised in another process (a registered package's worker), told on the host as they were there."""

from __future__ import annotations

import pickle

import pytest

from cloacina_workflow import ContextError, RetryPolicy, TaskError
from cloacina_workflow import _machine as m

TRANSIENT = RetryPolicy(attempts=1, condition="transient")


@pytest.mark.parametrize(
    "error",
    [
        TaskError("plain"),
        TaskError.ValidationFailed("no", task="t"),
        TaskError.ExecutionFailed("boom"),
        TaskError.Timeout("slow"),
        ContextError("ctx"),
        ContextError.KeyExists("k exists", key="k"),
        ContextError.KeyNotFound("k absent", key="k"),
        ContextError.NotSerializable("a set", key="k"),
        m.escaped("t", SystemExit(3)),
    ],
)
def test_the_kits_errors_are_rebuilt_as_their_own_classes(error: TaskError | ContextError) -> None:
    name = m.kit_name(type(error))
    assert name is not None
    task, key = getattr(error, "task", None), getattr(error, "key", None)
    rebuilt = m.rebuild(name, str(error), traceback="the worker's traceback\n", task=task, key=key)
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    assert m.describe(rebuilt) == m.describe(error)
    assert m.traceback_text(rebuilt) == "the worker's traceback\n"
    assert TRANSIENT.should_retry(rebuilt, 1) == TRANSIENT.should_retry(error, 1)
    assert getattr(rebuilt, "task", None) == getattr(error, "task", None)
    assert getattr(rebuilt, "key", None) == getattr(error, "key", None)


def test_other_classes_are_not_the_kits() -> None:
    class Mine(TaskError.ExecutionFailed):
        pass

    assert m.kit_name(Mine) is None
    assert m.kit_name(ValueError) is None
    assert m.rebuild("ValueError", "v", traceback="") is None


def test_a_remote_error_is_told_decided_and_pickled_as_it_was_there() -> None:
    err = m.RemoteError("ConnectionError: reset", traceback="Traceback ...\nConnectionError: reset\n", transient=True)
    assert m.describe(err) == str(err) == "ConnectionError: reset"
    assert m.traceback_text(err) == "Traceback ...\nConnectionError: reset\n"
    assert TRANSIENT.should_retry(err, 1)
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), m.describe(back), m.traceback_text(back), back.is_transient()) == (
        m.RemoteError,
        "ConnectionError: reset",
        "Traceback ...\nConnectionError: reset\n",
        True,
    )
    assert not m.RemoteError("KeyError: 'x'", traceback="", transient=False).is_transient()

"""The execution rules every driver asks (``cloacina_workflow._machine``), checked on their own."""

from __future__ import annotations

import json
import random

import pytest

from cloacina_workflow import Context, ExecutionStatus, TaskError, TaskStatus, task, workflow
from cloacina_workflow import _machine as m


@workflow(name="shape")
class shape:
    @task(retry_attempts=2, retry_backoff="linear", retry_delay_ms=10, retry_jitter=False)
    def a(ctx: Context) -> None: ...

    @task(dependencies=["a"])
    def b(ctx: Context) -> None: ...

    @task(dependencies=["a"])
    def c(ctx: Context) -> None: ...

    @task(dependencies=["b", "c"])
    def d(ctx: Context) -> None: ...

    @task(retry_attempts=5, retry_condition="transient", retry_delay_ms=0)
    def e(ctx: Context) -> None: ...


def test_statuses_are_the_stored_strings_everywhere() -> None:
    assert [s.value for s in TaskStatus] == [
        "pending",
        "ready",
        "running",
        "retry_wait",
        "completed",
        "failed",
        "skipped",
        "cancelled",
    ]
    assert [s.value for s in ExecutionStatus] == ["running", "completed", "failed", "cancelled"]
    status = TaskStatus.RETRY_WAIT
    assert status == "retry_wait"
    assert f"{status}|{status:>11}|{status!s}" == "retry_wait| retry_wait|retry_wait"
    assert json.dumps({"s": status}) == '{"s": "retry_wait"}'
    assert {"retry_wait": 1}[status] == 1
    assert TaskStatus("skipped") is TaskStatus.SKIPPED


def test_a_failed_attempt_retries_under_the_policy_then_fails_for_good() -> None:
    error = TaskError.ExecutionFailed("boom")
    assert m.after_failure(shape.a, error, 1) == m.RetryDecision(retry=True, delay_s=0.01)
    assert m.after_failure(shape.a, error, 2) == m.RetryDecision(retry=True, delay_s=0.02)  # linear
    assert m.after_failure(shape.a, error, 3) == m.RetryDecision(retry=False)
    assert m.after_failure(None, error, 1) == m.RetryDecision(retry=False)  # the workflow is unknown


def test_transient_retries_only_what_may_succeed_on_a_retry() -> None:
    assert m.after_failure(shape.e, ConnectionError("reset"), 1).retry
    assert m.after_failure(shape.e, TaskError.Timeout("slow"), 1).retry
    assert not m.after_failure(shape.e, TaskError.ValidationFailed("bad"), 1).retry
    assert not m.after_failure(shape.e, ValueError("bad"), 1).retry
    assert not m.after_failure(shape.e, m.escaped("e", SystemExit(1)), 1).retry


def test_jittered_delays_stay_within_half_and_all_of_the_backoff() -> None:
    @task(retry_attempts=3, retry_delay_ms=100, retry_max_delay_ms=1000)
    def jittery(ctx: Context) -> None: ...

    rng = random.Random(7)
    for failures, full in ((1, 0.1), (2, 0.2), (3, 0.4)):
        delay = m.after_failure(jittery, ValueError(), failures, rng).delay_s
        assert full / 2 <= delay <= full


def test_readiness_needs_every_dependency_completed() -> None:
    done = {"a", "b"}
    assert m.ready_dependents(shape, "b", waiting=lambda t: t not in done, completed=done.__contains__) == []
    done.add("c")
    assert m.ready_dependents(shape, "c", waiting=lambda t: t not in done, completed=done.__contains__) == ["d"]
    assert m.runnable(shape, waiting=lambda t: True, completed=lambda t: False) == ["a", "e"]


def test_a_failure_skips_what_is_downstream_in_workflow_order() -> None:
    assert m.to_skip(shape, "a") == ["b", "c", "d"]
    assert m.to_skip(shape, "a", ended=lambda t: t == "c") == ["b", "d"]
    assert m.to_skip(shape, "e") == []
    assert m.skip_reason("a") == "skipped: upstream task 'a' failed"


def test_the_end_names_the_first_failed_task_in_workflow_order() -> None:
    end = m.execution_end([("a", "completed", None), ("b", "failed", "ValueError: x"), ("c", "failed", "y")])
    assert end == m.ExecutionEnd(ExecutionStatus.FAILED, "task 'b' failed: ValueError: x")
    assert m.execution_end([("a", "completed", None), ("b", "skipped", "z")]).status == ExecutionStatus.COMPLETED
    assert m.all_ended(["completed", "skipped", "failed"])
    assert not m.all_ended(["completed", "retry_wait"])


def test_the_final_context_overlays_outputs_in_workflow_order() -> None:
    outputs = {"c": {"k": "c"}, "b": {"k": "b", "b": 1}}
    assert m.final_context({"k": 0, "i": 1}, ["a", "b", "c"], outputs) == {"k": "c", "i": 1, "b": 1}


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (TaskError.ValidationFailed("no"), "TaskError.ValidationFailed: no"),
        (TaskError.Timeout("slow"), "TaskError.Timeout: slow"),
        (KeyError("k"), "KeyError: 'k'"),
        (ValueError("v"), "ValueError: v"),
        (
            m.escaped("t", KeyboardInterrupt()),
            "TaskEscapedError: task 't' raised KeyboardInterrupt, a BaseException that is not an Exception; "
            "the attempt failed. Tasks must raise Exception subclasses (e.g. TaskError.ExecutionFailed) to fail.",
        ),
        (
            m.timeout_error("t", 0.5),
            "TaskError.Timeout: task 't' ran longer than its timeout of 0.5s and was abandoned; "
            "raise timeout_s (or the runner's default_timeout_s) if it needs more time",
        ),
    ],
)
def test_one_description_of_errors(error: BaseException, text: str) -> None:
    assert m.describe(error) == text


def test_an_escaped_error_survives_pickling_with_its_text() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(m.escaped("t", SystemExit(2))))
    assert isinstance(err, m.TaskEscapedError)
    assert err.task == "t"
    assert m.describe(err).startswith("TaskEscapedError: task 't' raised SystemExit(2), ")


def test_a_cancel_ends_every_task_not_ended_and_the_execution_cancelled() -> None:
    statuses = {
        "a": "completed",
        "b": "running",
        "c": "pending",
        "d": "retry_wait",
        "e": "ready",
        "f": "failed",
        "g": "skipped",
    }
    assert m.after_cancel(statuses) == ["b", "c", "d", "e"]
    ended = {**statuses, **dict.fromkeys(m.after_cancel(statuses), "cancelled")}
    end = m.execution_end([(tid, s, None) for tid, s in ended.items()])
    assert end == m.ExecutionEnd(ExecutionStatus.CANCELLED, "cancelled before 4 task(s) ended: b, c, d, e")
    assert m.all_ended(ended.values())
    # a cancel that comes after every task ended changes nothing: the execution ends as it would have
    assert m.after_cancel({"a": "completed", "f": "failed"}) == []
    assert m.cancel_reason("ann@box") == "cancelled: the execution was cancelled by ann@box before this task ended"


def test_a_retry_runs_the_failed_skipped_and_cancelled_tasks_again() -> None:
    statuses = {"a": "completed", "b": "failed", "c": "skipped", "d": "cancelled", "e": "completed"}
    assert m.retryable(statuses) == ["b", "c", "d"]
    assert m.retryable({"a": "completed"}) == []

"""The execution rules every driver asks (``cloacina_workflow._machine``), checked on their own."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from cloacina_workflow import Condition, Context, Ctx, ExecutionStatus, TaskError, TaskStatus, task, workflow
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
        "deferred",
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


def _statuses(**given: str) -> Callable[[str], str]:
    return lambda tid: given.get(tid, "pending")


def test_readiness_needs_every_dependency_completed() -> None:
    ends = {"a": "completed", "b": "completed"}
    assert m.settle(shape, shape.dependents["b"], status=_statuses(**ends)) == m.Settled()
    ends["c"] = "completed"
    assert m.settle(shape, shape.dependents["c"], status=_statuses(**ends)).start == ("d",)
    assert m.settle(shape, shape.order, status=_statuses()).start == ("a", "e")
    # a task that is running, or completed but not yet committed (the driver says running), is not an end
    assert m.settle(shape, ["d"], status=_statuses(a="completed", b="completed", c="running")) == m.Settled()


def test_a_failure_skips_what_is_downstream_in_workflow_order() -> None:
    settled = m.settle(shape, shape.dependents["a"], status=_statuses(a="failed"))
    reason = "skipped: upstream task 'a' failed"
    assert settled == m.Settled((), (("b", reason), ("c", reason), ("d", reason)))  # d inherits the first failure
    settled = m.settle(shape, shape.dependents["a"], status=_statuses(a="failed", c="completed"))
    assert settled == m.Settled((), (("b", reason), ("d", reason)))  # c had ended: it keeps its end
    assert m.settle(shape, shape.dependents["e"], status=_statuses(e="failed")) == m.Settled()
    assert m.skip_reason("a") == reason


@workflow(name="rules")
class rules:
    @task
    def a(ctx: Context) -> None: ...

    @task(dependencies=["a"], when=[Ctx("mode").equals("full")])
    def full(ctx: Context) -> None: ...

    @task(dependencies=["full"])
    def after_full(ctx: Context) -> None: ...

    @task(dependencies=["full"], trigger_rule="all_done")
    def after_full_anyway(ctx: Context) -> None: ...

    @task(dependencies=["a"], trigger_rule="any_failed")
    def on_failure(ctx: Context) -> None: ...

    @task(dependencies=["on_failure", "a"], trigger_rule="all_done")
    def last(ctx: Context) -> None: ...


def test_a_false_condition_skips_with_the_reason_and_its_dependents_follow_their_rules() -> None:
    done = _statuses(a="completed")
    settled = m.settle(rules, rules.dependents["a"], status=done, context=lambda t: {"mode": "quick"})
    assert settled.start == ("after_full_anyway", "last")
    assert settled.skip == (
        ("full", 'skipped: condition not met: context \'mode\' equals "full" (it is "quick")'),
        ("after_full", "skipped: upstream task 'full' was skipped"),
        ("on_failure", "skipped: trigger rule any_failed: none of its dependencies ('a') failed"),
    )
    settled = m.settle(rules, rules.dependents["a"], status=done, context=lambda t: {"mode": "full"})
    assert settled.start == ("full", "last")  # on_failure was skipped: last (all_done) runs


def test_any_failed_and_all_done_run_after_a_failure() -> None:
    settled = m.settle(rules, rules.dependents["a"], status=_statuses(a="failed"))
    assert settled.start == ("after_full_anyway", "on_failure")  # last waits: on_failure has not ended
    reason = "skipped: upstream task 'a' failed"  # the trigger rule is asked before the condition
    assert settled.skip == (("full", reason), ("after_full", reason))
    ends = {"a": "failed", "full": "skipped", "after_full": "skipped", "on_failure": "completed"}
    assert m.settle(rules, rules.dependents["on_failure"], status=_statuses(**ends)).start == ("last",)


@pytest.mark.parametrize(
    ("condition", "holds", "fails"),
    [
        (Ctx("k").exists(), {"k": None}, {}),
        (Ctx("k").missing(), {}, {"k": 1}),
        (Ctx("k").equals([1, 2]), {"k": [1, 2]}, {"k": [2, 1]}),
        (Ctx("k").not_equals("x"), {"k": "y"}, {"k": "x"}),
        (Ctx("k").is_in(["eu", "us"]), {"k": "eu"}, {"k": "apac"}),
        (Ctx("k").not_in([1, 2]), {"k": 3}, {"k": 2}),
    ],
)
def test_each_context_test_holds_and_fails(
    condition: Condition, holds: dict[str, object], fails: dict[str, object]
) -> None:
    assert condition.holds(holds)
    assert not condition.holds(fails)


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

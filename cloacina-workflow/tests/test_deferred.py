"""Deferred tasks in the kit: ``TaskError.Deferred``, the machine's rule (``defer_or_fail``) and the
in-memory runner. (Every driver against one table: ``tests/drivers/test_same_outcomes.py``.)"""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from cloacina_workflow import Context, TaskError, TaskStatus, task, workflow
from cloacina_workflow import _machine as m
from cloacina_workflow.limits import MAX_DEFERRALS
from cloacina_workflow.testing import run_workflow

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_a_deferral_is_asked_for_seconds_or_a_timezone_aware_time() -> None:
    by_seconds = TaskError.Deferred(seconds=30, reason="not there yet")
    assert str(by_seconds) == "deferred for 30s: not there yet"
    assert by_seconds.delay_s(NOW) == 30.0
    at = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(minutes=5)
    by_time = TaskError.Deferred(until=at)
    assert str(by_time) == "deferred until 2027-01-15T08:05:00Z"
    assert by_time.delay_s(NOW) == 300.0
    assert by_time.delay_s(NOW + 400) == 0.0  # a time gone by: at once
    assert isinstance(by_time, TaskError)
    assert m.describe(by_time) == "TaskError.Deferred: deferred until 2027-01-15T08:05:00Z"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({}, "needs exactly one of seconds= (how long to wait) or until="),
        ({"seconds": 1, "until": datetime.now(timezone.utc)}, "needs exactly one of seconds="),
        ({"until": datetime(2030, 1, 1)}, "needs a timezone-aware datetime, e.g. datetime.now(timezone.utc)"),
        ({"seconds": -1}, "needs a finite number of seconds >= 0"),
        ({"seconds": float("nan")}, "needs a finite number of seconds >= 0"),
    ],
)
def test_a_deferral_that_says_no_time_is_refused_naming_the_fix(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=r"TaskError\.Deferred") as caught:
        TaskError.Deferred("x", **kwargs)  # type: ignore[arg-type]
    assert says in str(caught.value)


def test_a_deferral_pickles_with_its_time() -> None:
    err = TaskError.Deferred(until=NOW + 5, reason="r", task="t")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), back.until_ts, back.seconds, back.reason, back.task) == (type(err), NOW + 5, None, "r", "t")


def test_the_machine_defers_until_the_cap_then_fails_the_attempt() -> None:
    verdict = m.defer_or_fail("t", TaskError.Deferred(seconds=2, reason="later"), 0, NOW)
    assert verdict == m.Deferral(delay_s=2.0, until=NOW + 2, note="deferred until 2027-01-15T08:00:02Z: later")
    other = ValueError("boom")
    assert m.defer_or_fail("t", other, 0, NOW) is other  # not a deferral: the attempt failed
    capped = m.defer_or_fail("t", TaskError.Deferred(seconds=0), MAX_DEFERRALS, NOW)
    assert isinstance(capped, TaskError.ExecutionFailed)
    assert str(capped).startswith(f"task 't' deferred itself {MAX_DEFERRALS} times, the most one task may")
    assert "Defer for longer each time, or raise an error when the wait is over" in str(capped)


RUNS: dict[str, int] = {}


@workflow(name="deferring")
class deferring:
    @task(retry_attempts=0)
    def waits(ctx: Context) -> None:
        RUNS["waits"] = RUNS.get("waits", 0) + 1
        if RUNS["waits"] < 3:
            ctx.set("dropped", True)
            raise TaskError.Deferred(seconds=3600, reason="an hour, in production")
        ctx.set("waited", RUNS["waits"])

    @task(dependencies=["waits"])
    def after(ctx: Context) -> None:
        ctx.set("after", ctx.get("waited"))


def test_the_in_memory_runner_runs_a_deferred_task_again_and_counts_no_failure() -> None:
    RUNS.clear()
    result = run_workflow(deferring, honour_retry_delays=False)  # the hour is not waited for in a test
    assert result.ok, result.error
    waits = result.tasks["waits"]
    # two deferrals and a success, with retry_attempts=0: a deferral is no failure
    assert (waits.status, waits.attempts, waits.error, waits.errors) == (TaskStatus.COMPLETED, 3, None, [])
    assert result.context.to_dict() == {"waited": 3, "after": 3}

"""The in-memory runner package authors test with, and its pytest fixture."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from cloacina_workflow import Context, TaskError, task, workflow
from cloacina_workflow.testing import RunResult, arun_workflow, run_workflow


def make_fan_out(calls: list[str]) -> object:
    @workflow(name="fan")
    class fan:
        @task(id="split")
        async def split(context: Context) -> None:
            calls.append("split")
            context.insert("parts", [1, 2, 3, 4])

        @task(id="evens", dependencies=["split"])
        def evens(context: Context) -> None:
            calls.append("evens")
            context.insert("even", [p for p in context.get("parts") if p % 2 == 0])
            context.set("winner", "evens")

        @task(id="odds", dependencies=["split"])
        async def odds(context: Context) -> None:
            calls.append("odds")
            context.insert("odd", [p for p in context.get("parts") if p % 2])
            context.set("winner", "odds")

        @task(id="join", dependencies=["evens", "odds"])
        async def join(context: Context) -> None:
            calls.append("join")
            context.insert("total", sum(context.get("even")) + sum(context.get("odd")))

    return fan


def test_runs_in_dependency_order_and_merges_outputs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, logger="cloacina_workflow.testing"):
        result = run_workflow(make_fan_out(calls), {"seed": True})  # type: ignore[arg-type]
    assert result.ok
    assert calls[0] == "split"
    assert calls[-1] == "join"
    assert sorted(calls[1:3]) == ["evens", "odds"]
    # "odds" is declared after "evens" in join's dependencies, so its value wins
    assert result.context.get("winner") == "odds"
    assert result.context.get("total") == 10
    assert result.context.get("seed") is True
    assert "'evens' and 'odds' wrote different values for 'winner'" in caplog.text
    assert all(o.status == "completed" and o.attempts == 1 for o in result.tasks.values())


def test_plain_tasks_run_off_the_event_loop_thread() -> None:
    threads: dict[str, int] = {}

    @workflow(name="threads")
    class wf:
        @task(id="plain")
        def plain(context: Context) -> None:
            threads["plain"] = threading.get_ident()

        @task(id="coro")
        async def coro(context: Context) -> None:
            threads["coro"] = threading.get_ident()

    assert run_workflow(wf).ok
    assert threads["plain"] != threads["coro"]


def test_retries_until_success_and_counts_attempts() -> None:
    attempts = {"n": 0}

    @workflow(name="flaky")
    class wf:
        @task(id="flaky", retry_attempts=3, retry_delay_ms=1, retry_jitter=False)
        def flaky(context: Context) -> None:
            attempts["n"] += 1
            if attempts["n"] < 3:
                raise TaskError.ExecutionFailed(f"try {attempts['n']}")
            context.insert("done", attempts["n"])

    result = run_workflow(wf)
    assert result.ok
    assert result.tasks["flaky"].attempts == 3
    assert len(result.tasks["flaky"].errors) == 2
    assert "try 1" in result.tasks["flaky"].errors[0]
    assert result.context.get("done") == 3


def test_failed_task_skips_dependents_and_fails_the_run() -> None:
    @workflow(name="broken")
    class wf:
        @task(id="bad", retry_attempts=1, retry_delay_ms=1)
        def bad(context: Context) -> None:
            raise TaskError.ValidationFailed(message="Missing raw_data")

        @task(id="after", dependencies=["bad"])
        def after(context: Context) -> None:
            raise AssertionError("must not run")

        @task(id="independent")
        def independent(context: Context) -> None:
            context.insert("ran", True)

    result = run_workflow(wf)
    assert result.status == "failed"
    assert result.tasks["bad"].status == "failed"
    assert result.tasks["bad"].attempts == 2  # retry_attempts=1: one retry after the first failure
    assert result.tasks["bad"].error == "TaskError.ValidationFailed: Missing raw_data"
    assert result.tasks["after"].status == "skipped"
    assert result.tasks["independent"].status == "completed"
    assert result.context.get("ran") is True


def test_transient_condition_does_not_retry_validation_errors() -> None:
    runs = {"n": 0}

    @workflow(name="strict")
    class wf:
        @task(id="t", retry_attempts=5, retry_condition="transient", retry_delay_ms=1)
        def t(context: Context) -> None:
            runs["n"] += 1
            raise TaskError.ValidationFailed("no")

    assert run_workflow(wf).status == "failed"
    assert runs["n"] == 1


def test_timeout_fails_the_attempt_with_task_error_timeout() -> None:
    @workflow(name="slow")
    class wf:
        @task(id="sleepy", timeout_s=0.05)
        async def sleepy(context: Context) -> None:
            import asyncio

            await asyncio.sleep(5)

    started = time.monotonic()
    result = run_workflow(wf)
    assert time.monotonic() - started < 4  # it did not wait for the task's own 5 s
    assert result.status == "failed"
    assert result.tasks["sleepy"].error is not None
    assert result.tasks["sleepy"].error.startswith(
        "TaskError.Timeout: task 'sleepy' ran longer than its timeout of 0.05s"
    )


def test_non_json_output_fails_the_task_naming_the_key() -> None:
    @workflow(name="leaky")
    class wf:
        @task(id="t")
        def t(context: Context) -> None:
            context.insert("when", time)  # a module is not JSON

    result = run_workflow(wf)
    assert result.status == "failed"
    assert (result.tasks["t"].error or "").startswith("ContextError.NotSerializable: ")
    assert "'when'" in (result.tasks["t"].error or "")


def test_the_pytest_fixture_runs_a_workflow(cloacina_runner) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    result = cloacina_runner.run(make_fan_out(calls), {})
    assert isinstance(result, RunResult)
    assert result.context.get("total") == 10


async def test_the_async_form_inside_a_running_loop(cloacina_runner) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    result = await cloacina_runner.arun(make_fan_out(calls), Context({"x": 1}))
    assert result.ok
    direct = await arun_workflow(make_fan_out([]))
    assert direct.context.get("total") == 10

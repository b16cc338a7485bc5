"""The in-memory runner when a task raises what it must not: a failed attempt, never an escape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cloacina_workflow import Context, TaskError, task, workflow
from cloacina_workflow._machine import TaskEscapedError, describe, escaped
from cloacina_workflow.testing import arun_workflow, run_workflow


class Custom(BaseException):
    """Neither Exception nor one of Python's own: escaped the runner before."""


RAISED: dict[str, Callable[[], BaseException]] = {
    "SystemExit": lambda: SystemExit(0),
    "KeyboardInterrupt": lambda: KeyboardInterrupt(),
    "GeneratorExit": lambda: GeneratorExit(),
    "Custom": lambda: Custom("no"),
    "CancelledError": lambda: asyncio.CancelledError(),
}
SHOWN = {
    "SystemExit": "SystemExit(0)",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "GeneratorExit": "GeneratorExit",
    "Custom": "Custom(no)",
    "CancelledError": "CancelledError",
}


def make(raise_it: Callable[[], BaseException], is_async: bool, retries: int = 0) -> object:
    calls: list[str] = []

    if is_async:

        async def body(context: Context) -> None:
            calls.append("x")
            raise raise_it()
    else:

        def body(context: Context) -> None:
            calls.append("x")
            raise raise_it()

    @workflow(name="rude")
    class rude:
        @task(id="first")
        def first(context: Context) -> None:
            context.insert("a", 1)

        x = task(id="x", dependencies=["first"], retry_attempts=retries, retry_delay_ms=0)(body)

        @task(id="after", dependencies=["x"])
        def after(context: Context) -> None: ...

        @task(id="beside", dependencies=["first"])
        async def beside(context: Context) -> None:
            context.insert("beside", True)

    rude.calls = calls  # type: ignore[attr-defined]
    return rude


@pytest.mark.parametrize("is_async", [True, False], ids=["async", "plain"])
@pytest.mark.parametrize("name", list(RAISED))
def test_a_base_exception_fails_the_attempt(name: str, is_async: bool) -> None:
    wf = make(RAISED[name], is_async)
    result = run_workflow(wf)  # type: ignore[arg-type]
    assert result.status == "failed"
    outcome = result.tasks["x"]
    assert (outcome.status, outcome.attempts) == ("failed", 1)
    assert outcome.error == (  # the engine's text, the same in every driver
        f"TaskEscapedError: task 'x' raised {SHOWN[name]}, a BaseException that is not an Exception; the "
        "attempt failed. Tasks must raise Exception subclasses (e.g. TaskError.ExecutionFailed) to fail."
    )
    assert name in outcome.errors[0]  # the traceback of what the task raised is kept
    assert result.tasks["after"].status == "skipped"
    assert result.tasks["beside"].status == "completed"
    assert result.context.get("beside") is True


def test_a_base_exception_is_retried_like_any_failure() -> None:
    wf = make(RAISED["SystemExit"], is_async=True, retries=2)
    result = run_workflow(wf, honour_retry_delays=False)  # type: ignore[arg-type]
    assert (result.tasks["x"].status, result.tasks["x"].attempts) == ("failed", 3)
    assert wf.calls == ["x", "x", "x"]  # type: ignore[attr-defined]


async def test_cancelling_the_run_still_cancels_its_tasks() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @workflow(name="waits")
    class waits:
        @task(id="forever")
        async def forever(context: Context) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    run = asyncio.ensure_future(arun_workflow(waits))
    await asyncio.wait_for(started.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.wait_for(cancelled.wait(), 10)


async def test_timeouts_still_fail_a_guarded_task() -> None:
    @workflow(name="slow")
    class slow:
        @task(id="slow", timeout_s=0.05)
        async def slow_task(context: Context) -> None:
            await asyncio.Event().wait()

    result = await arun_workflow(slow)
    assert result.tasks["slow"].error == (
        "TaskError.Timeout: task 'slow' ran longer than its timeout of 0.05s and was abandoned; "
        "raise timeout_s (or the runner's default_timeout_s) if it needs more time"
    )


def test_describe_names_the_kit_variants_publicly() -> None:
    assert describe(TaskError.Timeout("too slow")) == "TaskError.Timeout: too slow"
    assert describe(ValueError("bad")) == "ValueError: bad"
    failure = escaped("t", SystemExit(3))
    assert isinstance(failure, TaskEscapedError)
    assert isinstance(failure, TaskError)
    assert failure.task == "t"
    assert describe(failure).startswith("TaskEscapedError: task 't' raised SystemExit(3), a BaseException ")

"""``DefaultRunner.cancel``, ``retry`` and ``rerun``: the Python API of operating executions, in one process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cloacina_host import DefaultRunner
from cloacina_workflow import Context, TaskError, task, workflow

GATE = asyncio.Event()


@workflow(name="api_slow", package="api_ops")
class api_slow:
    @task
    async def hold(ctx: Context) -> None:
        ctx.set("started", True)
        print("holding until cancelled")
        await asyncio.wait_for(GATE.wait(), 60)

    @task(dependencies=["hold"])
    def later(ctx: Context) -> None:
        ctx.set("later", True)


RUNS = {"b": 0}


@workflow(name="api_flaky", package="api_ops")
class api_flaky:
    @task
    def a(ctx: Context) -> None:
        ctx.set("a", 1)

    @task(dependencies=["a"])
    def b(ctx: Context) -> None:
        RUNS["b"] += 1
        if RUNS["b"] == 1:
            raise TaskError.ExecutionFailed("first time")
        ctx.set("b", 2)


async def test_the_runner_cancels_its_own_execution_at_once_and_retries_and_reruns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloacina.db'}"
    async with DefaultRunner(url, home=tmp_path, recover=False) as runner:
        runner.add_workflow(api_slow)
        runner.add_workflow(api_flaky)
        execution_id = await runner.submit("api_slow", {})
        deadline = time.monotonic() + 60
        record = await runner.get_execution(execution_id)
        while not any(t.status == "running" for t in record.tasks):  # the condition, stored, with a deadline
            assert time.monotonic() < deadline, "the task never started"
            await asyncio.sleep(0.01)
            record = await runner.get_execution(execution_id)
        outcome = await runner.cancel(execution_id, actor="tester@here")
        assert (outcome.ended, outcome.status) == (True, "cancelled")
        result = await runner.wait(execution_id)
        assert result.status == "cancelled"
        assert {t: o.status for t, o in result.tasks.items()} == {"hold": "cancelled", "later": "cancelled"}
        assert result.tasks["later"].error == (
            "cancelled: the execution was cancelled by tester@here before this task ended"
        )
        stored = await runner.get_execution(execution_id)
        assert [(e.kind, e.actor) for e in stored.events] == [("cancel", "tester@here")]
        (held,) = [t for t in stored.tasks if t.task_id == "hold"]
        (attempt,) = held.attempts
        assert attempt.status == "cancelled"
        assert [line.text for line in attempt.output] == ["holding until cancelled"]  # kept though it never ended

        failed = await runner.execute("api_flaky", {})
        assert failed.status == "failed"
        assert await runner.retry(failed.execution_id) == failed.execution_id
        retried = await runner.wait(failed.execution_id)
        assert retried.status == "completed"
        assert retried.context.to_dict() == {"a": 1, "b": 2}
        assert (retried.tasks["a"].attempts, retried.tasks["b"].attempts) == (1, 2)

        new_id = await runner.rerun(failed.execution_id)
        rerun = await runner.wait(new_id)
        assert (rerun.status, (await runner.get_execution(new_id)).rerun_of) == ("completed", failed.execution_id)

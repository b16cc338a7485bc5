"""An attempt's start rides along with its end; a task that runs on has its start stored while it runs."""

from __future__ import annotations

import asyncio
import time

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, task, workflow


async def test_a_running_task_is_stored_running_with_its_attempt_and_then_completed(database_url: str) -> None:
    gate = asyncio.Event()

    @workflow(name="held")
    class held:
        @task
        async def quick(ctx: Context) -> None:
            ctx.set("quick", True)

        @task(dependencies=["quick"])
        async def slow(ctx: Context) -> None:
            await gate.wait()
            ctx.set("slow", True)

    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
        runner.add_workflow(held)
        execution_id = await runner.submit(held)
        deadline = time.monotonic() + 30
        while True:  # the start of 'slow' reaches storage while it waits at the gate
            record = await runner.get_execution(execution_id)
            tasks = {t.task_id: t for t in record.tasks}
            if tasks["slow"].status == "running":
                break
            assert time.monotonic() < deadline, f"'slow' never showed as running: {tasks['slow']}"
            await asyncio.sleep(0.01)
        assert [(a.attempt, a.status, a.finished_at) for a in tasks["slow"].attempts] == [(1, "running", None)]
        assert tasks["slow"].started_at is not None
        assert [(a.attempt, a.status) for a in tasks["quick"].attempts] == [(1, "completed")]
        gate.set()
        result = await runner.wait(execution_id)
        record = await runner.get_execution(execution_id)
    assert result.ok
    assert record.status == "completed"
    for t in record.tasks:  # one attempt row per task, finished, whichever way its start was stored
        [attempt] = t.attempts
        assert (t.status, attempt.status, attempt.worker) == ("completed", "completed", runner.owner)
        assert t.started_at is not None
        assert t.finished_at is not None
        assert attempt.finished_at is not None
        assert attempt.started_at <= attempt.finished_at
        assert t.started_at == attempt.started_at

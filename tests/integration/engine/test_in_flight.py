"""What an execution in flight holds: no asyncio task of its own, and its caller's context throughout."""

from __future__ import annotations

import asyncio
import contextvars

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, task, workflow

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


async def test_waiting_executions_hold_no_asyncio_task_only_running_tasks_do(database_url: str) -> None:
    """Thousands may be in flight: one waiting for a place under the limit costs no task, frame or future
    of asyncio; only the attempts running hold one each."""
    gate = asyncio.Event()
    all_placed = asyncio.Event()
    running = 0

    @workflow(name="gated")
    class gated:
        @task
        async def first(ctx: Context) -> None:
            nonlocal running
            running += 1
            if running == 3:
                all_placed.set()
            await gate.wait()
            ctx.set("first", True)

        @task(dependencies=["first"])
        async def second(ctx: Context) -> None:
            ctx.set("second", ctx.get("first"))

    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False, max_concurrent_tasks=3) as runner:
        runner.add_workflow(gated)
        ids = [await runner.submit(gated) for _ in range(3)]
        await asyncio.wait_for(all_placed.wait(), 30)
        before = len(asyncio.all_tasks())  # the runner's own, and what the 3 running attempts hold
        ids += [await runner.submit(gated) for _ in range(40)]  # an asyncio task exists once it is created
        assert running == 3
        assert len(asyncio.all_tasks()) == before  # 40 more executions in flight, waiting: no task more
        assert len(runner.active_execution_ids) == 43
        gate.set()
        results = [await runner.wait(eid) for eid in ids]
    assert all(r.ok and r.context.get("second") is True for r in results)


async def test_every_task_runs_in_the_context_of_the_caller_that_submitted(database_url: str) -> None:
    """A context variable the caller set (a request id, a tracing span) is seen by each task, those started
    after an earlier one's end was committed included, and what a task sets stays its own."""
    seen: dict[str, list[str]] = {"first": [], "second": [], "third": []}

    @workflow(name="traced")
    class traced:
        @task
        async def first(ctx: Context) -> None:
            seen["first"].append(REQUEST_ID.get())
            REQUEST_ID.set("changed by first")

        @task(dependencies=["first"])
        def second(ctx: Context) -> None:  # a plain task: run in a thread, in a copy of the context
            seen["second"].append(REQUEST_ID.get())

        @task(dependencies=["second"])
        async def third(ctx: Context) -> None:
            seen["third"].append(REQUEST_ID.get())

    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
        runner.add_workflow(traced)

        async def call(request_id: str) -> bool:
            REQUEST_ID.set(request_id)
            return (await runner.execute(traced)).ok

        assert all(await asyncio.gather(*(call(f"request {n}") for n in range(5))))
    expected = sorted(f"request {n}" for n in range(5))
    assert {tid: sorted(values) for tid, values in seen.items()} == dict.fromkeys(seen, expected)

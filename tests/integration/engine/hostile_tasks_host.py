"""A host process for the hostile-task tests (run as a script, never imported by pytest).

``hostile_tasks_host.py URL local`` runs, on an in-process ``DefaultRunner``, a plain and an async
task raising each ``BaseException`` that is not an ``Exception`` (``SystemExit(0)``,
``KeyboardInterrupt``, its own ``asyncio.CancelledError``, a custom subclass), then a plain task
stuck past its timeout, then a task whose output context is over ``MAX_CONTEXT_BYTES``, and prints
one JSON line per execution. ``URL distributed`` does the same through a ``DistributedWorker``
(PostgreSQL). Either way the process must then exit by itself, promptly, with status 0 — although
the stuck task's thread still sleeps.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_workflow import Context, task, workflow
from cloacina_workflow.limits import MAX_CONTEXT_BYTES

URL, MODE = sys.argv[1], sys.argv[2]


class Custom(BaseException):
    """A task's own BaseException subclass."""


def hostile(kind: str) -> BaseException:
    return {
        "SystemExit": SystemExit(0),
        "KeyboardInterrupt": KeyboardInterrupt(),
        "CancelledError": asyncio.CancelledError(),
        "Custom": Custom("custom escape"),
    }[kind]


@workflow(name="plain_escape", package="hostile")
class plain_escape:
    @task
    def escape(ctx: Context) -> None:
        raise hostile(ctx.get("kind"))

    @task(dependencies=["escape"])
    def after(ctx: Context) -> None:
        ctx.set("after", True)


@workflow(name="async_escape", package="hostile")
class async_escape:
    @task
    async def escape(ctx: Context) -> None:
        await asyncio.sleep(0)
        raise hostile(ctx.get("kind"))


@workflow(name="async_escape_timed", package="hostile")
class async_escape_timed:
    @task(timeout_s=60)  # with a timeout the task runs in an asyncio task of its own: the other path
    async def escape(ctx: Context) -> None:
        await asyncio.sleep(0)
        raise hostile(ctx.get("kind"))


@workflow(name="stuck", package="hostile")
class stuck:
    @task(timeout_s=0.5)
    def sleeper(ctx: Context) -> None:
        time.sleep(3600)  # never returns in the test's time: its thread is abandoned


@workflow(name="huge_output", package="hostile")
class huge_output:
    @task
    def big(ctx: Context) -> None:
        ctx.set("blob", "x" * (MAX_CONTEXT_BYTES + 1))


def catalog() -> WorkflowCatalog:
    found = WorkflowCatalog()
    for wf in (plain_escape, async_escape, async_escape_timed, stuck, huge_output):
        found.add_workflow(wf)
    return found


CASES = [
    (name, {"kind": kind})
    for name in ("plain_escape", "async_escape", "async_escape_timed")
    for kind in ("SystemExit", "KeyboardInterrupt", "CancelledError", "Custom")
] + [("stuck", {}), ("huge_output", {})]


def report(name: str, context: dict[str, str], result: object) -> None:
    data = result.to_json()  # type: ignore[attr-defined]
    line = {"workflow": name, "kind": context.get("kind"), "status": data["status"], "tasks": data["tasks"]}
    print(json.dumps(line), flush=True)


async def local() -> None:
    async with DefaultRunner(URL, catalog=catalog(), recover=False) as runner:
        for name, context in CASES:
            report(name, context, await asyncio.wait_for(runner.execute(name, context), 60))


async def distributed() -> None:
    worker = DistributedWorker(URL, catalog=catalog(), concurrency=4, poll_s=0.2, grace_s=0)
    serving = asyncio.ensure_future(worker.run())
    try:
        async with DefaultRunner(URL, catalog=catalog(), recover=False) as runner:
            for name, context in CASES:
                execution_id = await runner.submit(name, context, distributed=True)
                result = await asyncio.wait_for(runner.wait(execution_id, poll_s=0.1), 60)
                assert not serving.done(), "the worker stopped"
                report(name, context, result)
    finally:
        worker.stop(now=True)
        await asyncio.wait_for(serving, 60)


asyncio.run(local() if MODE == "local" else distributed())
print("host done", flush=True)

"""A host process for the recovery tests (run as a script, never imported by pytest).

``recovery_host.py URL COUNTERS start`` runs workflow ``crashable``; its task ``second`` hangs on
its first run (after leaving a marker file) so the test can SIGKILL the process there.
``recovery_host.py URL COUNTERS resume`` starts a runner (which resumes what the dead one left),
waits for the resumed executions and prints their results as JSON.
``recovery_host.py URL COUNTERS readme`` follows the README's recipe word for word:
``DefaultRunner()`` configured by the environment (the test sets ``$CLOACINA_DATABASE_URL``),
``add_workflow`` inside ``async with``, one new execution; it prints that execution's result.
Every task counts its runs in a file under COUNTERS.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, task, workflow

URL, COUNTERS, MODE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]


def bump(name: str) -> int:
    counter = COUNTERS / name
    runs = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(runs))
    return runs


@workflow(name="crashable", package="recovery")
class crashable:
    @task
    def first(ctx: Context) -> None:
        ctx.set("first_runs", bump("first"))

    @task(dependencies=["first"])
    def second(ctx: Context) -> None:
        runs = bump("second")
        if runs == 1:
            (COUNTERS / "second-started").write_text("now kill me")
            time.sleep(300)
        ctx.set("second_runs", runs)

    @task(dependencies=["second"])
    async def third(ctx: Context) -> None:
        ctx.set("third_runs", bump("third"))


async def readme() -> None:
    async with DefaultRunner() as runner:  # or DefaultRunner("postgresql://...")
        runner.add_workflow(crashable)  # embedded; installed plugins are found too
        result = await runner.execute("crashable", {"input": 7})
        print(json.dumps(result.to_json()))


async def main() -> None:
    if MODE == "readme":
        await readme()
        return
    runner = DefaultRunner(URL, catalog=WorkflowCatalog())
    runner.add_workflow(crashable)
    async with runner:
        if MODE == "start":
            await runner.execute("crashable", {"input": 42})
            raise SystemExit("the execution finished although it should have been killed")
        ids = runner.active_execution_ids
        results = [(await runner.wait(execution_id)).to_json() for execution_id in ids]
    print(json.dumps(results))


asyncio.run(main())

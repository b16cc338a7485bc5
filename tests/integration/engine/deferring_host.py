"""A host process for the deferral restart test (run as a script, never imported by pytest).

``deferring_host.py URL COUNTERS start DEFER_S`` runs workflow ``deferring``: its task ``wait`` defers
itself for DEFER_S seconds on its first run (``TaskError.Deferred``), so the test can SIGKILL this
process while the task waits. ``deferring_host.py URL COUNTERS resume`` starts a runner (which resumes
what the dead one left), waits for the resumed executions and prints their results as JSON. Every task
counts its runs in a file under COUNTERS.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, TaskError, task, workflow

URL, COUNTERS, MODE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]


def bump(name: str) -> int:
    counter = COUNTERS / name
    runs = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(runs))
    return runs


@workflow(name="deferring", package="recovery")
class deferring:
    @task
    def wait(ctx: Context) -> None:
        runs = bump("wait")
        if runs == 1:
            raise TaskError.Deferred(seconds=float(ctx.get("defer_s")), reason="the export is not there yet")
        ctx.set("wait_runs", runs)

    @task(dependencies=["wait"])
    async def after(ctx: Context) -> None:
        ctx.set("after_runs", bump("after"))


async def main() -> None:
    runner = DefaultRunner(URL, catalog=WorkflowCatalog())
    runner.add_workflow(deferring)
    async with runner:
        if MODE == "start":
            await runner.execute("deferring", {"defer_s": float(sys.argv[4])})
            raise SystemExit("the execution finished although the host should have been killed while it waited")
        ids = runner.active_execution_ids
        results = [(await runner.wait(execution_id)).to_json() for execution_id in ids]
    print(json.dumps(results))


asyncio.run(main())

"""The web UI's browser test: ``prepare`` → ``flaky`` → ``report``.

Context key ``flag`` (a path): ``flaky`` prints what it checks and fails while that file is missing; the
test creates it before pressing retry, so the second attempt completes. Context key ``gate`` (a path):
``prepare`` waits until that file exists (the test cancels it while it waits).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cloacina_workflow import Context, task, workflow


@workflow(name="ui_flow", package="ui_flow", description="A task that fails until its flag file exists")
class ui_flow:
    @task(id="prepare")
    async def prepare(context: Context) -> None:
        gate = context.get("gate")
        deadline = time.monotonic() + 120
        while gate and not Path(gate).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        print("prepare: ready")
        context.set("prepared", True)

    @task(id="flaky", dependencies=["prepare"])
    def flaky(context: Context) -> None:
        flag = Path(str(context.get("flag")))
        print(f"flaky: looking for {flag}")
        if not flag.exists():
            raise RuntimeError(f"flag file {flag.name} is missing")
        print("flaky: found it")

    @task(id="report", dependencies=["flaky"])
    def report(context: Context) -> None:
        print("report: done")

"""Task output tests: tasks that print, write to stderr and log, run in a registered package's worker.

Context key ``gate`` (a path): ``talk`` says it waits, then waits until the file exists.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

from cloacina_workflow import Context, task, workflow

log = logging.getLogger("reg_logs")


@workflow(name="logs_flow", package="reg_logs", description="Tasks that write to every stream")
class logs_flow:
    @task(id="talk")
    async def talk(context: Context) -> None:
        print("talk: waiting for the gate", flush=True)
        gate = context.get("gate")
        deadline = time.monotonic() + 120
        while gate and not Path(gate).exists() and time.monotonic() < deadline:  # the test opens the gate
            await asyncio.sleep(0.02)
        print("talk: to stdout")
        print("talk: to stderr", file=sys.stderr)
        log.warning("talk: a warning")
        context.set("talked", True)

    @task(id="count", dependencies=["talk"])
    def count(context: Context) -> None:
        for i in range(3):
            print(f"count: {i}")
        context.set("counted", 3)

"""Registry tests: one workflow whose task reports the package version it runs, and can wait on a gate file.

Context keys: ``started`` (a path: touched when the task starts), ``gate`` (a path: the task waits
until it exists). ``REG_SWAP_FAIL_AT_IMPORT`` set in the environment makes importing this fail.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cloacina_workflow import Context, task, workflow

VERSION = "1.0.0"

if os.environ.get("REG_SWAP_FAIL_AT_IMPORT"):
    raise ImportError(f"reg-swap {VERSION} refuses to import: REG_SWAP_FAIL_AT_IMPORT is set")


@workflow(name="swap_flow", package="reg_swap", description="Reports the version it ran on")
class swap_flow:
    @task(id="work")
    async def work(context: Context) -> None:
        started = context.get("started")
        if started:
            Path(started).touch()
        gate = context.get("gate")
        while gate and not Path(gate).exists():
            await asyncio.sleep(0.02)
        print(f"reg-swap {VERSION} working", flush=True)
        context.set("version", VERSION)
        context.set("pid", os.getpid())

    @task(id="finish", dependencies=["work"])
    def finish(context: Context) -> None:
        context.set("finished_by", VERSION)

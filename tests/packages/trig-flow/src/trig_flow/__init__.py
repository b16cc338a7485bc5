"""Trigger tests: two workflows subscribed to ``on_file``, and two triggers that never work.

``on_file`` fires when ``$TRIG_FLOW_DIR/fire`` exists, with its JSON text as the context (the file
is removed, so each file fires once). ``broken`` always raises; ``stuck`` hangs past its timeout.
``collect`` subscribes to all three, ``notify`` to ``on_file`` only.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from cloacina_workflow import Context, Fire, PollInfo, Workflow, hookimpl, task, trigger, workflow


@trigger(name="on_file", poll_interval_s=0.3)
def on_file(info: PollInfo) -> Fire | None:
    gate = Path(os.environ.get("TRIG_FLOW_DIR", "/nonexistent")) / "fire"
    try:
        text = gate.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    gate.unlink()
    return Fire(json.loads(text or "{}"))


@trigger(name="broken", poll_interval_s=1)
def broken(info: PollInfo) -> None:
    raise RuntimeError("broken on purpose")


@trigger(name="stuck", poll_interval_s=1, timeout_s=0.5)
async def stuck(info: PollInfo) -> None:
    await asyncio.sleep(3600)


@workflow(name="collect", package="trig_flow", triggers=[on_file, broken, stuck])
class collect:
    @task(id="take")
    def take(context: Context) -> None:
        context.set("took", context.get("item"))


@workflow(name="notify", package="trig_flow", triggers=["on_file"])
class notify:
    @task(id="tell")
    def tell(context: Context) -> None:
        context.set("told", context.get("item"))


@hookimpl
def cloacina_workflows() -> list[Workflow]:
    return [collect, notify]

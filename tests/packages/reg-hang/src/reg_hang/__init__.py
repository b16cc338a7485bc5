"""Registry tests: importing this sleeps for ``$REG_HANG_SECONDS`` (packaging leaves it unset)."""

from __future__ import annotations

import os
import time

from cloacina_workflow import Context, task, workflow

time.sleep(float(os.environ.get("REG_HANG_SECONDS", "0")))


@workflow(name="hang_flow", package="reg_hang")
class hang_flow:
    @task(id="noop")
    def noop(context: Context) -> None:
        context.set("ran", True)

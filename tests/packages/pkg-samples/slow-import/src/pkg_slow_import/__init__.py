from __future__ import annotations

import os
import time

from cloacina_workflow import Context, task, workflow

time.sleep(float(os.environ.get("PKG_SLOW_IMPORT_S", "0")))


@workflow(name="slow", package="pkg_slow_import")
class slow:
    @task
    def step(context: Context) -> None:
        context.set("done", True)

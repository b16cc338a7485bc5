"""Registry tests: each task kills its worker process on its first attempt, and succeeds on the retry.

Context key ``marker_dir``: where each task records that it has died once already.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from cloacina_workflow import Context, task, workflow


def _first_time(context: Context, name: str) -> bool:
    marker = Path(context.get("marker_dir")) / name
    if marker.exists():
        return False
    marker.touch()
    return True


@workflow(name="crash_flow", package="reg_crash", description="Tasks that crash their worker once")
class crash_flow:
    @task(id="exits", retry_attempts=1, retry_delay_ms=0)
    def exits(context: Context) -> None:
        if _first_time(context, "exits"):
            os._exit(17)
        context.set("exits", "survived")

    @task(id="segfaults", dependencies=["exits"], retry_attempts=1, retry_delay_ms=0)
    def segfaults(context: Context) -> None:
        if _first_time(context, "segfaults"):
            ctypes.string_at(0)
        context.set("segfaults", "survived")

"""Registry tests: a harmless workflow in a wheel that also installs a top-level ``json``."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="shadow_flow", package="reg_shadow")
class shadow_flow:
    @task(id="noop")
    def noop(context: Context) -> None:
        context.set("ran", True)

"""Hardening tests: a harmless workflow in a wheel that also installs a top-level ``pydantic``."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="shadow_host_flow", package="reg_shadow_host")
class shadow_host_flow:
    @task(id="noop")
    def noop(context: Context) -> None:
        context.set("ran", True)

"""A plugin module (not a Workflow object): its hook returns a workflow."""

from __future__ import annotations

from cloacina_workflow import Context, Workflow, hookimpl, task, workflow


@workflow(name="nightly", package="pkg_flows", description="Nightly cleanup")
class nightly:
    @task
    def sweep(context: Context) -> None:
        context.set("swept", True)


@hookimpl
def cloacina_workflows() -> list[Workflow]:
    return [nightly]

"""A plugin whose hook returns one valid workflow and one thing that is not a Workflow."""

from __future__ import annotations

from cloacina_workflow import Context, hookimpl, task, workflow


@workflow(name="inventory_check", package="inventory", description="Count the stock")
class inventory_check:
    @task(id="count")
    def count(context: Context) -> None:
        context.insert("stock", 42)


@hookimpl
def cloacina_workflows() -> list[object]:
    return [inventory_check, "nightly_export"]  # the name of a workflow, not the workflow

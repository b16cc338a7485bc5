"""A two-task workflow, packaged with hatchling."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="flow", package="be_hatchling", description="built with hatchling")
class flow:
    @task(id="first")
    def first(context: Context) -> None:
        context.insert("built_with", "hatchling")

    @task(id="second", dependencies=["first"])
    def second(context: Context) -> None:
        context.insert("done", True)

"""A two-task workflow, packaged with flit-core."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="flow", package="be_flit_core", description="built with flit-core")
class flow:
    @task(id="first")
    def first(context: Context) -> None:
        context.insert("built_with", "flit-core")

    @task(id="second", dependencies=["first"])
    def second(context: Context) -> None:
        context.insert("done", True)

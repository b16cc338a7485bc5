"""A two-task workflow, packaged with poetry-core."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="flow", package="be_poetry_core", description="built with poetry-core")
class flow:
    @task(id="first")
    def first(context: Context) -> None:
        context.insert("built_with", "poetry-core")

    @task(id="second", dependencies=["first"])
    def second(context: Context) -> None:
        context.insert("done", True)

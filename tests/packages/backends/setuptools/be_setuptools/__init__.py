"""A two-task workflow, packaged with setuptools."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="flow", package="be_setuptools", description="built with setuptools")
class flow:
    @task(id="first")
    def first(context: Context) -> None:
        context.insert("built_with", "setuptools")

    @task(id="second", dependencies=["first"])
    def second(context: Context) -> None:
        context.insert("done", True)

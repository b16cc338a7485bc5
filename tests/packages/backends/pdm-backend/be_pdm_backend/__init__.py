"""A two-task workflow, packaged with pdm-backend."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="flow", package="be_pdm_backend", description="built with pdm-backend")
class flow:
    @task(id="first")
    def first(context: Context) -> None:
        context.insert("built_with", "pdm-backend")

    @task(id="second", dependencies=["first"])
    def second(context: Context) -> None:
        context.insert("done", True)

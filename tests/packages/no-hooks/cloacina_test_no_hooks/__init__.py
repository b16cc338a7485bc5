"""A plugin whose author forgot ``@hookimpl``: pluggy registers it, and it would silently offer nothing."""

from __future__ import annotations

from cloacina_workflow import Context, Workflow, task, workflow


@workflow(name="forgotten", package="no_hooks")
class forgotten:
    @task(id="never_found")
    def never_found(context: Context) -> None:
        context.insert("found", True)


def cloacina_workflows() -> Workflow:  # no @hookimpl: not a hook implementation
    return forgotten

"""A plugin whose hook implementation is misspelt: ``cloacina_workflow`` instead of ``cloacina_workflows``."""

from __future__ import annotations

from cloacina_workflow import Context, Workflow, hookimpl, task, workflow


@workflow(name="orphan", package="misspelt")
class orphan:
    @task(id="never_found")
    def never_found(context: Context) -> None:
        context.insert("found", True)


@hookimpl
def cloacina_workflow() -> Workflow:  # the hook is cloacina_workflows: pm.check_pending() refuses this one
    return orphan

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="orphan")
class orphan:
    @task
    def only(context: Context) -> None:
        context.set("x", 1)

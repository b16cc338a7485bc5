"""Registry tests: a one-task workflow in a wheel made big by ``blob.bin`` (see ``hatch_build.py``)."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="bulky_flow", package="reg_bulky", description="A workflow in a big wheel")
class bulky_flow:
    @task(id="only")
    def only(context: Context) -> None:
        context.set("bulky", True)

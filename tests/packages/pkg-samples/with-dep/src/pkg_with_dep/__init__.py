"""Uses pkg_helper, which only a bundled wheel provides."""

from __future__ import annotations

import pkg_helper

from cloacina_workflow import Context, task, workflow


@workflow(name="doubler", package="pkg_with_dep")
class doubler:
    @task
    def double_it(context: Context) -> None:
        context.set("result", pkg_helper.double(context.get("value", 21)))

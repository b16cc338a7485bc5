"""Registry tests: reports the version of reg-depmod it imports (it bundles reg-depmod 1.0)."""

from __future__ import annotations

import reg_depmod

from cloacina_workflow import Context, task, workflow


@workflow(name="dep_a", package="reg_dep_a", description="Reports the reg-depmod it sees")
class dep_a:
    @task(id="which")
    def which(context: Context) -> None:
        context.set("depmod_a", reg_depmod.VERSION)

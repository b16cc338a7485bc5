"""Registry tests: reports the version of reg-depmod it imports (it bundles reg-depmod 2.0)."""

from __future__ import annotations

import reg_depmod

from cloacina_workflow import Context, task, workflow


@workflow(name="dep_b", package="reg_dep_b", description="Reports the reg-depmod it sees")
class dep_b:
    @task(id="which")
    def which(context: Context) -> None:
        context.set("depmod_b", reg_depmod.VERSION)

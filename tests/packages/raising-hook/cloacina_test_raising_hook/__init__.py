"""A plugin that imports fine but whose ``cloacina_workflows`` hook raises."""

from __future__ import annotations

from cloacina_workflow import Workflow, hookimpl


@hookimpl
def cloacina_workflows() -> list[Workflow]:
    raise RuntimeError("inventory service unreachable at startup")

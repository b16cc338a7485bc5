"""The distribution's plugin contract: one entry point, a module whose hook returns both workflows."""

from __future__ import annotations

from importlib.metadata import distribution

import etl_toolkit
import pluggy
from etl_toolkit import csv_cleanup, plugin, sales_rollup

from cloacina_workflow import Workflow, hookspecs


def test_one_entry_point_names_the_hook_module() -> None:
    dist = distribution("etl-toolkit")
    [ep] = [ep for ep in dist.entry_points if ep.group == "cloacina.workflows"]
    assert (ep.name, ep.value) == ("etl_toolkit", "etl_toolkit.plugin")
    assert ep.load() is plugin


def test_the_hook_returns_both_workflows_through_pluggy() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="etl-toolkit:etl_toolkit")
    pm.check_pending()  # every @hookimpl of the module matches a specification
    [returned] = pm.hook.cloacina_workflows()
    assert returned == [sales_rollup, csv_cleanup]
    assert all(isinstance(wf, Workflow) for wf in returned)
    assert [wf.namespace() for wf in returned] == [
        "public::etl_toolkit::sales_rollup",
        "public::etl_toolkit::csv_cleanup",
    ]


def test_package_exports_both() -> None:
    assert etl_toolkit.__all__ == ["csv_cleanup", "sales_rollup"]

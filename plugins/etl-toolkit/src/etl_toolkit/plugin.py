"""The plugin the ``cloacina.workflows`` entry point names: a module with ``@hookimpl`` functions."""

from __future__ import annotations

from cloacina_workflow import Workflow, hookimpl

from .cleanup import csv_cleanup
from .sales import sales_rollup


@hookimpl
def cloacina_workflows() -> list[Workflow]:
    """Every workflow of this distribution."""
    return [sales_rollup, csv_cleanup]

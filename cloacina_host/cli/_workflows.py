"""``cloacina-ctl workflows``: what the host can run, and where each workflow comes from."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from .._discovery import CatalogEntry, WorkflowCatalog
from ._common import Settings, global_options, pass_settings, print_json


@click.group("workflows")
def workflows_group() -> None:
    """Workflows the host can run."""


def entry_json(entry: CatalogEntry, tenant: str) -> dict[str, Any]:
    wf = entry.workflow
    return {
        "namespace": entry.namespace(tenant),
        "package": entry.package,
        "name": wf.name,
        "description": wf.description,
        "author": wf.author,
        "tasks": list(wf.order),
        "task_count": len(wf.tasks),
        "source": {
            "kind": entry.source.kind,
            "distribution": entry.source.distribution,
            "version": entry.source.version,
            "entry_point": entry.source.entry_point,
        },
    }


def _problems_json(catalog: WorkflowCatalog) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = [
        {"kind": "load", "distribution": p.distribution, "entry_point": p.entry_point, "message": str(p)}
        for p in catalog.problems
    ]
    problems += [
        {
            "kind": "conflict",
            "workflow": key,
            "sources": catalog.conflict_error(key).sources,
            "message": str(catalog.conflict_error(key)),
        }
        for key in catalog.conflicts
    ]
    return problems


@workflows_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List every workflow: namespace, description, tasks, and the distribution it came from.

    Plugins that failed to load are reported on stderr (in "problems" with --json); the others
    are listed all the same.
    """
    catalog = settings.catalog()
    entries = sorted(catalog.entries.values(), key=lambda e: e.key)
    if settings.json:
        print_json(
            {"workflows": [entry_json(e, settings.tenant) for e in entries], "problems": _problems_json(catalog)}
        )
        return
    if entries:
        table = Table(box=None, pad_edge=False)
        table.add_column("WORKFLOW", no_wrap=True)
        table.add_column("DESCRIPTION", overflow="fold")
        table.add_column("TASKS", justify="right", no_wrap=True)
        table.add_column("SOURCE", no_wrap=True)
        for e in entries:
            src = e.source
            where = "embedded" if src.kind == "embedded" else f"{src.distribution} {src.version}"
            table.add_row(e.namespace(settings.tenant), e.workflow.description, str(len(e.workflow.tasks)), where)
        settings.out.print(table)
    else:
        settings.out.print(
            "No workflows found. Install a workflow package, e.g. pip install ./plugins/simple-packaged-demo"
        )
    for problem in _problems_json(catalog):
        click.echo(f"warning: {problem['message']}", err=True)

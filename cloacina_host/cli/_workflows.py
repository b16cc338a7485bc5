"""``cloacina-ctl workflows``: what the host can run, and where each workflow comes from."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from .._discovery import CatalogEntry, WorkflowCatalog
from .._engine._views import workflow_json as entry_json
from ._common import Settings, global_options, pass_settings, print_json
from ._text import safe_cell, safe_text


@click.group("workflows")
def workflows_group() -> None:
    """Workflows the host can run."""


def _problems_json(catalog: WorkflowCatalog, conflicts: dict[str, list[CatalogEntry]]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = [
        {"kind": "load", "distribution": p.distribution, "entry_point": p.entry_point, "message": str(p)}
        for p in catalog.problems
    ]
    problems += [
        {
            "kind": "conflict",
            "workflow": key,
            "sources": catalog.conflict_error(key, conflicts).sources,
            "message": str(catalog.conflict_error(key, conflicts)),
        }
        for key in conflicts
    ]
    return problems


def _where(e: CatalogEntry) -> str:
    src = e.source
    return "embedded" if src.kind == "embedded" else f"{src.kind} {src.distribution} {src.version}"


@workflows_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List every workflow: namespace, description, tasks, and where it comes from.

    SOURCE is `embedded`, `installed DIST VERSION` (a pip-installed plugin) or `registered DIST
    VERSION` (the active version of a package registered in this tenant). Plugins that failed to
    load are reported on stderr (in "problems" with --json); the others are listed all the same.
    """
    catalog = settings.catalog(read_only=True)
    current, conflicts = catalog.snapshot()  # installed and embedded, plus the tenant's registered ones
    entries = sorted(current.values(), key=lambda e: e.key)
    if settings.json:
        print_json(
            {
                "workflows": [entry_json(e, settings.tenant) for e in entries],
                "problems": _problems_json(catalog, conflicts),
            }
        )
        return
    if entries or conflicts:
        table = Table(box=None, pad_edge=False)
        table.add_column("WORKFLOW", no_wrap=True)
        table.add_column("DESCRIPTION", overflow="fold", ratio=1)
        table.add_column("TASKS", justify="right", no_wrap=True)
        table.add_column("SOURCE", overflow="fold")
        rows = [(e.key, e, _where(e)) for e in entries]
        # a conflicting workflow cannot run until one source goes: shown, with the sources that clash
        rows += [
            (key, found[0], "CONFLICT: " + "; ".join(_where(e) for e in found)) for key, found in conflicts.items()
        ]
        for _key, e, where in sorted(rows, key=lambda row: row[0]):
            table.add_row(
                safe_cell(e.namespace(settings.tenant)),
                safe_cell(e.workflow.description),
                str(len(e.workflow.tasks)),
                safe_cell(where),
                style="red" if where.startswith("CONFLICT") else None,
            )
        settings.out.print(table)
    else:
        settings.out.print(
            "No workflows found. Install a workflow package, e.g. pip install ./plugins/simple-packaged-demo"
        )
    for problem in _problems_json(catalog, conflicts):
        click.echo(f"warning: {safe_text(problem['message'])}", err=True)

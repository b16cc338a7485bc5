"""``cloacina-ctl workflows``: what the host can run, and where each workflow comes from."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from ._common import Settings, global_options, pass_settings, print_json
from ._text import safe_cell, safe_text


@click.group("workflows")
def workflows_group() -> None:
    """Workflows the host can run."""


def _where(source: dict[str, Any]) -> str:
    kind = source["kind"]
    return "embedded" if kind == "embedded" else f"{kind} {source['distribution']} {source['version']}"


def _view(settings: Settings) -> dict[str, Any]:
    """``workflows list --json``: the workflows and the problems, from the server or the catalog here."""
    client = settings.remote()
    if client is not None:
        from ._client import path

        found = client.get(path("workflows"))
        workflows = [{k: v for k, v in w.items() if k != "graph"} for w in found["workflows"]]
        optional = ("distribution", "entry_point", "workflow", "sources", "entries")  # members of one kind only
        problems = [{k: v for k, v in p.items() if v is not None or k not in optional} for p in found["problems"]]
        return {"workflows": workflows, "problems": problems}
    from .._engine._views import workflow_json, workflow_problems_json

    catalog = settings.catalog(read_only=True)
    current, conflicts = catalog.snapshot()  # installed and embedded, plus the tenant's registered ones
    entries = sorted(current.values(), key=lambda e: e.key)
    return {
        "workflows": [workflow_json(e, settings.tenant) for e in entries],
        "problems": workflow_problems_json(catalog, conflicts, settings.tenant),
    }


@workflows_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List every workflow: namespace, description, tasks, and where it comes from.

    SOURCE is `embedded`, `installed DIST VERSION` (a pip-installed plugin) or `registered DIST
    VERSION` (the active version of a package registered in this tenant). Plugins that failed to
    load are reported on stderr (in "problems" with --json); the others are listed all the same.
    """
    view = _view(settings)
    if settings.json:
        print_json(view)
        return
    conflicts = [p for p in view["problems"] if p["kind"] == "conflict"]
    if view["workflows"] or conflicts:
        table = Table(box=None, pad_edge=False)
        table.add_column("WORKFLOW", no_wrap=True)
        table.add_column("DESCRIPTION", overflow="fold", ratio=1)
        table.add_column("TASKS", justify="right", no_wrap=True)
        table.add_column("SOURCE", overflow="fold")
        rows = [(w["package"] + "::" + w["name"], w, _where(w["source"])) for w in view["workflows"]]
        # a conflicting workflow cannot run until one source goes: shown, with the sources that clash
        rows += [
            (p["workflow"], p["entries"][0], "CONFLICT: " + "; ".join(_where(e["source"]) for e in p["entries"]))
            for p in conflicts
        ]
        for _key, w, where in sorted(rows, key=lambda row: row[0]):
            table.add_row(
                safe_cell(w["namespace"]),
                safe_cell(w["description"]),
                str(w["task_count"]),
                safe_cell(where),
                style="red" if where.startswith("CONFLICT") else None,
            )
        settings.out.print(table)
    else:
        settings.out.print(
            "No workflows found. Install a workflow package, e.g. pip install ./plugins/simple-packaged-demo"
        )
    for problem in view["problems"]:
        click.echo(f"warning: {safe_text(problem['message'])}", err=True)

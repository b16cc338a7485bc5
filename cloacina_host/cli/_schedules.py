"""``cloacina-ctl schedules list|pause|resume``: the tenant's live cron schedules (see ``_engine._schedules``)."""

from __future__ import annotations

import time

import click

from .._engine._views import schedule_json
from ._common import Settings, global_options, pass_settings, print_json


@click.group("schedules")
def schedules_group() -> None:
    """Cron schedules: those of each package's active version and of installed plugins.

    \b
    `cloacina-ctl serve` fires them: each fire time starts one execution, however many hosts serve
    the database. A schedule declared by a new version replaces the old one's when it is activated;
    deactivating or removing the package stops its schedules.
    """


@schedules_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the live schedules: cron, time zone, next fire time (local and UTC), last fire and its execution."""
    from rich.table import Table

    client = settings.remote()
    if client is not None:
        from ._client import path

        view = client.get(path("schedules"))
    else:
        from .._engine._schedules import schedule_states

        states = schedule_states(settings.database(read_only=True), now=time.time())
        view = {"tenant": settings.tenant, "schedules": [schedule_json(s) for s in states]}
    if settings.json:
        print_json(view)
        return
    if not view["schedules"]:
        settings.out.print(
            f"No live schedules in tenant {view['tenant']!r}. Declare one with @workflow(..., "
            "schedules=[Schedule('*/5 * * * *')]) and register the package (installed plugins' schedules go "
            "live when `cloacina-ctl serve` starts).",
            markup=False,
            highlight=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("WORKFLOW", "SCHEDULE", "CRON", "TIME ZONE", "NEXT (LOCAL)", "NEXT (UTC)", "LAST FIRE", "EXECUTION"):
        table.add_column(column, no_wrap=True)
    for s in view["schedules"]:
        next_fire, last_fire = s["next_fire"] or {}, s["last_fire"] or {}
        table.add_row(
            s["workflow"],
            s["name"],
            s["cron"],
            s["timezone"],
            "paused" if s["paused"] else (next_fire.get("local") or "-"),
            "paused" if s["paused"] else (next_fire.get("utc") or "-"),
            last_fire.get("utc") or "-",
            last_fire.get("execution_id") or "-",
        )
    settings.out.print(table)


def _toggle(settings: Settings, workflow: str, name: str | None, *, paused: bool) -> None:
    verb = "paused" if paused else "resumed"
    client = settings.remote()
    if client is not None:
        from ._client import path

        found = client.post(path("schedules", workflow, "pause" if paused else "resume"), name=name)
        changed = found["changed"]
    else:
        from .._engine._schedules import set_paused

        rows = set_paused(
            settings.database(), tenant=settings.tenant, workflow=workflow, name=name, paused=paused, now=time.time()
        )
        changed = [{"workflow": r.workflow_key, "name": r.name} for r in rows]
    if settings.json:
        print_json({verb: changed})
        return
    if not changed:
        settings.out.print(f"Nothing to do: already {verb}.", markup=False, highlight=False)
    for r in changed:
        settings.out.print(
            f"{verb.capitalize()} schedule {r['name']} of {r['workflow']}.", markup=False, highlight=False
        )


@schedules_group.command("pause")
@click.argument("workflow")
@click.argument("name", required=False)
@global_options
@pass_settings
def pause_command(settings: Settings, workflow: str, name: str | None) -> None:
    """Stop schedule NAME of WORKFLOW (all its schedules without NAME) from firing, until resumed."""
    _toggle(settings, workflow, name, paused=True)


@schedules_group.command("resume")
@click.argument("workflow")
@click.argument("name", required=False)
@global_options
@pass_settings
def resume_command(settings: Settings, workflow: str, name: str | None) -> None:
    """Let a paused schedule fire again, from now on (fire times missed while paused are not caught up)."""
    _toggle(settings, workflow, name, paused=False)

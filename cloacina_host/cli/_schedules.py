"""``cloacina-ctl schedules list|pause|resume``: the tenant's live cron schedules (see ``_engine._schedules``)."""

from __future__ import annotations

import time

import click

from .._engine._views import local_seconds, schedule_json, utc_seconds
from ._common import Settings, global_options, pass_settings, print_json


@click.group("schedules")
def schedules_group() -> None:
    """Cron schedules: those of each package's active version and of installed plugins.

    \b
    `cloacina-ctl serve` fires them: each fire time starts one execution, however many hosts serve
    the database. A schedule declared by a new version replaces the old one's when it is activated;
    deactivating or removing the package stops its schedules.
    """


_utc, _local = utc_seconds, local_seconds


@schedules_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the live schedules: cron, time zone, next fire time (local and UTC), last fire and its execution."""
    from rich.table import Table

    from .._engine._schedules import schedule_states

    states = schedule_states(settings.database(read_only=True), now=time.time())
    if settings.json:
        print_json({"tenant": settings.tenant, "schedules": [schedule_json(s) for s in states]})
        return
    if not states:
        settings.out.print(
            f"No live schedules in tenant {settings.tenant!r}. Declare one with @workflow(..., "
            "schedules=[Schedule('*/5 * * * *')]) and register the package (installed plugins' schedules go "
            "live when `cloacina-ctl serve` starts).",
            markup=False,
            highlight=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("WORKFLOW", "SCHEDULE", "CRON", "TIME ZONE", "NEXT (LOCAL)", "NEXT (UTC)", "LAST FIRE", "EXECUTION"):
        table.add_column(column, no_wrap=True)
    for s in states:
        row = s.row
        next_local = "paused" if row.paused else (_local(s.next_fire_at, row.timezone) or "-")
        next_utc = "paused" if row.paused else (_utc(s.next_fire_at) or "-")
        table.add_row(
            row.workflow_key,
            row.name,
            row.cron,
            row.timezone,
            next_local,
            next_utc,
            _utc(row.last_fire_at) or "-",
            row.last_execution_id or "-",
        )
    settings.out.print(table)


def _toggle(settings: Settings, workflow: str, name: str | None, *, paused: bool) -> None:
    from .._engine._schedules import set_paused

    changed = set_paused(
        settings.database(), tenant=settings.tenant, workflow=workflow, name=name, paused=paused, now=time.time()
    )
    verb = "paused" if paused else "resumed"
    if settings.json:
        print_json({verb: [{"workflow": r.workflow_key, "name": r.name} for r in changed]})
        return
    if not changed:
        settings.out.print(f"Nothing to do: already {verb}.", markup=False, highlight=False)
    for r in changed:
        settings.out.print(f"{verb.capitalize()} schedule {r.name} of {r.workflow_key}.", markup=False, highlight=False)


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

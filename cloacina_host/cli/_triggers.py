"""``cloacina-ctl triggers list|pause|resume|fire``: the tenant's live poll triggers (see ``_engine._triggers``)."""

from __future__ import annotations

import time

import click

from .._engine._views import trigger_json, utc_seconds
from ._common import Settings, global_options, pass_settings, print_json


@click.group("triggers")
def triggers_group() -> None:
    """Poll triggers: those of each package's active version and of installed plugins.

    \b
    `cloacina-ctl serve` polls each every poll interval (one host per interval, however many serve
    the database); a firing starts each workflow subscribed to it once. A poll that raises or
    outlasts its timeout is shown here (LAST ERROR) and polled again at the next interval.
    """


_utc = utc_seconds


@triggers_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the live triggers: interval, subscribed workflows, last poll, last fire, last error."""
    from rich.table import Table

    from .._engine._triggers import trigger_rows

    rows = trigger_rows(settings.database(read_only=True))
    if settings.json:
        print_json({"tenant": settings.tenant, "triggers": [trigger_json(r) for r in rows]})
        return
    if not rows:
        settings.out.print(
            f"No live triggers in tenant {settings.tenant!r}. Declare one with @trigger(poll_interval_s=...) and "
            "@workflow(..., triggers=[...]) and register the package (installed plugins' triggers go live when "
            "`cloacina-ctl serve` starts).",
            markup=False,
            highlight=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("TRIGGER", "EVERY", "WORKFLOWS", "LAST POLL", "LAST FIRE", "LAST ERROR"):
        table.add_column(column, no_wrap=column != "LAST ERROR")
    for r in rows:
        error = "-" if r.last_error is None else f"{_utc(r.last_error_at)} {r.last_error}"
        table.add_row(
            r.key,
            "paused" if r.paused else f"{r.poll_interval_s:g} s",
            ", ".join(w.split("::", 1)[1] for w in r.workflows),
            _utc(r.last_poll_at) or "-",
            _utc(r.last_fire_at) or "-",
            error,
        )
    settings.out.print(table)


def _toggle(settings: Settings, name: str, *, paused: bool) -> None:
    from .._engine._triggers import set_trigger_paused

    row, changed = set_trigger_paused(
        settings.database(), tenant=settings.tenant, name=name, paused=paused, now=time.time()
    )
    verb = "paused" if paused else "resumed"
    if settings.json:
        print_json({"trigger": row.key, verb: changed})
        return
    text = f"{verb.capitalize()} trigger {row.key}." if changed else f"Nothing to do: trigger {row.key} is {verb}."
    settings.out.print(text, markup=False, highlight=False)


@triggers_group.command("pause")
@click.argument("name")
@global_options
@pass_settings
def pause_command(settings: Settings, name: str) -> None:
    """Stop trigger NAME (or PACKAGE::NAME) from being polled, until resumed."""
    _toggle(settings, name, paused=True)


@triggers_group.command("resume")
@click.argument("name")
@global_options
@pass_settings
def resume_command(settings: Settings, name: str) -> None:
    """Poll a paused trigger again."""
    _toggle(settings, name, paused=False)


@triggers_group.command("fire")
@click.argument("name")
@click.option(
    "--context", "context_arg", metavar="JSON|@FILE", help="The firing's context: a JSON object, or @path to one."
)
@global_options
@pass_settings
def fire_command(settings: Settings, name: str, context_arg: str | None) -> None:
    """Fire trigger NAME by hand (without polling it): store one execution per subscribed workflow.

    The executions are stored queued, started by "trigger NAME"; a `cloacina-ctl serve` sharing
    this database runs them (`cloacina-ctl executions show ID`). Exit 3 for an unknown trigger.
    """
    from .._engine._triggers import fire_trigger, sync_installed_triggers
    from ._run import read_context

    context = read_context(context_arg)
    database = settings.database()
    catalog = settings.catalog()
    sync_installed_triggers(database, catalog, tenant=settings.tenant, now=time.time())  # plugins' too
    row, ids = fire_trigger(database, catalog, tenant=settings.tenant, name=name, context=context, now=time.time())
    workflows = [w.split("::", 1)[1] for w in row.workflows]
    if settings.json:
        started = [{"workflow": w, "execution_id": i} for w, i in zip(workflows, ids, strict=True)]
        print_json({"trigger": row.key, "executions": started})
        return
    for w, i in zip(workflows, ids, strict=True):
        settings.err.print(f"execution {i} of {w} stored; a `cloacina-ctl serve` runs it", markup=False)
        click.echo(i)

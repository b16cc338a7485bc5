"""``cloacina-ctl triggers list|pause|resume|fire``: the tenant's live poll triggers (see ``_engine._triggers``)."""

from __future__ import annotations

import time

import click

from .._engine._views import trigger_json
from ._common import Settings, global_options, pass_settings, print_json


@click.group("triggers")
def triggers_group() -> None:
    """Poll triggers: those of each package's active version and of installed plugins.

    \b
    `cloacina-ctl serve` polls each every poll interval (one host per interval, however many serve
    the database); a firing starts each workflow subscribed to it once. A poll that raises or
    outlasts its timeout is shown here (LAST ERROR) and polled again at the next interval.
    """


@triggers_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the live triggers: interval, subscribed workflows, last poll, last fire, last error."""
    from rich.table import Table

    client = settings.remote()
    if client is not None:
        from ._client import path

        view = client.get(path("triggers"))
    else:
        from .._engine._triggers import trigger_rows

        rows = trigger_rows(settings.database(read_only=True))
        view = {"tenant": settings.tenant, "triggers": [trigger_json(r) for r in rows]}
    if settings.json:
        print_json(view)
        return
    if not view["triggers"]:
        settings.out.print(
            f"No live triggers in tenant {view['tenant']!r}. Declare one with @trigger(poll_interval_s=...) and "
            "@workflow(..., triggers=[...]) and register the package (installed plugins' triggers go live when "
            "`cloacina-ctl serve` starts).",
            markup=False,
            highlight=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("TRIGGER", "EVERY", "WORKFLOWS", "LAST POLL", "LAST FIRE", "LAST ERROR"):
        table.add_column(column, no_wrap=column != "LAST ERROR")
    for r in view["triggers"]:
        error = r["last_error"]
        table.add_row(
            r["trigger"],
            "paused" if r["paused"] else f"{r['poll_interval_s']:g} s",
            ", ".join(r["workflows"]),
            r["last_poll"] or "-",
            (r["last_fire"] or {}).get("utc") or "-",
            "-" if error is None else f"{error['utc']} {error['error']}",
        )
    settings.out.print(table)


def _toggle(settings: Settings, name: str, *, paused: bool) -> None:
    verb = "paused" if paused else "resumed"
    client = settings.remote()
    if client is not None:
        from ._client import path

        found = client.post(path("triggers", name, "pause" if paused else "resume"))
        key, changed = found["trigger"], found["changed"]
    else:
        from .._engine._triggers import set_trigger_paused

        row, changed = set_trigger_paused(
            settings.database(), tenant=settings.tenant, name=name, paused=paused, now=time.time()
        )
        key = row.key
    if settings.json:
        print_json({"trigger": key, verb: changed})
        return
    text = f"{verb.capitalize()} trigger {key}." if changed else f"Nothing to do: trigger {key} is {verb}."
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
    from ._run import read_context

    context = read_context(context_arg)
    client = settings.remote()
    if client is not None:
        from ._client import path

        fired = client.post(path("triggers", name, "fire"), {"context": context})
        runs_it = f"the server at {client.url} runs it"
    else:
        from .._engine._triggers import fire_trigger, sync_installed_triggers

        database = settings.database()
        catalog = settings.catalog()
        sync_installed_triggers(database, catalog, tenant=settings.tenant, now=time.time())  # plugins' too
        row, ids = fire_trigger(database, catalog, tenant=settings.tenant, name=name, context=context, now=time.time())
        workflows = [w.split("::", 1)[1] for w in row.workflows]
        started = [{"workflow": w, "execution_id": i} for w, i in zip(workflows, ids, strict=True)]
        fired = {"trigger": row.key, "executions": started}
        runs_it = "a `cloacina-ctl serve` runs it"
    if settings.json:
        print_json(fired)
        return
    for e in fired["executions"]:
        settings.err.print(f"execution {e['execution_id']} of {e['workflow']} stored; {runs_it}", markup=False)
        click.echo(e["execution_id"])

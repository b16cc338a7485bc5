"""``cloacina-ctl tenants``: create and list tenants (a PostgreSQL schema, or a SQLite file, each)."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table

from ._common import Settings, global_options, pass_settings, print_json


@click.group("tenants")
def tenants_group() -> None:
    """Tenants: each has its own packages and executions. `public` always exists.

    \b
    PostgreSQL: one schema per tenant (named like it) in the database of --database-url.
    SQLite: one file per tenant, tenants/NAME.db beside the main database file.
    Every other command works in one tenant, chosen with --tenant NAME (default public); a tenant
    must be created first.
    """


@tenants_group.command("create")
@click.argument("name")
@global_options
@pass_settings
def create_command(settings: Settings, name: str) -> None:
    """Create tenant NAME (lower-case letters, digits and '_', starting with a letter)."""
    from .._registry import create_tenant

    settings.check_database_url()
    info = create_tenant(settings.database_url, home=settings.home, name=name)
    if settings.json:
        print_json({"name": info.name, "location": info.location})
        return
    settings.out.print(
        f"Created tenant {info.name!r} in {info.location}. Use it with --tenant {info.name}.",
        markup=False,
        highlight=False,
    )


@tenants_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the tenants and where their tables live."""
    from .._registry import list_tenants

    settings.check_database_url()
    tenants = list_tenants(settings.database_url, home=settings.home)
    if settings.json:
        print_json(
            {
                "tenants": [
                    {
                        "name": t.name,
                        "created_at": None
                        if t.created_at is None
                        else dt.datetime.fromtimestamp(t.created_at, tz=dt.timezone.utc).isoformat(timespec="seconds"),
                        "location": t.location,
                    }
                    for t in tenants
                ]
            }
        )
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("TENANT", no_wrap=True)
    table.add_column("WHERE", overflow="fold")
    for t in tenants:
        table.add_row(t.name, t.location)
    settings.out.print(table)

"""``cloacina-ctl api-keys``: the keys ``cloacina-ctl server`` accepts (a tenant and a role each)."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table

from ._common import Settings, global_options, pass_settings, print_json
from ._text import safe_cell


@click.group("api-keys")
def api_keys_group() -> None:
    """API keys of `cloacina-ctl server`: create, list, revoke. Only a hash of each key is stored.

    \b
    Roles: read (list and show), write (also upload, run, cancel, retry, pause, fire...),
    admin (everything). A key sees only its tenant's packages and executions.
    """


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@api_keys_group.command("create")
@click.option("--role", type=click.Choice(["admin", "write", "read"]), required=True, help="What the key may do.")
@click.option("--name", default=None, metavar="NAME", help="A note saying whose or what for.")
@global_options
@pass_settings
def create_command(settings: Settings, role: str, name: str | None) -> None:
    """Create a key of the tenant (--tenant, default public) and print it once (on stdout): it cannot be
    shown again, only revoked."""
    from .._registry._api_keys import create_api_key, parse_role

    settings.check_database_url()
    created = create_api_key(
        settings.database_url, home=settings.home, tenant=settings.tenant, role=parse_role(role), name=name
    )
    if settings.json:
        print_json({**created.key.to_json(), "key": created.token})
        return
    settings.err.print(
        f"Created API key {created.key.id} ({created.key.role.value}) of tenant {created.key.tenant!r}; "
        "it is shown once, keep it (send it as `Authorization: Bearer KEY`):",
        markup=False,
        highlight=False,
    )
    click.echo(created.token)


@api_keys_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the keys (never their secrets): id, tenant, role, name, created, revoked."""
    from .._registry._api_keys import list_api_keys

    settings.check_database_url()
    keys = list_api_keys(settings.database_url, home=settings.home)
    if settings.json:
        print_json({"api_keys": [k.to_json() for k in keys]})
        return
    if not keys:
        settings.out.print("No API keys. Create one: cloacina-ctl api-keys create --tenant T --role read", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "TENANT", "ROLE", "NAME", "CREATED", "REVOKED"):
        table.add_column(column, no_wrap=column != "NAME")
    for k in keys:
        table.add_row(k.id, k.tenant, k.role.value, safe_cell(k.name or ""), _when(k.created_at), _when(k.revoked_at))
    settings.out.print(table)


@api_keys_group.command("revoke")
@click.argument("key_id", metavar="ID")
@global_options
@pass_settings
def revoke_command(settings: Settings, key_id: str) -> None:
    """Revoke key ID: the server refuses it (401) from its next request on."""
    from .._registry._api_keys import revoke_api_key

    settings.check_database_url()
    key = revoke_api_key(settings.database_url, home=settings.home, key_id=key_id)
    if settings.json:
        print_json(key.to_json())
        return
    settings.out.print(f"Revoked API key {key.id} of tenant {key.tenant!r}", markup=False, highlight=False)

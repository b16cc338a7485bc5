"""``cloacina-ctl tenants``: create and list tenants (a PostgreSQL schema, or a SQLite file, each), and set
a tenant's signature policy."""

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


@tenants_group.command("policy")
@click.argument("tenant_name", metavar="TENANT")
@click.option(
    "--require-signatures/--no-require-signatures",
    "require",
    default=None,
    help="Accept only archives signed by a key the tenant trusts (or any archive again) [default: show the policy].",
)
@global_options
@pass_settings
def policy_command(settings: Settings, tenant_name: str, require: bool | None) -> None:
    """Show or set TENANT's signature policy.

    \b
    With --require-signatures, `register`, `serve --watch`, `packages activate` and every later
    load of a registered version accept only archives signed by a key the tenant trusts
    (`cloacina-ctl trust add NAME PUBKEY --tenant TENANT`). Refused while the tenant trusts no key,
    or while an active version is not signed by a trusted key (it would stop loading).
    """
    from .._registry import TrustStore, check_tenant_name

    settings.tenant = check_tenant_name(tenant_name)
    settings.given.add("tenant")
    store = TrustStore(settings.database(read_only=require is None), settings.tenant)
    result = store.policy() if require is None else store.set_policy(required=require)
    if settings.json:
        print_json(result.to_json())
        return
    changed = require is not None and result.previous != result.require_signatures
    state = ("are now" if changed else "are") + " required" if result.require_signatures else "are not required"
    if changed and not result.require_signatures:
        state = "are no longer required"
    settings.out.print(
        f"Tenant {result.tenant!r}: signatures by a trusted key {state} ({result.trusted_keys} trusted "
        "key(s); cloacina-ctl trust list)",
        markup=False,
        highlight=False,
    )

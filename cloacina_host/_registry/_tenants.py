"""Tenants: a PostgreSQL schema each (``public`` is the URL's own schema), or a SQLite file each.

A tenant's name is a safe identifier (``^[a-z][a-z0-9_]{0,62}$``, not ``pg_*``), so it can name a
schema or a file as it is. Tenants other than ``public`` exist once created (``cloacina-ctl tenants
create NAME``, or ``create_tenant``): the ``tenants`` table of the public tenant's database lists
them, and opening an unknown one is refused rather than silently creating it.

Where a tenant's tables live:

- PostgreSQL: schema ``NAME`` of the same database (tables are mapped there with SQLAlchemy's
  ``schema_translate_map``); ``public`` uses the connection's default schema.
- SQLite: ``<directory of the main file>/tenants/NAME.db``; ``public`` is the main file.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from cloacina_workflow import DEFAULT_TENANT

from .._settings import default_database_url
from .._storage import Database, open_database, parse_database_url
from .._storage import _queries as q
from .._storage._database import SqliteSynchronous
from ._errors import TenantError

TENANT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RESERVED = ("pg_", "information_schema")


def check_tenant_name(name: str) -> str:
    """``name`` if it is a safe tenant identifier; else ``TenantError`` saying what is allowed."""
    if not isinstance(name, str) or not TENANT_NAME.match(name) or name.startswith(_RESERVED):
        raise TenantError(
            f"Tenant name {name!r} is not allowed: use 1 to 63 lower-case letters, digits and '_', starting "
            "with a letter (and not pg_* or information_schema), e.g. --tenant acme.",
            tenant=str(name),
        )
    return name


@dataclass(frozen=True)
class TenantLocation:
    """Where a tenant's tables are: a database URL, and for PostgreSQL the schema (None: the default)."""

    tenant: str
    url: str
    schema: str | None

    @property
    def display(self) -> str:
        from .._storage import mask

        return mask(self.url) + (f" (schema {self.schema})" if self.schema else "")


def tenant_location(database_url: str | None, home: str | None, tenant: str) -> TenantLocation:
    """The database (and schema) holding ``tenant``'s tables."""
    check_tenant_name(tenant)
    url = database_url or default_database_url(home)
    if tenant == DEFAULT_TENANT:
        return TenantLocation(tenant, url, None)
    parsed = parse_database_url(url)
    if parsed.drivername == "sqlite":
        assert parsed.database is not None
        main = Path(parsed.database).expanduser()
        path = main.parent / "tenants" / f"{tenant}.db"
        return TenantLocation(tenant, parsed.set(database=str(path)).render_as_string(hide_password=False), None)
    return TenantLocation(tenant, url, tenant)


def _open_main(database_url: str | None, home: str | None) -> Database:
    return open_database(database_url, home=home)


def tenant_exists(database_url: str | None, home: str | None, tenant: str) -> bool:
    check_tenant_name(tenant)
    if tenant == DEFAULT_TENANT:
        return True
    db = _open_main(database_url, home)
    try:
        with db.read("looking up a tenant") as conn:
            return q.tenant_exists(conn, name=tenant)
    finally:
        db.dispose()


def open_tenant_database(
    database_url: str | None,
    *,
    home: str | None = None,
    tenant: str = DEFAULT_TENANT,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    pool_size: int = 4,
) -> Database:
    """Open (and migrate) ``tenant``'s database; ``TenantError`` when the tenant was never created."""
    location = tenant_location(database_url, home, tenant)
    if tenant != DEFAULT_TENANT and not tenant_exists(database_url, home, tenant):
        raise TenantError(
            f"Tenant {tenant!r} does not exist in {tenant_location(database_url, home, DEFAULT_TENANT).display}. "
            f"Create it with "
            f"`cloacina-ctl tenants create {tenant}` (see `cloacina-ctl tenants list`).",
            tenant=tenant,
        )
    return open_database(
        location.url, home=home, sqlite_synchronous=sqlite_synchronous, schema=location.schema, pool_size=pool_size
    )


@dataclass(frozen=True)
class TenantInfo:
    name: str
    created_at: float | None
    location: str


def create_tenant(database_url: str | None, *, home: str | None = None, name: str) -> TenantInfo:
    """Create tenant ``name``: its schema (or file), migrated, and its row in the tenants table."""
    check_tenant_name(name)
    location = tenant_location(database_url, home, name)
    if name == DEFAULT_TENANT:
        raise TenantError(f"Tenant {name!r} always exists; there is nothing to create.", tenant=name)
    main = _open_main(database_url, home)
    try:
        with main.read("looking up a tenant") as conn:
            if q.tenant_exists(conn, name=name):
                raise TenantError(f"Tenant {name!r} exists already (see `cloacina-ctl tenants list`).", tenant=name)
        tenant_db = open_database(location.url, home=home, schema=location.schema, create_schema=True)
        tenant_db.dispose()
        now = time.time()
        try:
            with main.write("recording a tenant") as conn:
                q.insert_tenant(conn, name=name, now=now)
        except Exception as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise TenantError(f"Tenant {name!r} exists already.", tenant=name) from exc
            raise
    finally:
        main.dispose()
    return TenantInfo(name, now, location.display)


def list_tenants(database_url: str | None, *, home: str | None = None) -> list[TenantInfo]:
    """``public`` and every created tenant, by name."""
    main = _open_main(database_url, home)
    try:
        with main.read("listing tenants") as conn:
            rows = q.list_tenants(conn)
    finally:
        main.dispose()
    found = [TenantInfo(DEFAULT_TENANT, None, tenant_location(database_url, home, DEFAULT_TENANT).display)]
    found += [TenantInfo(n, t, tenant_location(database_url, home, n).display) for n, t in rows]
    return sorted(found, key=lambda t: t.name)

"""Tenants: a PostgreSQL schema each (``public`` is the URL's own schema), or a SQLite file each.

A tenant's name is a safe identifier (the whole name matches ``[a-z][a-z0-9_]{0,62}``, not ``pg_*``),
so it can name a schema or a file as it is. Tenants other than ``public`` exist once created (``cloacina-ctl tenants
create NAME``, or ``create_tenant``): the ``tenants`` table of the public tenant's database lists
them, and opening an unknown one is refused rather than silently creating it.

Where a tenant's tables live:

- PostgreSQL: schema ``NAME`` of the same database (tables are mapped there with SQLAlchemy's
  ``schema_translate_map``); ``public`` uses the connection's default schema.
- SQLite: ``<directory of the main file>/tenants/NAME.db``; ``public`` is the main file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from cloacina_workflow import DEFAULT_TENANT

from .._errors import StorageError, UsageError, shown
from .._settings import default_database_url
from . import _queries as q
from ._database import Database, SqliteSynchronous, mask, open_database, parse_database_url, storage_error
from ._migrations import migrate
from ._schema import schema_version

#: A tenant names a PostgreSQL schema or a SQLite file as it is: 1 to 63 characters (PostgreSQL's limit).
TENANT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
TENANT_NAME_MAX = 63
_RESERVED_TENANTS = ("pg_", "information_schema")


class TenantError(UsageError):
    """A tenant name that is not a safe identifier, or a tenant that was never created (exit status 1)."""

    def __init__(self, message: str, *, tenant: str) -> None:
        super().__init__(message)
        self.tenant = tenant


def check_tenant_name(name: str) -> str:
    """``name`` if it is a safe tenant identifier; else ``TenantError`` saying what is allowed."""
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name) or name.startswith(_RESERVED_TENANTS):
        raise TenantError(
            f"Tenant name {shown(name)} is not allowed: use 1 to {TENANT_NAME_MAX} lower-case letters, digits and "
            "'_', starting with a letter (and not pg_* or information_schema), e.g. --tenant acme.",
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


def _open_main(database_url: str | None, home: str | None, *, read_only: bool = False) -> Database:
    return open_database(database_url, home=home, read_only=read_only)


def tenant_exists(database_url: str | None, home: str | None, tenant: str) -> bool:
    """Whether ``tenant`` was created; looked up read-only (a missing main database has no tenants)."""
    check_tenant_name(tenant)
    if tenant == DEFAULT_TENANT:
        return True
    db = _open_main(database_url, home, read_only=True)
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
    read_only: bool = False,
) -> Database:
    """Open (and migrate) ``tenant``'s database; ``TenantError`` when the tenant was never created.

    ``read_only``: open it for reading only, never creating or migrating anything (``open_database``).
    """
    location = tenant_location(database_url, home, tenant)
    if tenant != DEFAULT_TENANT and not tenant_exists(database_url, home, tenant):
        raise TenantError(
            f"Tenant {tenant!r} does not exist in {tenant_location(database_url, home, DEFAULT_TENANT).display}. "
            f"Create it with "
            f"`cloacina-ctl tenants create {tenant}` (see `cloacina-ctl tenants list`).",
            tenant=tenant,
        )
    return open_database(
        location.url,
        home=home,
        sqlite_synchronous=sqlite_synchronous,
        schema=location.schema,
        pool_size=pool_size,
        read_only=read_only,
    )


@dataclass(frozen=True)
class TenantInfo:
    name: str
    created_at: float | None
    location: str


def create_tenant(database_url: str | None, *, home: str | None = None, name: str) -> TenantInfo:
    """Create tenant ``name``: its schema (or file), migrated, and its row in the tenants table; all or nothing.

    PostgreSQL: one transaction creates the schema, migrates it and records the tenant; an existing
    schema is used only when empty or Cloacina's (it has Cloacina's ``schema_version`` table), any
    other is refused and left untouched. SQLite: the file
    is made and migrated under a temporary name, renamed into place while the tenants table is
    locked, and removed again if recording the tenant fails.
    """
    check_tenant_name(name)
    location = tenant_location(database_url, home, name)
    if name == DEFAULT_TENANT:
        raise TenantError(f"Tenant {name!r} always exists; there is nothing to create.", tenant=name)
    main = _open_main(database_url, home)
    try:
        with main.read("looking up a tenant") as conn:
            if q.tenant_exists(conn, name=name):
                raise TenantError(f"Tenant {name!r} exists already (see `cloacina-ctl tenants list`).", tenant=name)
        now = time.time()
        if location.schema is not None:
            _create_schema_tenant(main, location, now)
        else:
            _create_file_tenant(main, location, home, now)
    finally:
        main.dispose()
    return TenantInfo(name, now, location.display)


_UNIQUE_VIOLATION = "23505"
_DUPLICATE_SCHEMA = "42P06"


def _sqlstate(exc: SQLAlchemyError) -> str | None:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _exists_already(name: str) -> TenantError:
    return TenantError(f"Tenant {name!r} exists already (see `cloacina-ctl tenants list`).", tenant=name)


def _schema_state(conn: Connection, schema: str) -> str | list[str]:
    """``absent``, ``empty``, ``cloacina`` (it has Cloacina's ``schema_version`` table), else what it holds."""
    found = conn.execute(text("SELECT oid FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first()
    if found is None:
        return "absent"
    rows = conn.execute(
        text(
            "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = :oid "
            "UNION ALL SELECT p.proname, 'function' FROM pg_proc p WHERE p.pronamespace = :oid "
            "UNION ALL SELECT t.typname, 'type' FROM pg_type t "
            "WHERE t.typnamespace = :oid AND t.typrelid = 0 AND t.typcategory <> 'A' "
            "ORDER BY 1"
        ),
        {"oid": found[0]},
    ).all()
    if not rows:
        return "empty"
    if any(str(name) == schema_version.name and kind == "r" for name, kind in rows):
        return "cloacina"
    return sorted({str(name) for name, _kind in rows})


def _create_schema_tenant(main: Database, location: TenantLocation, now: float) -> None:
    name, schema = location.tenant, location.schema
    assert schema is not None
    try:
        with main.write_engine.begin() as conn:
            state = _schema_state(conn, schema)
            if isinstance(state, list):
                foreign = state
                listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                raise TenantError(
                    f"Cannot create tenant {name!r}: schema {schema!r} exists already in "
                    f"{main.display_url} and holds objects that are not Cloacina's ({listed}); it was left "
                    f"untouched. Choose another tenant name, or drop or rename schema {schema!r} first "
                    f'(e.g. ALTER SCHEMA "{schema}" RENAME TO "{schema}_old").',
                    tenant=name,
                )
            q.insert_tenant(conn, name=name, now=now)  # in the default schema: before the translate map
            if state == "absent":
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            conn.execution_options(schema_translate_map={None: schema})
            migrate(conn, where=location.display)
    except SQLAlchemyError as exc:
        if _sqlstate(exc) in (_UNIQUE_VIOLATION, _DUPLICATE_SCHEMA):  # a concurrent create of the same name won
            raise _exists_already(name) from exc
        raise storage_error(exc, main.url, f"creating tenant {name!r} (nothing was created)") from exc


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _create_file_tenant(main: Database, location: TenantLocation, home: str | None, now: float) -> None:
    name = location.tenant
    parsed = parse_database_url(location.url)
    assert parsed.database is not None
    path = Path(parsed.database)
    directory = path.parent
    made_directory = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, staging_name = tempfile.mkstemp(prefix=f".creating-{name}-", suffix=".db", dir=directory)
    except OSError as exc:
        raise StorageError(
            f"Cannot create tenant {name!r}: cannot write in {directory}: {exc.strerror}. "
            "Choose another --home or --database-url."
        ) from exc
    os.close(fd)
    staging = Path(staging_name)
    placed = False
    try:
        staged = open_database(parsed.set(database=str(staging)).render_as_string(hide_password=False), home=home)
        staged.dispose()  # the last connection closing folds the WAL into the file
        with main.write(f"recording tenant {name!r}") as conn:
            if q.tenant_exists(conn, name=name):
                raise _exists_already(name)
            if path.exists():
                raise TenantError(
                    f"Cannot create tenant {name!r}: {path} exists already but no tenant {name!r} is recorded; "
                    "it was left untouched. Move it away (or remove it if it holds nothing you need) and "
                    "create the tenant again, or choose another tenant name.",
                    tenant=name,
                )
            q.insert_tenant(conn, name=name, now=now)
            os.rename(staging, path)
            placed = True
    except BaseException:
        if placed:  # renamed, but the row was not committed
            _remove_sqlite_files(path)
        _remove_sqlite_files(staging)
        if made_directory:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    _remove_sqlite_files(staging)  # its -wal/-shm, if SQLite left any


def list_tenants(database_url: str | None, *, home: str | None = None) -> list[TenantInfo]:
    """``public`` and every created tenant, by name (read-only: a missing main database has only ``public``)."""
    main = _open_main(database_url, home, read_only=True)
    try:
        with main.read("listing tenants") as conn:
            rows = q.list_tenants(conn)
    finally:
        main.dispose()
    found = [TenantInfo(DEFAULT_TENANT, None, tenant_location(database_url, home, DEFAULT_TENANT).display)]
    found += [TenantInfo(n, t, tenant_location(database_url, home, n).display) for n, t in rows]
    return sorted(found, key=lambda t: t.name)

"""Versioned schema migrations. Migration 1 is the first release's schema; append, never edit.

Each migration is a function of an open connection, run inside the transaction that also records
its number in ``schema_version``. A migration describes its tables in its own ``MetaData``, frozen
as they were at that version, so later changes to ``_schema`` never rewrite history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    literal,
    select,
    text,
)

from .._errors import StorageError
from ._schema import metadata, schema_version

# an arbitrary constant: PostgreSQL advisory lock taken while migrating, so two hosts starting at
# once never migrate the same database concurrently (SQLite's BEGIN IMMEDIATE does the same there)
MIGRATION_LOCK_ID = 0x636C6F61  # "cloa"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "executions",
        md,
        Column("id", String(36), primary_key=True),
        Column("tenant", String(100), nullable=False),
        Column("namespace", String(400), nullable=False),
        Column("package", String(200), nullable=False),
        Column("workflow", String(200), nullable=False),
        Column("package_version", String(100), nullable=True),
        Column("workflow_fingerprint", String(128), nullable=True),
        Column("status", String(20), nullable=False),
        Column("context_in", Text, nullable=False),
        Column("context_out", Text, nullable=True),
        Column("error", Text, nullable=True),
        Column("created_at", Float, nullable=False),
        Column("finished_at", Float, nullable=True),
        Column("lease_owner", String(200), nullable=True),
        Column("lease_expires_at", Float, nullable=True),
        Index("ix_executions_tenant_status", "tenant", "status"),
        Index("ix_executions_tenant_created", "tenant", "created_at"),
    )
    Table(
        "task_executions",
        md,
        Column("execution_id", String(36), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
        Column("task_id", String(200), primary_key=True),
        Column("position", Integer, nullable=False),
        Column("status", String(20), nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("ready_at", Float, nullable=True),
        Column("started_at", Float, nullable=True),
        Column("finished_at", Float, nullable=True),
        Column("duration_s", Float, nullable=True),
        Column("error", Text, nullable=True),
        Column("context_out", Text, nullable=True),
        Column("lease_owner", String(200), nullable=True),
        Column("lease_expires_at", Float, nullable=True),
        Index("ix_task_executions_status_ready", "status", "ready_at"),
    )
    Table(
        "task_attempts",
        md,
        Column("execution_id", String(36), primary_key=True),
        Column("task_id", String(200), primary_key=True),
        Column("attempt", Integer, primary_key=True, autoincrement=False),
        Column("status", String(20), nullable=False),
        Column("started_at", Float, nullable=False),
        Column("finished_at", Float, nullable=True),
        Column("error", Text, nullable=True),
        Column("traceback", Text, nullable=True),
        Column("worker", String(200), nullable=True),
        ForeignKeyConstraint(
            ["execution_id", "task_id"],
            ["task_executions.execution_id", "task_executions.task_id"],
            ondelete="CASCADE",
        ),
    )
    md.create_all(conn)


def _v2_registry(conn: Connection) -> None:
    md = MetaData()
    Table(
        "tenants",
        md,
        Column("name", String(63), primary_key=True),
        Column("created_at", Float, nullable=False),
    )
    Table(
        "packages",
        md,
        Column("name", String(200), primary_key=True),
        Column("version", String(100), primary_key=True),
        Column("display_name", String(200), nullable=False),
        Column("archive_sha256", String(64), nullable=False),
        Column("archive_size", Integer, nullable=False),
        Column("manifest", Text, nullable=False),
        Column("archive", LargeBinary, nullable=False),
        Column("registered_at", Float, nullable=False),
    )
    Table(
        "package_workflows",
        md,
        Column("name", String(200), primary_key=True),
        Column("version", String(100), primary_key=True),
        Column("workflow_package", String(200), primary_key=True),
        Column("workflow", String(200), primary_key=True),
        Column("fingerprint", String(80), nullable=False),
        ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"], ondelete="CASCADE"),
        Index("ix_package_workflows_workflow", "workflow_package", "workflow"),
    )
    Table(
        "active_packages",
        md,
        Column("name", String(200), primary_key=True),
        Column("version", String(100), nullable=False),
        Column("activated_at", Float, nullable=False),
        ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"]),
    )
    md.create_all(conn)


def _add_column(conn: Connection, table: str, column: Column[Any]) -> None:
    """``ALTER TABLE … ADD COLUMN`` for a nullable column, in the schema the connection's tenant maps to."""
    schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
    preparer = conn.dialect.identifier_preparer
    name = preparer.quote(table) if schema is None else f"{preparer.quote_schema(schema)}.{preparer.quote(table)}"
    kind = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {preparer.quote(column.name)} {kind}")


def _v3_operating(conn: Connection) -> None:
    """Task output per attempt, queued and cancelled executions, retries and reruns with who asked."""
    _add_column(conn, "task_attempts", Column("output", Text, nullable=True))
    _add_column(conn, "task_attempts", Column("output_cut", Integer, nullable=True))
    _add_column(conn, "executions", Column("started_at", Float, nullable=True))
    _add_column(conn, "executions", Column("cancel_requested_at", Float, nullable=True))
    _add_column(conn, "executions", Column("rerun_of", String(36), nullable=True))
    md = MetaData()
    Table("executions", md, Column("id", String(36), primary_key=True))
    Table(
        "execution_events",
        md,
        Column("execution_id", String(36), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("at", Float, nullable=False),
        Column("kind", String(20), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("detail", Text, nullable=False),
    )
    md.tables["execution_events"].create(conn)


def _v4_schedules(conn: Connection) -> None:
    """Cron schedules of the active versions, their claimed fire times, and what started each execution."""
    _add_column(conn, "executions", Column("started_by", Text, nullable=True))
    md = MetaData()
    Table(
        "schedules",
        md,
        Column("namespace", String(400), primary_key=True),
        Column("name", String(100), primary_key=True),
        Column("source", String(250), nullable=False),
        Column("package_version", String(100), nullable=True),
        Column("cron", String(200), nullable=False),
        Column("timezone", String(100), nullable=False),
        Column("context", Text, nullable=False),
        Column("catchup", String(10), nullable=False),
        Column("max_catchup", Integer, nullable=False),
        Column("paused", Integer, nullable=False),
        Column("since", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        Index("ix_schedules_source", "source"),
    )
    Table(
        "schedule_fires",
        md,
        Column("namespace", String(400), primary_key=True),
        Column("schedule", String(100), primary_key=True),
        Column("fire_at", Float, primary_key=True, autoincrement=False),
        Column("execution_id", String(36), nullable=True),
        Column("claimed_at", Float, nullable=False),
        Column("claimed_by", String(200), nullable=False),
    )
    md.create_all(conn)


def _v5_triggers(conn: Connection) -> None:
    """Poll triggers of the active versions and installed plugins: when each was last polled, failed, fired."""
    md = MetaData()
    Table(
        "triggers",
        md,
        Column("package", String(250), primary_key=True),
        Column("name", String(100), primary_key=True),
        Column("source", String(250), nullable=False),
        Column("package_version", String(100), nullable=True),
        Column("poll_interval_s", Float, nullable=False),
        Column("timeout_s", Float, nullable=False),
        Column("workflows", Text, nullable=False),
        Column("paused", Integer, nullable=False),
        Column("last_poll_at", Float, nullable=True),
        Column("polled_by", String(200), nullable=True),
        Column("last_error", Text, nullable=True),
        Column("last_error_at", Float, nullable=True),
        Column("last_fire_at", Float, nullable=True),
        Column("last_executions", Text, nullable=True),
        Column("updated_at", Float, nullable=False),
        Index("ix_triggers_source", "source"),
    )
    md.create_all(conn)


def _v6_signing(conn: Connection) -> None:
    """Signed packages: the tenant's trusted keys, its signature policy, and who signed each registered version."""
    md = MetaData()
    Table(
        "packages",
        md,
        Column("name", String(200), primary_key=True),
        Column("version", String(100), primary_key=True),
    )
    Table(
        "trusted_keys",
        md,
        Column("fingerprint", String(64), primary_key=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("public_key", Text, nullable=False),
        Column("added_at", Float, nullable=False),
        Column("revoked_at", Float, nullable=True),
    )
    Table(
        "tenant_policy",
        md,
        Column("name", String(100), primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", Float, nullable=False),
    )
    Table(
        "package_signers",
        md,
        Column("name", String(200), primary_key=True),
        Column("version", String(100), primary_key=True),
        Column("fingerprint", String(64), primary_key=True),
        Column("key_name", String(64), nullable=False),
        Column("trusted", Integer, nullable=False),
        ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"], ondelete="CASCADE"),
        Index("ix_package_signers_fingerprint", "fingerprint"),
    )
    for name in ("trusted_keys", "tenant_policy", "package_signers"):
        md.tables[name].create(conn)


def _v7_api_keys(conn: Connection) -> None:
    """API keys of ``cloacina-ctl server``: a tenant and a role each; only a hash of the secret is kept."""
    md = MetaData()
    Table(
        "api_keys",
        md,
        Column("id", String(32), primary_key=True),
        Column("tenant", String(63), nullable=False),
        Column("role", String(20), nullable=False),
        Column("name", String(200), nullable=True),
        Column("secret_sha256", String(64), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("revoked_at", Float, nullable=True),
    )
    md.create_all(conn)


def _v8_pauses(conn: Connection) -> None:
    """Pauses of schedules and triggers, kept by name while their package is deactivated (or between versions);
    the end of a trigger's poll in flight, so that no host polls it while another still does."""
    _add_column(conn, "triggers", Column("polling_until", Float, nullable=True))
    md = MetaData()
    Table(
        "pauses",
        md,
        Column("kind", String(20), primary_key=True),
        Column("scope", String(400), primary_key=True),
        Column("name", String(100), primary_key=True),
        Column("source", String(250), nullable=False),
        Column("paused_at", Float, nullable=False),
        Index("ix_pauses_source", "source"),
    )
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "executions, task executions, attempts", _v1_initial),
    Migration(2, "registry: tenants, packages, package workflows, active versions", _v2_registry),
    Migration(3, "task output per attempt, queued and cancelled executions, retries and reruns", _v3_operating),
    Migration(4, "cron schedules, their claimed fire times, what started each execution", _v4_schedules),
    Migration(5, "poll triggers: last poll, last error, last fire", _v5_triggers),
    Migration(6, "signed packages: trusted keys, signature policy, signers of each version", _v6_signing),
    Migration(7, "API keys of the server: tenant, role, the secret's hash", _v7_api_keys),
    Migration(8, "pauses of schedules and triggers kept across deactivation, trigger polls in flight", _v8_pauses),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The version the database is at (0 for an empty database)."""
    # the schema a tenant's schema_translate_map sends the table to (None: the connection's default)
    if not conn.dialect.has_table(conn, schema_version.name, schema=conn.schema_for_object(schema_version)):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one())


class SchemaVersionError(StorageError):
    """The database's schema is at a version this command cannot use as it is (exit status 2)."""

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


def _newer_error(version: int, where: str) -> SchemaVersionError:
    return SchemaVersionError(
        f"The schema of {where} is at version {version}, newer than this cloacina-host knows "
        f"(up to {LATEST_VERSION}). Upgrade cloacina-host, or point --database-url at another database.",
        version=version,
    )


def check_readable(conn: Connection, *, where: str = "the database") -> int:
    """The schema version, for a read-only command: 0 (no schema yet) or ``LATEST_VERSION``; else refused.

    A read-only command never migrates: an older schema is ``SchemaVersionError`` naming the commands
    that upgrade it.
    """
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise _newer_error(version, where)
    if 0 < version < LATEST_VERSION:
        raise SchemaVersionError(
            f"The schema of {where} is at version {version}, older than this cloacina-host's "
            f"({LATEST_VERSION}); read-only commands never change it. Upgrade it by running a command that "
            "writes with this cloacina-host (e.g. `cloacina-ctl serve`, `cloacina-ctl run WORKFLOW` or "
            "`cloacina-ctl register FILE`), then try again.",
            version=version,
        )
    return version


def holds_data(conn: Connection) -> bool:
    """Whether any table but ``schema_version`` has a row (a database that holds only its schema is empty)."""
    for table in metadata.sorted_tables:
        if table.name == schema_version.name:
            continue
        if not conn.dialect.has_table(conn, table.name, schema=conn.schema_for_object(table)):
            continue
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            return True
    return False


def migrate(conn: Connection, *, target: int = LATEST_VERSION, where: str = "the database") -> int:
    """Bring the schema up to ``target`` inside the caller's transaction; return the version reached.

    Safe to run from several processes at once: on PostgreSQL an advisory lock serialises them; on
    SQLite the caller's ``BEGIN IMMEDIATE`` does.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    schema_version.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise _newer_error(version, where)
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            migration.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=migration.version, description=migration.description, applied_at=time.time()
                )
            )
            version = migration.version
    return version

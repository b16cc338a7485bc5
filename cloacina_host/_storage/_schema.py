"""The current database schema, as SQLAlchemy Core tables. Every query in ``_queries`` uses these.

The tables carry no schema name, so a later per-tenant layout can map them into one PostgreSQL
schema per tenant with ``schema_translate_map``. The migrations in ``_migrations`` must produce
exactly this schema; ``tests/integration/engine/test_migrations.py`` checks that they do.

Timestamps are seconds since the epoch (``time.time()``), stored as double precision on both backends.

Statuses:

- execution: ``running``, ``completed``, ``failed``
- task: ``pending`` (waits for dependencies), ``running``, ``retry_wait`` (failed, runs again at
  ``ready_at``), ``deferred`` (the task deferred itself, runs again at ``ready_at``), ``completed``,
  ``failed``, ``skipped`` (an upstream task failed)
- attempt: ``running``, ``completed``, ``failed``, ``deferred`` (it asked to run again later; not a
  failure), ``interrupted`` (the host died while it ran)

The registry (migration 2) keeps, per tenant: ``packages`` (one row per name and version, with the
archive's bytes and manifest), ``package_workflows`` (the workflows each version offers, for lookups by
``package::workflow``) and ``active_packages`` (the version of each package that new executions use).
``tenants`` is read in the ``public`` tenant's database only: the tenants created there.

Schedules (migration 4): ``schedules`` holds the cron schedules live in the tenant (those of each
package's active version, swapped in the transaction that activates it, and those of installed
plugins, written by ``serve``); ``schedule_fires`` one row per fire time claimed, whose primary key
(namespace, schedule, fire_at) makes a fire time start at most one execution across any number of hosts.

Triggers (migration 5): ``triggers`` holds the poll triggers live in the tenant, by package and name,
with the workflows each firing starts; a host claims a poll by moving ``last_poll_at`` forward only
where it is at least one interval old, so one host polls each interval.

Signing (migration 6): ``trusted_keys`` holds the Ed25519 public keys the tenant trusts, by
fingerprint (sha256 of the raw key), under the tenant's own names; removing one sets ``revoked_at``
(the row stays: versions it signed say so). ``tenant_policy`` holds the tenant's settings by name
(``require_signatures``). ``package_signers`` records who signed each registered version, and
whether the tenant trusted that key when the version was registered.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
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
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("namespace", String(400), nullable=False),  # tenant::package::workflow
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
    Column("started_at", Float, nullable=True),  # migration 3: None while queued
    Column("cancel_requested_at", Float, nullable=True),  # migration 3: hosts running it stop it
    Column("rerun_of", String(36), nullable=True),  # migration 3: the execution whose input it reused
    Column("started_by", Text, nullable=True),  # migration 4: "manual", "schedule NAME at TIME"
    Index("ix_executions_tenant_status", "tenant", "status"),
    Index("ix_executions_tenant_created", "tenant", "created_at"),
)

task_executions = Table(
    "task_executions",
    metadata,
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

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("execution_id", String(36), primary_key=True),
    Column("task_id", String(200), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("status", String(20), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("output", Text, nullable=True),  # migration 3: the attempt's stdout, stderr and log records
    Column("output_cut", Integer, nullable=True),  # migration 3: bytes of output dropped over the cap
    ForeignKeyConstraint(
        ["execution_id", "task_id"],
        ["task_executions.execution_id", "task_executions.task_id"],
        ondelete="CASCADE",
    ),
)

execution_events = Table(  # migration 3: what was asked of an execution after it was submitted
    "execution_events",
    metadata,
    Column("execution_id", String(36), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("kind", String(20), nullable=False),  # cancel, retry, rerun
    Column("actor", String(200), nullable=False),  # who asked: user@host, or the host's own id
    Column("detail", Text, nullable=False),  # JSON: the version, the tasks run again, the new execution
)

# -- the registry (migration 2) -------------------------------------------------------------------

tenants = Table(
    "tenants",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(  # migration 7: the server's API keys (read in the public tenant's database only)
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("role", String(20), nullable=False),  # admin, write or read
    Column("name", String(200), nullable=True),
    Column("secret_sha256", String(64), nullable=False),  # hex sha256 of the key's secret part; never the secret
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

packages = Table(
    "packages",
    metadata,
    Column("name", String(200), primary_key=True),  # PEP 503 normalised distribution name
    Column("version", String(100), primary_key=True),
    Column("display_name", String(200), nullable=False),  # as the wheel's METADATA spells it
    Column("archive_sha256", String(64), nullable=False),
    Column("archive_size", Integer, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("archive", LargeBinary, nullable=False),
    Column("registered_at", Float, nullable=False),
)

package_workflows = Table(
    "package_workflows",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("workflow_package", String(200), primary_key=True),
    Column("workflow", String(200), primary_key=True),
    Column("fingerprint", String(80), nullable=False),
    ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"], ondelete="CASCADE"),
    Index("ix_package_workflows_workflow", "workflow_package", "workflow"),
)

active_packages = Table(
    "active_packages",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", String(100), nullable=False),
    Column("activated_at", Float, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"]),
)

# -- schedules (migration 4) ----------------------------------------------------------------------

schedules = Table(  # the cron schedules of the active versions and of installed plugins
    "schedules",
    metadata,
    Column("namespace", String(400), primary_key=True),  # tenant::package::workflow
    Column("name", String(100), primary_key=True),
    Column("source", String(250), nullable=False),  # the registered package's name, or "plugin:DISTRIBUTION"
    Column("package_version", String(100), nullable=True),  # the version that declared it
    Column("cron", String(200), nullable=False),
    Column("timezone", String(100), nullable=False),
    Column("context", Text, nullable=False),  # JSON: each execution's initial context
    Column("catchup", String(10), nullable=False),  # skip, all
    Column("max_catchup", Integer, nullable=False),
    Column("paused", Integer, nullable=False),  # 0 or 1
    Column("since", Float, nullable=False),  # fire times after this only: never backfill before it appeared
    Column("updated_at", Float, nullable=False),
    Index("ix_schedules_source", "source"),
)

schedule_fires = Table(  # a fire time is claimed by inserting its row: the primary key decides who starts it
    "schedule_fires",
    metadata,
    Column("namespace", String(400), primary_key=True),
    Column("schedule", String(100), primary_key=True),
    Column("fire_at", Float, primary_key=True, autoincrement=False),  # seconds since the epoch (UTC)
    Column("execution_id", String(36), nullable=True),  # the execution it started
    Column("claimed_at", Float, nullable=False),
    Column("claimed_by", String(200), nullable=False),  # the host that claimed it
)

# -- triggers (migration 5) -----------------------------------------------------------------------

triggers = Table(  # the poll triggers of the active versions and of installed plugins
    "triggers",
    metadata,
    Column("package", String(250), primary_key=True),  # the package of the workflows it starts
    Column("name", String(100), primary_key=True),
    Column("source", String(250), nullable=False),  # the registered package's name, or "plugin:DISTRIBUTION"
    Column("package_version", String(100), nullable=True),
    Column("poll_interval_s", Float, nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("workflows", Text, nullable=False),  # JSON list of the namespaces each firing starts
    Column("paused", Integer, nullable=False),  # 0 or 1
    Column("last_poll_at", Float, nullable=True),  # claimed by the host that polls: one per interval
    Column("polled_by", String(200), nullable=True),
    Column("last_error", Text, nullable=True),  # the latest poll's failure (None once one succeeds)
    Column("last_error_at", Float, nullable=True),
    Column("last_fire_at", Float, nullable=True),
    Column("last_executions", Text, nullable=True),  # JSON list of the executions the last firing started
    Column("updated_at", Float, nullable=False),
    # migration 8: a claimed poll runs until it ends or this time (claim + timeout_s); no other host polls meanwhile
    Column("polling_until", Float, nullable=True),
    Index("ix_triggers_source", "source"),
)

# -- signing (migration 6) ------------------------------------------------------------------------

trusted_keys = Table(  # the public keys the tenant trusts; a revoked one keeps its row
    "trusted_keys",
    metadata,
    Column("fingerprint", String(64), primary_key=True),  # sha256 of the raw 32-byte Ed25519 key, hex
    Column("name", String(64), nullable=False, unique=True),  # the tenant's name for it
    Column("public_key", Text, nullable=False),  # SubjectPublicKeyInfo PEM
    Column("added_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),  # None: trusted
)

tenant_policy = Table(  # the tenant's settings, by name
    "tenant_policy",
    metadata,
    Column("name", String(100), primary_key=True),  # require_signatures
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Float, nullable=False),
)

package_signers = Table(  # who signed each registered version
    "package_signers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("key_name", String(64), nullable=False),  # the tenant's name for the key, else the signer's
    Column("trusted", Integer, nullable=False),  # 1: the tenant trusted the key when the version was registered
    ForeignKeyConstraint(["name", "version"], ["packages.name", "packages.version"], ondelete="CASCADE"),
    Index("ix_package_signers_fingerprint", "fingerprint"),
)

# -- pauses (migration 8) -------------------------------------------------------------------------

pauses = Table(  # what a user paused, kept while its package is inactive: it comes back paused
    "pauses",
    metadata,
    Column("kind", String(20), primary_key=True),  # "schedule" or "trigger"
    Column("scope", String(400), primary_key=True),  # a schedule's namespace, a trigger's package
    Column("name", String(100), primary_key=True),
    Column("source", String(250), nullable=False),  # the registered package's name, or "plugin:DISTRIBUTION"
    Column("paused_at", Float, nullable=False),
    Index("ix_pauses_source", "source"),
)

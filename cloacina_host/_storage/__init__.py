"""Storage: the schema, its migrations, every query and row layout, tenants' databases, and the
group-commit writer (SQLite, PostgreSQL)."""

from __future__ import annotations

from ._database import Database, mask, open_database, parse_database_url
from ._migrations import LATEST_VERSION, MIGRATIONS, SchemaVersionError, current_version, migrate
from ._queries import Write
from ._records import AttemptRecord, ExecutionRecord, TaskRecord
from ._tenants import TenantError, check_tenant_name, open_tenant_database, tenant_location
from ._writer import GroupCommitWriter, Op

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "AttemptRecord",
    "Database",
    "ExecutionRecord",
    "GroupCommitWriter",
    "Op",
    "SchemaVersionError",
    "TaskRecord",
    "TenantError",
    "Write",
    "check_tenant_name",
    "current_version",
    "mask",
    "migrate",
    "open_database",
    "open_tenant_database",
    "parse_database_url",
    "tenant_location",
]

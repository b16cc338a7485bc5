"""The schema is versioned: migrations from scratch, and from the first release, give the current schema."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, inspect

from cloacina_host import StorageError
from cloacina_host._storage import LATEST_VERSION, MIGRATIONS, current_version, migrate, open_database
from cloacina_host._storage._schema import metadata, schema_version


def _describe(conn: Connection) -> dict[str, Any]:
    """Tables, columns (type, nullability, key), indexes and foreign keys, as the database reports them."""
    insp = inspect(conn)
    described: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        described[table] = {
            "columns": [
                (c["name"], str(c["type"]).split("(")[0].upper(), c["nullable"]) for c in insp.get_columns(table)
            ],
            "primary_key": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in insp.get_foreign_keys(table)
            ),
        }
    return described


def _engine(url: str) -> Engine:
    return open_database(url, migrate_schema=False).write_engine


def test_migrating_from_empty_gives_the_current_schema(database_url: str, tmp_path: Any) -> None:
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            assert migrate(conn) == LATEST_VERSION
        with engine.connect() as conn:
            migrated = _describe(conn)
            assert current_version(conn) == LATEST_VERSION
        with engine.begin() as conn:  # what the code's tables say, created directly in a scratch space
            for table in reversed(metadata.sorted_tables):
                table.drop(conn)
            metadata.create_all(conn)
            expected = _describe(conn)
    finally:
        engine.dispose()
    assert migrated == expected
    assert {"schema_version", "executions", "task_executions", "task_attempts"} <= set(migrated)
    assert {"tenants", "packages", "package_workflows", "active_packages"} <= set(migrated)  # migration 2


def test_upgrading_from_the_first_schema_gives_the_current_one(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            assert migrate(conn, target=MIGRATIONS[0].version) == 1
            assert current_version(conn) == 1
        # the first release's host wrote data; the upgrade keeps it
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO executions (id, tenant, namespace, package, workflow, status, context_in, created_at) "
                "VALUES ('old', 'public', 'public::p::w', 'p', 'w', 'completed', '{}', 1.0)"
            )
        db = open_database(database_url)  # what a newer host does on start
        try:
            with db.read("checking") as conn:
                assert current_version(conn) == LATEST_VERSION
                upgraded = _describe(conn)
                assert conn.exec_driver_sql("SELECT id FROM executions").scalar_one() == "old"
        finally:
            db.dispose()
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                table.drop(conn)
            metadata.create_all(conn)
            expected = _describe(conn)
    finally:
        engine.dispose()
    assert upgraded == expected


def test_opening_twice_migrates_once(database_url: str) -> None:
    for _ in range(2):
        open_database(database_url).dispose()
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(schema_version.select()).all()
    finally:
        engine.dispose()
    assert [v.version for v in versions] == [m.version for m in MIGRATIONS]


def test_a_database_newer_than_this_host_is_refused(database_url: str) -> None:
    open_database(database_url).dispose()
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(schema_version).values(version=LATEST_VERSION + 1, description="future", applied_at=0))
    finally:
        engine.dispose()
    with pytest.raises(StorageError, match=f"version {LATEST_VERSION + 1}, newer than this cloacina-host knows"):
        open_database(database_url)

"""Database URLs: which drivers, which refusals, and passwords never shown."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from cloacina_host import StorageError, UsageError
from cloacina_host._storage import mask, parse_database_url
from cloacina_host._storage._database import storage_error


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg_3(scheme: str) -> None:
    url = parse_database_url(f"{scheme}://u:pw@db.example:5433/cloacina")
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database, url.password) == ("db.example", 5433, "cloacina", "pw")


def test_sqlite_urls_keep_their_file() -> None:
    assert parse_database_url("sqlite:////var/lib/cloacina.db").database == "/var/lib/cloacina.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_without_a_file_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="names no SQLite file; the engine needs a file to be durable"):
        parse_database_url(url)


def test_other_databases_are_refused_with_the_accepted_forms() -> None:
    with pytest.raises(UsageError, match=r"uses 'mysql', which Cloacina does not support\. Use sqlite:///PATH"):
        parse_database_url("mysql://root:pw@localhost/db")


def test_garbage_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot be parsed"):
        parse_database_url("not a url")


def test_mask_hides_the_password_and_shows_the_scheme_users_write() -> None:
    assert mask("postgresql+psycopg://u:hunter2@h/db") == "postgresql://u:***@h/db"
    assert mask("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_driver_errors_become_storage_errors_naming_the_url_without_the_password() -> None:
    url = parse_database_url("postgresql://u:hunter2@h/db")
    driver = OperationalError("SELECT 1", {}, Exception('FATAL: password "hunter2" rejected\nmore detail'))
    err = storage_error(driver, url, "connecting")
    assert isinstance(err, StorageError)
    assert err.exit_status == 2
    assert err.__cause__ is driver
    assert str(err).startswith('Database postgresql://u:***@h/db failed while connecting: FATAL: password "***"')
    assert "hunter2" not in str(err)
    assert "Check that the database is reachable" in str(err)
    refused = storage_error(ProgrammingError("CREATE", {}, Exception("permission denied")), url, "migrating")
    assert "may create and change tables" in str(refused)

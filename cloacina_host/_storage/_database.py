"""Connecting to the database: URLs, engines, SQLite pragmas, and driver errors made ``StorageError``.

SQLite runs in WAL mode with one writer: the write engine opens every transaction with
``BEGIN IMMEDIATE`` (so a writer never has to upgrade a read lock, the classic SQLITE_BUSY trap),
the read engine with a plain ``BEGIN``. ``PRAGMA synchronous=FULL`` by default: a commit is on disk
before the engine moves on. PostgreSQL goes through psycopg 3 with its defaults (``synchronous_commit=on``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, quote_plus

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from .._errors import StorageError, UsageError
from .._settings import default_database_url
from ._migrations import check_readable, migrate

SqliteSynchronous = Literal["FULL", "NORMAL", "EXTRA"]

_POSTGRES_NAMES = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_NAMES = {"sqlite", "sqlite+pysqlite"}


def mask(url: str | URL) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    if parsed.drivername == "postgresql+psycopg":  # show the URL as users write it
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def parse_database_url(url: str) -> URL:
    """Check ``url`` and give it the driver the engine uses (``postgresql://`` → psycopg 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(
            f"Database URL {url!r} cannot be parsed. Use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB."
        ) from exc
    name = parsed.drivername
    if name in _POSTGRES_NAMES:
        return parsed.set(drivername="postgresql+psycopg")
    if name in _SQLITE_NAMES:
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise UsageError(
                f"Database URL {mask(parsed)} names no SQLite file; the engine needs a file to be durable. "
                "Use sqlite:///PATH/TO/cloacina.db (or leave --database-url out for one under the Cloacina home)."
            )
        return parsed.set(drivername="sqlite")
    raise UsageError(
        f"Database URL {mask(parsed)} uses {name!r}, which Cloacina does not support. "
        "Use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB."
    )


def _reason(exc: BaseException, url: URL) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
    reason = " ".join(lines[:3]) or type(orig).__name__
    if url.password:
        reason = hide_password(reason, str(url.password))
    return reason


def hide_password(text: str, password: str) -> str:
    """``text`` with ``password`` replaced by ``***`` where it stands as one: in a URL (``USER:PASSWORD@``,
    as typed or percent-encoded), a ``password=`` setting, or quoted. Other text, however alike, is left as it is."""
    for form in dict.fromkeys([password, quote_plus(password), quote(password, safe="")]):
        escaped = re.escape(form)
        text = re.sub(rf"(?<=:){escaped}(?=@)", "***", text)
        text = re.sub(rf"(\bpassword\s*=\s*['\"]?){escaped}", r"\1***", text, flags=re.IGNORECASE)
        text = re.sub(rf"(?<=\"){escaped}(?=\")|(?<='){escaped}(?=')", "***", text)
    return text


#: a connection refused for good (wrong password, unknown user or database): retrying cannot help
_PERMANENT = re.compile(
    r"password authentication failed|authentication failed|no pg_hba\.conf entry|"
    r"(role|database) \"[^\"]*\" does not exist",
    re.IGNORECASE,
)


def storage_error(exc: BaseException, url: URL, action: str) -> StorageError:
    """One translation of a driver error: name the database (password masked), the failure, a fix."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        fix = (
            "Check that the database is reachable and that the URL, user and password are right "
            "(--database-url or CLOACINA_DATABASE_URL)."
        )
    else:
        fix = "Check that the user may create and change tables there, or point --database-url elsewhere."
    reason = _reason(exc, url)
    err = StorageError(f"Database {mask(url)} failed while {action}: {reason}. {fix}")
    err.permanent = isinstance(exc, OperationalError) and _PERMANENT.search(reason) is not None
    err.__cause__ = exc
    return err


@dataclass
class Database:
    """The engines for one database and what the engine needs to know about it."""

    url: URL
    write_engine: Engine
    read_engine: Engine
    sqlite_synchronous: SqliteSynchronous | None
    #: opened with ``read_only=True``: no DDL, no writes (SQLite ``mode=ro``, PostgreSQL read-only transactions)
    read_only: bool = False
    #: False: a read-only view of a database that is not there yet (or holds no Cloacina schema): it reads empty
    exists: bool = True
    #: this open created the SQLite file (``discard_if_empty`` removes it again when nothing was stored)
    created: bool = False

    @property
    def display_url(self) -> str:
        return mask(self.url)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.drivername == "sqlite" else "postgresql"

    @property
    def durability(self) -> str:
        """How commits are made durable, in words, for benchmark and diagnostic output."""
        if self.sqlite_synchronous is not None:
            return f"SQLite WAL, synchronous={self.sqlite_synchronous}"
        return "PostgreSQL, synchronous_commit=on"

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate driver errors raised inside the block into ``StorageError``."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise storage_error(exc, self.url, action) from exc

    @contextlib.contextmanager
    def write(self, action: str) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the block ends."""
        if self.read_only:
            raise StorageError(
                f"Database {self.display_url} was opened read-only; it cannot be changed while {action}."
            )
        with self.errors(action), self.write_engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self, action: str) -> Iterator[Connection]:
        with self.errors(action), self.read_engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.write_engine.dispose()
        self.read_engine.dispose()

    def discard_if_empty(self) -> bool:
        """Dispose, and remove the SQLite file this open created if nothing but the schema was stored in it.

        For a command that failed on a brand-new home: it leaves no empty database behind.
        """
        path = self.database_path if self.created else None
        try:
            if path is not None:
                from ._migrations import holds_data

                with self.read("checking whether the new database holds anything") as conn:
                    if holds_data(conn):
                        path = None
        except StorageError:
            path = None
        finally:
            self.dispose()
        if path is None:
            return False
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
        return True

    @property
    def database_path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return Path(self.url.database) if self.backend == "sqlite" and self.url.database else None


#: how a write transaction starts on SQLite (the write engine's "begin" listener, and the group-commit writer)
SQLITE_WRITE_BEGIN = "BEGIN IMMEDIATE"


def _sqlite_engine(url: URL, synchronous: SqliteSynchronous, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" listener below opens transactions itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


#: ``open_database`` calls in this process, for tests that count the opens of one command
open_count = 0


def snapshot_reads(engine: Engine) -> Engine:
    """PostgreSQL reads in REPEATABLE READ: every statement of one ``read()`` sees the same snapshot.

    Under the default READ COMMITTED each statement sees what was committed when it began, so an
    execution read as several statements (its row, its attempts, its tasks) could show a task
    ``running`` without the attempt committed in the same transaction. A read-only transaction at
    this level never fails to serialize, and the pool is shared with the write engine.
    """
    return engine.execution_options(isolation_level="REPEATABLE READ")


def _read_only_sqlite(url: URL) -> Engine:
    """An engine that can only read the existing file ``url`` names (``mode=ro``: no DDL, no journal change)."""
    assert url.database is not None
    engine = create_engine(
        url.set(database=f"file:{url.database}?mode=ro", query={"uri": "true"}),
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _empty_stand_in(url: URL) -> Database:
    """What a read-only command reads when the database is not there yet: an empty schema, in memory."""
    from sqlalchemy.pool import StaticPool

    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        migrate(conn)
    return Database(url, engine, engine, None, read_only=True, exists=False)


def _open_read_only(parsed: URL, schema: str | None) -> Database:
    """``parsed`` opened for reading only: nothing is created, migrated or written.

    A SQLite file that does not exist, or a database (schema) without Cloacina's tables, reads as
    empty; one at another schema version is refused (``check_readable``).
    """
    if parsed.drivername == "sqlite":
        assert parsed.database is not None
        path = Path(parsed.database).expanduser()
        parsed = parsed.set(database=str(path))
        if not path.is_file():
            return _empty_stand_in(parsed)
        engine = _read_only_sqlite(parsed)
    else:
        given = parsed.query.get("options")  # e.g. -csearch_path=...: kept, read-only added
        given = " ".join(given) if isinstance(given, tuple) else given
        options = " ".join(filter(None, [given, "-c default_transaction_read_only=on"]))
        engine = create_engine(
            parsed.update_query_dict({"options": options}),
            pool_size=2,
            max_overflow=8,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10},
        )
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        engine = snapshot_reads(engine)
    db = Database(parsed, engine, engine, None, read_only=True)
    try:
        with db.read("reading the schema version") as conn:
            version = check_readable(conn, where=db.display_url)
    except BaseException:
        db.dispose()
        raise
    if version == 0:
        db.dispose()
        return _empty_stand_in(parsed)
    return db


def open_database(
    url: str | None = None,
    *,
    home: str | None = None,
    sqlite_synchronous: SqliteSynchronous = "FULL",
    migrate_schema: bool = True,
    schema: str | None = None,
    create_schema: bool = False,
    pool_size: int = 4,
    read_only: bool = False,
) -> Database:
    """Connect to ``url`` (default: ``$CLOACINA_DATABASE_URL`` or a SQLite file under the home) and migrate it.

    ``schema`` (PostgreSQL): put every table in that schema (a tenant's) through SQLAlchemy's
    ``schema_translate_map``; ``create_schema`` creates it first when missing. ``pool_size``
    (PostgreSQL): connections kept open; up to 8 more are opened under load and closed after use.
    ``read_only``: open it for reading only (see ``_open_read_only``): no file, schema or table is
    created, nothing migrated.
    """
    global open_count  # a process-wide counter, read by tests
    open_count += 1
    parsed = parse_database_url(url or default_database_url(home))
    if read_only:
        return _open_read_only(parsed, schema)
    created = False
    if parsed.drivername == "sqlite":
        assert parsed.database is not None
        path = Path(parsed.database).expanduser()
        created = not path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot create the directory {path.parent} for database {mask(parsed)}: {exc.strerror}. "
                "Choose another --home or --database-url."
            ) from exc
        parsed = parsed.set(database=str(path))
        db = Database(
            parsed,
            _sqlite_engine(parsed, sqlite_synchronous, SQLITE_WRITE_BEGIN),
            _sqlite_engine(parsed, sqlite_synchronous, "BEGIN"),
            sqlite_synchronous,
            created=created,
        )
    else:
        engine = create_engine(
            parsed, pool_size=pool_size, max_overflow=8, pool_pre_ping=True, connect_args={"connect_timeout": 10}
        )
        if schema is not None:
            if create_schema:
                try:
                    with engine.begin() as conn:
                        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                except SQLAlchemyError as exc:
                    engine.dispose()
                    raise storage_error(exc, parsed, f"creating schema {schema!r}") from exc
            engine = engine.execution_options(schema_translate_map={None: schema})
        db = Database(parsed, engine, snapshot_reads(engine), None)
    if migrate_schema:
        try:
            with db.write("migrating the schema") as conn:
                migrate(conn, where=db.display_url)
        except BaseException:
            db.dispose()
            raise
    return db

"""Group commit: one thread owns the write connection and commits many state changes per transaction.

Callers on any event loop ``submit`` a list of writes and get a future. The writer thread takes
everything queued, runs it in one transaction (writes grouped by kind, each kind as one
``executemany`` of its statement compiled once, ``_queries.PreparedWrite``), commits, and only then
resolves the futures of that batch. So a waiter resumes exactly when its change is durable, and under
load one commit (one fsync) serves hundreds of changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .._errors import StorageError
from ._bulk import BulkWrite, bulk_write
from ._database import SQLITE_WRITE_BEGIN, Database, storage_error
from ._queries import WRITES, PreparedWrite, Write, prepare_write

log = logging.getLogger("cloacina_host.storage")

Op = tuple[Write, Mapping[str, Any]]


@dataclass(slots=True)
class _Item:
    ops: Sequence[Op]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


@dataclass
class WriterStats:
    batches: int = 0
    writes: int = 0
    largest_batch: int = 0
    failures: int = 0


@dataclass
class GroupCommitWriter:
    """The single writer of one ``Database``. ``start()`` it, ``submit()`` from coroutines, ``close()`` it.

    Supervised: if the thread dies (a bug, not a failed commit: those fail their batch's futures and
    the writer goes on), every queued and later ``submit`` fails with a ``StorageError`` saying so,
    and ``on_death`` (called in the writer thread) tells the owner.
    """

    database: Database
    max_batch: int = 20_000
    statements: Mapping[Write, Executable] = field(default_factory=lambda: WRITES)
    stats: WriterStats = field(default_factory=WriterStats)
    on_death: Callable[[BaseException], None] | None = None

    def __post_init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: why the thread died; None while it lives
        self.failure: StorageError | None = None
        self._inflight: list[_Item] = []
        self._conn: Connection | None = None
        self._prepared: dict[Write, PreparedWrite] = {}
        self._bulks: dict[Write, BulkWrite | None] = {}

    def dead(self) -> bool:
        """Whether the writer thread died (``failure`` says why)."""
        return self.failure is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervised, name="cloacina-writer", daemon=True)
            self._thread.start()

    def submit(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Queue ``ops``; the future resolves once they are committed (or fails with ``StorageError``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._closed or self.dead():
            future.set_exception(
                self.failure
                or StorageError(f"The writer of {self.database.display_url} is closed; no more state can be stored.")
            )
            return future
        self._queue.put(_Item(ops, future, loop))
        if self.dead():  # it died after the check above: what it left queued fails now
            self._fail_queued()
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the thread (blocks until it has)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    # -- the writer thread ------------------------------------------------------------------------

    def _supervised(self) -> None:
        """``_run``; if it raises, fail every waiter (now and later) and tell ``on_death``."""
        try:
            self._run()
        except BaseException as exc:  # the thread's end: every waiter must hear of it
            error = StorageError(
                f"The writer thread of {self.database.display_url} died ({type(exc).__name__}: {exc}); "
                "no more state can be stored by this host."
            )
            error.__cause__ = exc
            self.failure = error
            log.error("%s", error, exc_info=exc)
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    conn.invalidate()
                    conn.close()
            self._fail_queued()
            if self.on_death is not None:
                self.on_death(error)

    def _fail_queued(self) -> None:
        failed: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        inflight, self._inflight = self._inflight, []
        for item in inflight:  # a batch the thread died in; _resolve skips the ones it resolved
            failed.setdefault(item.loop, []).append(item.future)
        while True:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                break
            if queued is not None:
                failed.setdefault(queued.loop, []).append(queued.future)
        for loop, futures in failed.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, self.failure)
            except RuntimeError:  # its loop is closed: nobody waits
                log.debug("event loop closed before its writes were refused")

    def _run(self) -> None:
        conn: Connection | None = None
        stop = False
        while not stop:
            first = self._queue.get()
            items: list[_Item] = []
            if first is None:
                stop = True
            else:
                items.append(first)
            count = len(first.ops) if first is not None else 0
            while count < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                items.append(item)
                count += len(item.ops)
            if items:
                conn = self._flush(conn, items, count)
        if conn is not None:
            conn.close()

    def _flush(self, conn: Connection | None, items: list[_Item], count: int) -> Connection | None:
        self._inflight, self._conn = items, conn  # if the thread dies in here, _supervised ends these
        grouped: dict[Write, list[Mapping[str, Any]]] = {}
        for item in items:
            for kind, params in item.ops:
                grouped.setdefault(kind, []).append(params)
        error: BaseException | None = None
        try:
            if conn is None:
                conn = self.database.write_engine.connect()
            self._apply(conn, grouped)
        except SQLAlchemyError as exc:
            error = storage_error(exc, self.database.url, "storing execution state")
        except Exception as exc:  # noqa: BLE001  # whatever broke, every waiter must hear of it
            error = StorageError(f"Storing execution state in {self.database.display_url} failed: {exc!r}")
            error.__cause__ = exc
        if error is not None:
            self.stats.failures += 1
            log.error("%s", error)
            if conn is not None:
                try:
                    conn.invalidate()
                    conn.close()
                except SQLAlchemyError:
                    log.debug("closing the broken write connection failed", exc_info=True)
                conn = None
        else:
            self.stats.batches += 1
            self.stats.writes += count
            self.stats.largest_batch = max(self.stats.largest_batch, count)
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for item in items:
            by_loop.setdefault(item.loop, []).append(item.future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, error)
            except RuntimeError:  # the loop closed while we committed: nobody is waiting any more
                log.debug("event loop closed before its writes were acknowledged")
        self._inflight, self._conn = [], conn
        return conn

    def _apply(self, conn: Connection, grouped: Mapping[Write, list[Mapping[str, Any]]]) -> None:
        """Run a batch's writes as one transaction on ``conn``'s driver connection, and commit it.

        The statements are compiled already (``PreparedWrite``), and the transaction is the driver's
        own, so none of SQLAlchemy's per-statement or per-transaction work (an execution context,
        events, a result, the ``begin`` listener) is done per commit: on SQLite the writer sends the
        write engine's ``BEGIN IMMEDIATE`` itself (``SQLITE_WRITE_BEGIN``); psycopg opens its transaction with the first
        statement. On PostgreSQL the statements and the commit go in one psycopg pipeline: one round
        trip to the server per batch instead of one for ``BEGIN``, one per kind and one for ``COMMIT``.
        A kind with several rows goes as one statement over arrays there (``_bulk``) unless two of them
        change the same row. A driver error is raised as SQLAlchemy's (the caller then discards the connection).
        """
        raw: Any = conn.connection.dbapi_connection
        dialect = conn.dialect
        postgres = self.database.backend == "postgresql"
        sql = SQLITE_WRITE_BEGIN
        try:
            cursor = raw.cursor()
            try:
                if not postgres:
                    cursor.execute(sql)
                with raw.pipeline() if postgres else contextlib.nullcontext():
                    for kind in sorted(grouped):
                        rows = grouped[kind]
                        bulk = self._bulk(conn, kind) if postgres and len(rows) > 1 else None
                        if bulk is not None and bulk.unique_keys(rows):
                            sql = bulk.sql
                            cursor.execute(sql, bulk.parameters(rows))
                            continue
                        prepared = self._prepare(conn, kind)
                        sql = prepared.sql
                        cursor.executemany(sql, prepared.parameters(rows))
                    sql = "COMMIT"
                    raw.commit()  # on PostgreSQL in the pipeline: sent with the statements
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            with contextlib.suppress(dialect.loaded_dbapi.Error):
                raw.rollback()
            raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc

    def _prepare(self, conn: Connection, kind: Write) -> PreparedWrite:
        prepared = self._prepared.get(kind)
        if prepared is None:
            schemas = conn.get_execution_options().get("schema_translate_map")
            prepared = self._prepared[kind] = prepare_write(self.statements[kind], conn.dialect, schemas)
        return prepared

    def _bulk(self, conn: Connection, kind: Write) -> BulkWrite | None:
        """PostgreSQL: ``kind`` for many rows in one statement over arrays (``_bulk``), if it has that form."""
        if kind not in self._bulks:
            schemas = conn.get_execution_options().get("schema_translate_map")
            self._bulks[kind] = bulk_write(self.statements[kind], conn.dialect, schemas)
        return self._bulks[kind]


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

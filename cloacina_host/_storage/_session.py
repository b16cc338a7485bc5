"""A connection kept for the transactions of one loop of a distributed worker (claims and ends)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ._database import Database

T = TypeVar("T")


class Session:
    """One connection kept for the transactions of one loop (claims and ends), instead of one per call.

    Use it from one thread at a time. A transaction that fails gives its connection up: the next
    one checks out a fresh (pinged) connection from the pool.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None

    def transaction(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the kept connection; driver errors are ``StorageError``."""
        with self.db.errors(action):
            if self._conn is None:
                self._conn = self.db.write_engine.connect()
            try:
                with self._conn.begin():
                    return fn(self._conn, *args)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

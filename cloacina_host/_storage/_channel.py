"""The wake-up channel of distributed executions (PostgreSQL ``LISTEN``/``NOTIFY``): workers hear there that
tasks became ready."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from sqlalchemy import Connection, text

from .._errors import StorageError
from ._database import Database

#: the ``LISTEN``/``NOTIFY`` channel on which workers hear that tasks became ready (payload: the tenant)
CHANNEL = "cloacina_tasks"


def notify(conn: Connection, tenant: str) -> None:
    """Wake the workers (delivered when the transaction commits)."""
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": tenant})


async def notifications(db: Database, on_listening: Callable[[], None]) -> AsyncIterator[str]:
    """The payloads (tenants) notified on ``CHANNEL``, heard on a connection of its own.

    ``on_listening`` is called once ``LISTEN`` holds. A lost or refused connection ends the
    iteration with ``StorageError`` (the driver's reason on one line); the caller reconnects.
    """
    import psycopg

    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=10)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            on_listening()
            async for note in conn.notifies():
                yield note.payload
    except psycopg.Error as exc:
        raise StorageError(" ".join(str(exc).split())[:300]) from exc

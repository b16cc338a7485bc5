"""Helpers the recovery tests share: what a killed host left committed, and the tasks' run counters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def _start_committed(database_url: str, task_id: str) -> bool:
    """Whether the start of ``task_id``'s attempt is committed (the engine does not wait for it to run the task)."""
    from sqlalchemy import select

    from cloacina_host._storage import open_database
    from cloacina_host._storage._schema import task_attempts

    db = open_database(database_url, migrate_schema=False)
    try:
        with db.read("checking an attempt's start") as conn:
            query = select(task_attempts.c.attempt).where(
                task_attempts.c.task_id == task_id, task_attempts.c.status == "running"
            )
            return conn.execute(query).first() is not None
    finally:
        db.dispose()


def _counter(directory: Path, name: str) -> int:
    path = directory / name
    return int(path.read_text()) if path.exists() else 0


@pytest.fixture
def start_committed() -> Callable[[str, str], bool]:
    """``start_committed(database_url, task_id)``: whether that task's attempt start is committed."""
    return _start_committed


@pytest.fixture
def counter() -> Callable[[Path, str], int]:
    """``counter(directory, name)``: how many times the recovery host's task ``name`` ran."""
    return _counter

"""Fixtures of the registry tests: the sample archives (built for real), tenants on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloacina_host import Registry


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def registry(database_url: str, home: Path) -> Iterator[Registry]:
    reg = Registry(database_url, home=home, load_timeout_s=20)
    yield reg
    reg.close()


@pytest.fixture
def tenant_name(database_url: str) -> Iterator[str]:
    """A fresh tenant name; on PostgreSQL its schema is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    if database_url.startswith("postgresql"):
        import psycopg

        base = database_url.split("?")[0]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

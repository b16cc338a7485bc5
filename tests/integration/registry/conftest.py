"""Fixtures of the registry tests: the sample archives (built for real), tenants on both backends."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cloacina_host import Registry


def load_archives_module() -> ModuleType:
    name = "cloacina_tests_reg_archives"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).resolve().parents[2] / "packages" / "reg-archives" / "archives.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reg_archives(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("reg-archives")
    return load_archives_module().build_archives(where)  # type: ignore[no-any-return]


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

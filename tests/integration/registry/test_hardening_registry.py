"""Issue 10 in the registry: refusals leave the home and the database as they were, tenants are made
whole or not at all, another tenant's namespace is never run, and a register killed during install
leaves nothing that the next command does not remove."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloacina_host import DefaultRunner, Registry
from cloacina_host._errors import HostError, StorageError, WorkflowNotFoundError
from cloacina_host._registry import TenantError, create_tenant, list_tenants, open_tenant_database, tenant_location
from cloacina_host._storage._schema import metadata

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def _tree(home: Path) -> dict[str, str]:
    """Every file and directory under ``home`` (database files aside: their rows are compared instead)."""
    found: dict[str, str] = {}
    if not home.exists():
        return found
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home).as_posix()
        if path.name.endswith((".db", ".db-wal", ".db-shm", ".db-journal")):
            continue
        found[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _rows(database_url: str, home: Path, tenant: str = "public") -> dict[str, list[tuple[Any, ...]]]:
    db = open_tenant_database(database_url, home=str(home), tenant=tenant)
    try:
        with db.read("snapshot") as conn:
            return {
                name: sorted((tuple(r) for r in conn.execute(select(table))), key=repr)
                for name, table in metadata.tables.items()
            }
    finally:
        db.dispose()


def snapshot(database_url: str, home: Path) -> tuple[dict[str, str], dict[str, list[tuple[Any, ...]]]]:
    return _tree(home), _rows(database_url, home)


def _rewrite_manifest(source: Path, out: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of archive ``source`` whose manifest ``change`` edited (the wheels untouched)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            zout.writestr(info.filename, data)
    return out


def _wrong_fingerprint(manifest: dict[str, Any]) -> None:
    manifest["workflows"][0]["fingerprint"] = "sha256:" + "0" * 64


REFUSALS = ["load-timeout", "import-raises", "manifest-mismatch", "truncated-archive", "not-a-zip", "shadowing"]


@pytest.mark.parametrize("kind", REFUSALS)
@pytest.mark.parametrize("before", ["fresh", "with-installs"])
def test_a_refused_register_leaves_home_and_database_as_they_were(
    kind: str,
    before: str,
    database_url: str,
    home: Path,
    reg_archives: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Registry(database_url, home=home, load_timeout_s=20)
    try:
        if before == "with-installs":
            registry.register(reg_archives["demo"])
        registry.list_packages()  # the database exists (and is migrated) before the snapshot
        source: Path | bytes
        if kind == "load-timeout":  # only the refused register has the short limit (a loaded machine is slow)
            registry.close()
            registry = Registry(database_url, home=home, load_timeout_s=1)
            monkeypatch.setenv("REG_HANG_SECONDS", "60")
            source = reg_archives["hang"]
        elif kind == "import-raises":
            monkeypatch.setenv("REG_SWAP_FAIL_AT_IMPORT", "1")
            source = reg_archives["swap-2"]
        elif kind == "manifest-mismatch":
            source = _rewrite_manifest(reg_archives["swap-1"], tmp_path / "mismatch.cloacina", _wrong_fingerprint)
        elif kind == "truncated-archive":
            source = reg_archives["swap-1"].read_bytes()[:-200]
        elif kind == "not-a-zip":
            source = b"PK\x03\x04 but not really a zip" * 10
        else:
            source = reg_archives["shadow"]
        state = snapshot(database_url, home)
        with pytest.raises(HostError) as info:
            registry.register(source)
        assert info.value.exit_status == 1, info.value
        assert "Traceback" not in str(info.value)
        assert snapshot(database_url, home) == state
    finally:
        registry.close()


def test_a_refused_activate_removes_the_install_it_made(
    database_url: str, home: Path, reg_archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(database_url, home=home, load_timeout_s=20)
    try:
        registry.register(reg_archives["swap-1"])
        v2 = registry.register(reg_archives["swap-2"], activate=False)
        for child in sorted(v2.install_dir.rglob("*"), reverse=True):  # this machine lacks v2's directory
            child.rmdir() if child.is_dir() else child.unlink()
        v2.install_dir.rmdir()
        state = snapshot(database_url, home)
        monkeypatch.setenv("REG_SWAP_FAIL_AT_IMPORT", "1")
        with pytest.raises(HostError, match="failed to load in a fresh worker"):
            registry.activate("reg-swap", "2.0.0")
        assert snapshot(database_url, home) == state
        assert not v2.install_dir.exists()
    finally:
        registry.close()


# -- tenants ----------------------------------------------------------------------------------------


@pytest.fixture
def pg_schema(postgres_schema_url: str) -> Iterator[tuple[str, str]]:
    """``(url, name)``: a name for a tenant whose schema the test may make first; dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield postgres_schema_url, name
    with psycopg.connect(postgres_schema_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _pg(url: str, *statements: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        rows: list[tuple[Any, ...]] = []
        for statement in statements:
            cur = conn.execute(statement)
            if cur.description is not None:
                rows = list(cur.fetchall())
        return rows


def _objects(url: str, schema: str) -> list[tuple[Any, ...]]:
    return _pg(
        url,
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{schema}' ORDER BY 1",
    )


@pytest.mark.postgres
@pytest.mark.parametrize("foreign", ["orders", "executions"])
def test_a_schema_of_someone_else_is_refused_and_left_untouched(
    pg_schema: tuple[str, str], tmp_path: Path, foreign: str
) -> None:
    url, name = pg_schema
    _pg(
        url,
        f'CREATE SCHEMA "{name}"',
        f'CREATE TABLE "{name}".{foreign} (id int)',
        f'INSERT INTO "{name}".{foreign} VALUES (7)',
    )
    before = _objects(url, name)
    with pytest.raises(TenantError) as info:
        create_tenant(url, home=str(tmp_path), name=name)
    message = str(info.value)
    assert f"schema {name!r} exists already" in message
    assert foreign in message
    assert "left untouched" in message
    assert "Choose another tenant name, or drop or rename schema" in message
    assert _objects(url, name) == before
    assert _pg(url, f'SELECT id FROM "{name}".{foreign}') == [(7,)]
    assert name not in [t.name for t in list_tenants(url, home=str(tmp_path))]


@pytest.mark.postgres
def test_a_tenant_whose_migration_fails_is_not_made_at_all(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, name = pg_schema
    # Cloacina-shaped (it has schema_version) but a sequence takes the name the first migration needs
    _pg(
        url,
        f'CREATE SCHEMA "{name}"',
        f'CREATE TABLE "{name}".schema_version (version integer primary key, description text, applied_at float8)',
        f'CREATE SEQUENCE "{name}".executions',
    )
    before = _objects(url, name)
    with pytest.raises(StorageError, match="nothing was created"):
        create_tenant(url, home=str(tmp_path), name=name)
    assert _objects(url, name) == before
    assert name not in [t.name for t in list_tenants(url, home=str(tmp_path))]


@pytest.mark.postgres
def test_an_empty_existing_schema_becomes_the_tenant(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    url, name = pg_schema
    _pg(url, f'CREATE SCHEMA "{name}"')
    create_tenant(url, home=str(tmp_path), name=name)
    assert name in [t.name for t in list_tenants(url, home=str(tmp_path))]
    assert ("executions", "r") in _objects(url, name)
    with pytest.raises(TenantError, match="exists already"):
        create_tenant(url, home=str(tmp_path), name=name)


def test_a_sqlite_tenant_file_that_is_not_recorded_is_refused_and_left(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'cloacina.db'}"
    list_tenants(url)  # the main database exists
    path = Path(tenant_location(url, None, "acme").url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"someone's file")
    with pytest.raises(TenantError, match=r"exists already but no tenant 'acme' is recorded; it was left untouched"):
        create_tenant(url, name="acme")
    assert path.read_bytes() == b"someone's file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["acme.db"]  # no staging file left
    assert [t.name for t in list_tenants(url)] == ["public"]
    path.unlink()
    create_tenant(url, name="acme")
    assert sorted(p.name for p in path.parent.iterdir()) == ["acme.db"]
    assert [t.name for t in list_tenants(url)] == ["acme", "public"]


def test_a_newline_in_a_tenant_name_creates_nothing(database_url: str, home: Path, tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="is not allowed"):
        create_tenant(database_url, home=str(home), name="acme\n")
    assert [t.name for t in list_tenants(database_url, home=str(home))] == ["public"]
    assert [p for p in tmp_path.rglob("*") if "acme" in p.name] == []


async def test_a_namespace_of_another_tenant_is_refused_not_run_as_ours(
    database_url: str, home: Path, tenant_name: str, reg_archives: dict[str, Path]
) -> None:
    create_tenant(database_url, home=str(home), name=tenant_name)
    with Registry(database_url, home=home, tenant=tenant_name) as theirs:
        theirs.register(reg_archives["swap-1"])
    with Registry(database_url, home=home) as ours:
        ours.register(reg_archives["swap-2"])  # public has reg_swap::swap_flow too, at 2.0.0
    async with DefaultRunner(database_url, home=home, recover=False) as runner:  # tenant public
        with pytest.raises(WorkflowNotFoundError, match=rf"belongs to tenant '{tenant_name}', not to tenant 'public'"):
            await runner.execute(f"{tenant_name}::reg_swap::swap_flow")
        result = await runner.execute("public::reg_swap::swap_flow")
        assert result.context.get("version") == "2.0.0"


# -- a register killed while installing ------------------------------------------------------------


@pytest.fixture(scope="session")
def bulky_archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reg-bulky's archive: a 160 MiB incompressible wheel, so installing it takes long enough to kill."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from conftest import load_helper
    finally:
        sys.path.remove(str(ROOT / "tests"))
    module = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("reg-bulky")
    return module.archive(where, "reg-bulky", module.PACKAGES / "reg-bulky")  # type: ignore[no-any-return]


def _ctl(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloacina_host", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_register_killed_while_installing_leaves_staging_the_next_command_removes(
    database_url: str, home: Path, bulky_archive: Path
) -> None:
    env = {**os.environ, "CLOACINA_HOME": str(home), "CLOACINA_DATABASE_URL": database_url}
    assert _ctl("packages", "list", env=env).returncode == 0
    root = home / "packages"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloacina_host", "register", str(bulky_archive)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        staging: list[Path] = []
        while not staging:
            assert proc.poll() is None, f"register ended (status {proc.returncode}) before its install was seen"
            assert time.monotonic() < deadline, "no .installing-* directory appeared within 120 s"
            staging = sorted(root.glob(".installing-*")) if root.is_dir() else []
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p for p in root.iterdir() if p.name.startswith(".installing-")] == staging  # left behind
    listed = _ctl("packages", "list", "--json", env=env)  # the next command opens the registry: cleans
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["packages"] == []
    assert sorted(p.name for p in root.iterdir()) == []
    again = _ctl("register", str(bulky_archive), env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []

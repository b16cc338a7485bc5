"""Each command opens its database once; commands that only read open it read-only: no DDL, no new file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, text

from cloacina_host._storage import _database
from cloacina_host._storage._migrations import LATEST_VERSION, MIGRATIONS, migrate
from cloacina_host._storage._schema import schema_version
from cloacina_host.cli import main

#: every command that only reads, with the exit status it gives on a database that holds nothing
READ_ONLY = [
    (["executions", "list"], 0),
    (["executions", "show", "0123abcd"], 3),
    (["packages", "list"], 0),
    (["packages", "show", "nothing-here"], 3),
    (["workflows", "list"], 0),
    (["tenants", "list"], 0),
    (["trust", "list"], 0),
    (["tenants", "policy", "public"], 0),
]

_CHANGES = re.compile(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|TRUNCATE)\b", re.IGNORECASE)


@pytest.fixture
def ctl(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Any:
    """``ctl(*args)`` → ``(status, stdout, stderr, opens)``: ``opens`` is how many databases the command opened."""
    capfd.readouterr()

    def run(*args: str) -> tuple[int, str, str, int]:
        before = _database.open_count
        status = main(list(args))
        out, err = capfd.readouterr()
        return status, out, err, _database.open_count - before

    return run


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _engine(database_url: str) -> Engine:
    return create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.mark.parametrize(("args", "expected"), READ_ONLY, ids=[" ".join(a) for a, _ in READ_ONLY])
def test_a_read_only_command_on_a_fresh_home_creates_no_database(
    args: list[str], expected: int, ctl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    status, out, err, opens = ctl(*args)
    assert status == expected, out + err
    assert "Traceback" not in err
    assert not (home / "cloacina.db").exists()
    assert opens == 1


def test_what_read_only_commands_say_on_a_fresh_home(ctl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    status, out, _err, _ = ctl("executions", "list")
    assert (status, out.strip()) == (0, f"No executions in sqlite:///{tmp_path / 'home' / 'cloacina.db'} match.")
    status, out, _err, _ = ctl("packages", "list", "--json")
    assert (status, json.loads(out)["packages"]) == (0, [])
    status, out, _err, _ = ctl("tenants", "list", "--json")
    assert (status, [t["name"] for t in json.loads(out)["tenants"]]) == (0, ["public"])
    status, _out, err, _ = ctl("executions", "show", "0123abcd")
    assert status == 3
    assert err.startswith("error: No execution '0123abcd' in tenant 'public'")


@pytest.mark.usefixtures("cli_flows")
def test_read_only_commands_send_no_statement_that_changes_the_database(
    database_url: str, ctl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    status, out, err, opens = ctl("run", "cli_demo", "--context", '{"name": "x"}', "--json")
    assert status == 0, out + err
    assert opens == 1  # the catalog's registry, the runner and its writer share one database
    execution_id = json.loads(out)["execution_id"]
    sqlite_file = Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite") else None
    stamp = (sqlite_file.stat().st_mtime_ns, sqlite_file.stat().st_size) if sqlite_file else None
    statements.clear()
    for args in [*(a for a, _ in READ_ONLY), ["executions", "show", execution_id[:8]]]:
        status, out, err, opens = ctl(*args)
        assert status in (0, 3), out + err
        assert opens == 1, args
    assert statements  # they did read
    changes = [s for s in statements if _CHANGES.match(s)]
    assert changes == []
    if sqlite_file is not None:
        assert (sqlite_file.stat().st_mtime_ns, sqlite_file.stat().st_size) == stamp


@pytest.mark.parametrize("version", [1, LATEST_VERSION + 1], ids=["older", "newer"])
def test_a_read_only_command_refuses_another_schema_version_and_leaves_it(
    version: int, database_url: str, ctl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            migrate(conn, target=min(version, LATEST_VERSION))
            if version > LATEST_VERSION:
                conn.execute(insert(schema_version).values(version=version, description="future", applied_at=0))
        status, _out, err, _ = ctl("executions", "list")
        with engine.connect() as conn:
            versions = sorted(conn.execute(text("SELECT version FROM schema_version")).scalars())
    finally:
        engine.dispose()
    assert status == 2
    assert "Traceback" not in err
    if version < LATEST_VERSION:
        assert f"is at version 1, older than this cloacina-host's ({LATEST_VERSION})" in err
        assert "read-only commands never change it" in err
        assert "`cloacina-ctl serve`" in err
        assert versions == [1]  # not migrated
    else:
        assert f"is at version {version}, newer than this cloacina-host knows" in err
        assert versions == [*(m.version for m in MIGRATIONS), version]  # every migration, in order (gaps allowed)


def test_a_writing_command_upgrades_an_older_schema(
    database_url: str, ctl: Any, cli_flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            migrate(conn, target=1)
    finally:
        engine.dispose()
    assert ctl("executions", "list")[0] == 2
    assert ctl("run", "cli_demo", "--context", '{"name": "x"}')[0] == 0
    status, out, err, _ = ctl("executions", "list", "--json")
    assert status == 0, err
    assert len(json.loads(out)["executions"]) == 1


@pytest.mark.slow
def test_a_refused_register_on_a_fresh_home_leaves_no_database(
    ctl: Any, reg_archives: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    monkeypatch.setenv("REG_HANG_SECONDS", "60")
    status, _out, err, opens = ctl("register", str(reg_archives["hang"]), "--load-timeout", "1")
    assert status == 1, err
    assert "did not finish loading its entry points within 1 s" in err
    assert opens == 1
    assert not (home / "cloacina.db").exists()
    assert not list(home.glob("cloacina.db*"))
    status, _out, err, _ = ctl("packages", "activate", "reg-hang==1.0.0")
    assert status == 3, err
    assert not list(home.glob("cloacina.db*"))
    # a registration that succeeds keeps its database, with one open
    status, _out, err, opens = ctl("register", str(reg_archives["swap-1"]))
    assert (status, opens) == (0, 1), err
    assert (home / "cloacina.db").is_file()

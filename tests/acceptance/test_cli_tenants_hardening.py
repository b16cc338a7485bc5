"""``cloacina-ctl`` with hostile names and another tenant's namespaces: one message, the right status, nothing made."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloacina_host.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def ctl(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Any:
    """``ctl(*args)`` → ``(status, stdout, stderr)`` of ``cloacina-ctl`` on this test's database and home."""
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    capfd.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capfd.readouterr()
        return status, out, err

    return run


@pytest.fixture
def other_tenant(database_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    if database_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _tenants(ctl: Any) -> list[str]:
    status, out, err = ctl("tenants", "list", "--json")
    assert status == 0, err
    return [t["name"] for t in json.loads(out)["tenants"]]


@pytest.mark.parametrize(
    "name", ["acme\n", "acme\x00", "../acme", "acme/x", "\u0430cme", "a" * 5000, "acme; DROP SCHEMA public"]
)
def test_a_hostile_tenant_name_exits_1_and_creates_nothing(ctl: Any, tmp_path: Path, name: str) -> None:
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    status, out, err = ctl("tenants", "create", name)
    assert status == 1
    assert out == ""
    assert "is not allowed: use 1 to 63 lower-case letters" in err
    assert "Traceback" not in err
    assert len(err) < 600
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before
    assert _tenants(ctl) == ["public"]


def test_a_namespace_of_another_tenant_is_refused_by_run_and_executions(
    ctl: Any, reg_archives: dict[str, Path], other_tenant: str
) -> None:
    assert ctl("tenants", "create", other_tenant)[0] == 0
    assert ctl("register", str(reg_archives["swap-2"]), "--tenant", other_tenant)[0] == 0
    assert ctl("register", str(reg_archives["swap-1"]))[0] == 0  # public has its own reg_swap::swap_flow
    theirs = f"{other_tenant}::reg_swap::swap_flow"
    status, out, err = ctl("run", theirs)
    assert status == 3
    assert f"belongs to tenant '{other_tenant}', not to tenant 'public'" in err
    assert "Traceback" not in err
    status, out, err = ctl("executions", "list", "--workflow", theirs, "--json")
    assert status == 3
    assert f"belongs to tenant '{other_tenant}'" in err
    status, out, _err = ctl("executions", "list", "--json")
    assert json.loads(out)["executions"] == []  # tenant public's workflow did not run in its place
    status, out, err = ctl("run", "public::reg_swap::swap_flow", "--json")
    assert status == 0, err
    assert json.loads(out[out.index("{") :])["context"]["version"] == "1.0.0"
    status, out, err = ctl("run", theirs, "--json", "--tenant", other_tenant)
    assert status == 0, err
    assert json.loads(out[out.index("{") :])["context"]["version"] == "2.0.0"


@pytest.mark.parametrize("requirement", ["reg-swap==1.0.0\n", "reg-swap\n==1.0.0", "reg/swap==1.0.0", "reg-swap==1==2"])
def test_a_hostile_name_version_exits_1(ctl: Any, reg_archives: dict[str, Path], requirement: str) -> None:
    assert ctl("register", str(reg_archives["swap-1"]))[0] == 0
    for command in ("activate", "remove"):
        status, _out, err = ctl("packages", command, requirement)
        assert status == 1
        assert "is not a" in err
        assert "Traceback" not in err
    status, out, _err = ctl("packages", "list", "--json")
    assert json.loads(out)["packages"][0]["versions"] == ["1.0.0"]


def test_text_from_an_archive_is_printed_escaped(ctl: Any, reg_archives: dict[str, Path], tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.cloacina"
    with zipfile.ZipFile(reg_archives["swap-1"]) as zin, zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["workflows"][0]["description"] = "evil \x1b]0;pwned\x07 \x1b[2J [red]x[/] \x9b1m \u202eabc"
                data = json.dumps(manifest).encode()
            zout.writestr(info.filename, data)
    status, _out, err = ctl("register", str(hostile))
    assert status == 0, err
    status, out, err = ctl("workflows", "list")
    assert status == 0, err
    line = next(x for x in out.splitlines() if "reg_swap::swap_flow" in x)
    assert "evil \\x1b]0;pwned\\x07 \\x1b[2J [red]x[/] \\x9b1m \\u202eabc" in line
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out

"""Registering archives on both backends: stored, installed, loaded, refused cleanly when bad."""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import ArchiveError, DefaultRunner, Registry, RegistryError
from cloacina_host._registry._installer import COMPLETE_MARKER

pytestmark = pytest.mark.slow


def state(registry: Registry, home: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """What a user could observe of the registry: its packages and the install directories on disk."""
    packages = [p.to_json(detail=True) for p in registry.list_packages()]
    root = home / "packages"
    dirs = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    return packages, dirs


def test_register_stores_installs_and_activates(registry: Registry, home: Path, reg_archives: dict[str, Path]) -> None:
    steps: list[str] = []
    result = registry.register(reg_archives["swap-1"], progress=steps.append)
    assert (result.name, result.version, result.status, result.active) == ("reg-swap", "1.0.0", "registered", True)
    assert [w.key for w in result.workflows] == ["reg_swap::swap_flow"]
    assert result.install_dir == home / "packages" / result.sha256
    assert (result.install_dir / COMPLETE_MARKER).is_file()
    assert (result.install_dir / "reg_swap" / "__init__.py").is_file()
    assert any("fresh worker" in s for s in steps)
    [info] = registry.list_packages()
    assert (info.name, info.active_version, [v.version for v in info.versions]) == ("reg-swap", "1.0.0", ["1.0.0"])
    shown = registry.show("REG_swap")  # any spelling of the name
    assert shown.versions[0].sha256 == result.sha256
    assert shown.versions[0].workflows[0].tasks == ("work", "finish")


def test_the_same_bytes_again_is_a_no_op(registry: Registry, home: Path, reg_archives: dict[str, Path]) -> None:
    registry.register(reg_archives["swap-1"])
    before = state(registry, home)
    again = registry.register(reg_archives["swap-1"].read_bytes())
    assert again.status == "unchanged"
    assert again.active
    assert state(registry, home) == before


def test_different_bytes_under_the_same_version_need_force(
    registry: Registry, home: Path, reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    registry.register(reg_archives["swap-1"])
    before = state(registry, home)
    altered = tmp_path / "altered.cloacina"
    shutil.copy(reg_archives["swap-1"], altered)
    with zipfile.ZipFile(altered, "a") as zf:
        zf.comment = b"rebuilt"  # other bytes, same package and version
    with pytest.raises(RegistryError, match=r"reg-swap 1\.0\.0 is registered already .* with different bytes") as info:
        registry.register(altered)
    assert "--force" in str(info.value)
    assert state(registry, home) == before
    replaced = registry.register(altered, force=True)
    assert replaced.status == "replaced"
    assert registry.show("reg-swap").versions[0].sha256 == replaced.sha256


def test_a_package_shadowing_the_standard_library_is_refused(
    registry: Registry, home: Path, reg_archives: dict[str, Path]
) -> None:
    before = state(registry, home)
    with pytest.raises(ArchiveError, match=r"installs top-level module\(s\) json, which shadow the standard library"):
        registry.register(reg_archives["shadow"])
    assert state(registry, home) == before


def test_an_import_that_hangs_hits_the_time_limit_and_leaves_nothing(
    database_url: str, home: Path, reg_archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REG_HANG_SECONDS", "60")
    registry = Registry(database_url, home=home, load_timeout_s=1)
    try:
        before = state(registry, home)
        with pytest.raises(RegistryError, match=r"did not finish loading its entry points within 1 s"):
            registry.register(reg_archives["hang"])
        assert state(registry, home) == before
    finally:
        registry.close()


def test_hostile_bytes_are_refused(registry: Registry, home: Path) -> None:
    with pytest.raises(ArchiveError, match="not a zip file"):
        registry.register(b"definitely not an archive")
    assert state(registry, home) == ([], [])


def test_a_second_machine_reinstalls_from_the_database(
    database_url: str, tmp_path: Path, reg_archives: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    first = Registry(database_url, home=tmp_path / "machine-1")
    result = first.register(reg_archives["swap-1"])
    first.close()
    other_home = tmp_path / "machine-2"  # shares the database, not the files
    with DefaultRunner(database_url, home=other_home, catalog=Registry(database_url, home=other_home).catalog()) as r:
        outcome = r.execute_sync("swap_flow")
    assert outcome.ok, outcome.error
    assert outcome.context.get("version") == "1.0.0"
    assert (other_home / "packages" / result.sha256 / COMPLETE_MARKER).is_file()
    assert "reg-swap 1.0.0 working" in capfd.readouterr().out  # the worker's print reached the host's output


def test_a_deleted_install_directory_is_recreated(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path]
) -> None:
    result = registry.register(reg_archives["swap-1"])
    shutil.rmtree(result.install_dir)
    assert registry.ensure_installed("reg-swap", "1.0.0") == result.install_dir
    assert (result.install_dir / COMPLETE_MARKER).is_file()


def test_removing_a_version_in_use_is_refused_with_the_count(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["swap-1"])

    async def detached() -> None:  # stored for a host to pick up: they use 1.0.0 until they finish
        async with DefaultRunner(database_url, home=home, catalog=registry.catalog(), recover=False) as r:
            await r.submit("swap_flow", detach=True)
            await r.submit("swap_flow", detach=True)

    asyncio.run(detached())
    before = state(registry, home)
    with pytest.raises(RegistryError, match=r"reg-swap 1\.0\.0 is still used by 2 unfinished execution\(s\)"):
        registry.remove("reg-swap", "1.0.0")
    assert state(registry, home) == before
    removed = registry.remove("reg-swap", "1.0.0", force=True)
    assert removed.was_active
    assert removed.running == 2
    assert registry.list_packages() == []

"""Versions and hot swap: the active version serves new executions, running ones keep theirs, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, Registry, RegistryError
from cloacina_host._storage import _queries as q
from cloacina_host._storage import open_database

pytestmark = pytest.mark.slow


async def wait_for(path: Path) -> None:
    while not path.exists():
        await asyncio.sleep(0.02)


async def test_a_running_execution_finishes_on_its_version_while_new_ones_use_the_next(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    registry.register(reg_archives["swap-1"])
    async with DefaultRunner(database_url, home=home) as runner:  # the default catalog asks the registry
        gate, started = tmp_path / "gate", tmp_path / "started"
        first = await runner.submit("swap_flow", {"gate": str(gate), "started": str(started)})
        await wait_for(started)  # v1's task is running in v1's worker
        swap = await asyncio.to_thread(registry.register, reg_archives["swap-2"])  # another "process", no restart
        assert (swap.status, swap.active, swap.previous_active) == ("registered", True, "1.0.0")
        second = await runner.execute("swap_flow")
        gate.touch()
        first_result = await runner.wait(first)
        one = await runner.get_execution(first)
        two = await runner.get_execution(second.execution_id)
    assert first_result.ok, first_result.error
    assert second.ok, second.error
    assert (first_result.context.get("version"), first_result.context.get("finished_by")) == ("1.0.0", "1.0.0")
    assert (second.context.get("version"), second.context.get("finished_by")) == ("2.0.0", "2.0.0")
    assert first_result.context.get("pid") != second.context.get("pid")  # one worker per version
    assert (one.package_version, two.package_version) == ("1.0.0", "2.0.0")
    manifests = {v.version: v.workflows[0].fingerprint for v in registry.show("reg-swap").versions}
    assert one.workflow_fingerprint == manifests["1.0.0"]
    assert two.workflow_fingerprint == manifests["2.0.0"]


async def test_activate_rolls_back_and_an_older_version_does_not_take_over(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["swap-2"])
    older = registry.register(reg_archives["swap-1"])
    assert (older.active, older.previous_active) == (False, "2.0.0")
    assert registry.show("reg-swap").active_version == "2.0.0"
    back = registry.activate("reg-swap", "1.0.0")
    assert (back.version, back.previous) == ("1.0.0", "2.0.0")
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
        result = await runner.execute("reg_swap::swap_flow")
        assert result.context.get("version") == "1.0.0"
        await asyncio.to_thread(registry.activate, "reg-swap", "2.0.0")
        assert (await runner.execute("reg_swap::swap_flow")).context.get("version") == "2.0.0"
        registry.deactivate("reg-swap")
        with pytest.raises(Exception, match="No workflow named 'reg_swap::swap_flow'"):
            await runner.submit("reg_swap::swap_flow")


def test_a_version_that_fails_to_load_leaves_the_old_one_active(
    registry: Registry, home: Path, reg_archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(reg_archives["swap-1"])
    monkeypatch.setenv("REG_SWAP_FAIL_AT_IMPORT", "1")  # what the fresh worker sees: v2 cannot import
    with pytest.raises(RegistryError, match=r"reg-swap 2\.0\.0 failed to load in a fresh worker: .*refuses to import"):
        registry.register(reg_archives["swap-2"])
    info = registry.show("reg-swap")
    assert (info.active_version, [v.version for v in info.versions]) == ("1.0.0", ["1.0.0"])
    monkeypatch.delenv("REG_SWAP_FAIL_AT_IMPORT")
    registry.register(reg_archives["swap-2"], activate=False)
    monkeypatch.setenv("REG_SWAP_FAIL_AT_IMPORT", "1")
    with pytest.raises(RegistryError, match="failed to load in a fresh worker"):
        registry.activate("reg-swap", "2.0.0")
    assert registry.show("reg-swap").active_version == "1.0.0"


@pytest.mark.parametrize("meanwhile", ["swap", "deactivate"])
async def test_recovery_resumes_an_execution_on_the_version_it_recorded(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path], meanwhile: str
) -> None:
    registry.register(reg_archives["swap-1"])
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog(), recover=False) as submitter:
        execution_id = await submitter.submit("swap_flow", detach=True)  # stored, left for a host
    if meanwhile == "swap":
        registry.register(reg_archives["swap-2"])  # 2.0.0 is active by the time a host resumes it
    else:
        registry.deactivate("reg-swap")  # no active version at all: the recorded one still runs
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as host:
        assert execution_id in host.active_execution_ids
        result = await host.wait(execution_id)
    assert result.ok, result.error
    assert result.context.get("version") == "1.0.0"
    db = open_database(database_url)
    try:
        with db.read("checking") as conn:
            record = q.get_execution(conn, execution_id)
    finally:
        db.dispose()
    assert record is not None
    assert record.package_version == "1.0.0"

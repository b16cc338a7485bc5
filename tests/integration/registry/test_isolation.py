"""Registered packages run in their own worker processes: crashes stay there, dependencies stay apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, Registry

pytestmark = pytest.mark.slow


async def test_a_task_that_kills_its_worker_fails_that_attempt_only(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    registry.register(reg_archives["crash"])
    registry.register(reg_archives["swap-1"])
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
        gate = tmp_path / "gate"
        other = await runner.submit("swap_flow", {"gate": str(gate)})  # another execution, in another worker
        crash = await runner.execute("crash_flow", {"marker_dir": str(tmp_path)})
        gate.touch()
        other_result = await runner.wait(other)
    assert crash.ok, crash.error
    assert crash.context.get("exits") == crash.context.get("segfaults") == "survived"
    for tid in ("exits", "segfaults"):
        outcome = crash.tasks[tid]
        assert outcome.attempts == 2
        assert "WorkerCrashed" in outcome.errors[0]
    assert "exited with status 17" in crash.tasks["exits"].errors[0]
    assert other_result.ok, other_result.error


async def test_conflicting_bundled_dependencies_run_side_by_side(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path]
) -> None:
    a = registry.register(reg_archives["dep-a"])
    b = registry.register(reg_archives["dep-b"])
    assert a.install_dir != b.install_dir
    assert (a.install_dir / "reg_depmod").is_dir()
    assert (b.install_dir / "reg_depmod").is_dir()
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
        first, second = await asyncio.gather(runner.execute("dep_a"), runner.execute("dep_b"))
    assert first.context.get("depmod_a") == "1.0"
    assert second.context.get("depmod_b") == "2.0"

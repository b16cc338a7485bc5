"""Schedules live with the active version: swapped in with it, stopped with it; old-format archives still run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import DefaultRunner, Registry, read_archive
from cloacina_host._engine._schedules import set_paused
from cloacina_host._storage import _schedules as qs

pytestmark = pytest.mark.slow


def _live(registry: Registry) -> dict[str, tuple[Any, ...]]:
    with registry.database.read("reading") as conn:
        rows = qs.list_schedules(conn)
    return {r.name: (r.cron, r.timezone, r.context, r.catchup, r.package_version, r.paused) for r in rows}


def test_a_new_version_swaps_its_schedules_in_with_it_and_deactivating_stops_them(
    registry: Registry, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["sched-1"])
    assert _live(registry) == {
        "every_minute": ("* * * * *", "UTC", {"from": "every_minute"}, "skip", "1.0.0", False),
        "nightly": ("0 3 * * *", "Europe/Berlin", {}, "skip", "1.0.0", False),
    }
    set_paused(registry.database, tenant="public", workflow="sched_flow", name="every_minute", paused=True, now=0.0)
    registry.register(reg_archives["sched-2"])  # newer: active now, with its schedules and none of the old ones
    assert _live(registry) == {
        "every_minute": ("* * * * *", "UTC", {"from": "every_minute v2"}, "skip", "2.0.0", True),  # still paused
        "hourly": ("0 * * * *", "UTC", {}, "all", "2.0.0", False),
    }
    registry.activate("sched-flow", "1.0.0")  # a roll-back brings the old set back
    assert set(_live(registry)) == {"every_minute", "nightly"}
    assert _live(registry)["every_minute"][4:] == ("1.0.0", True)
    registry.deactivate("sched-flow")
    assert _live(registry) == {}
    registry.activate("sched-flow", "2.0.0")
    assert set(_live(registry)) == {"every_minute", "hourly"}
    assert _live(registry)["every_minute"][5] is True  # its pause came back with it
    registry.remove("sched-flow", "2.0.0")
    assert _live(registry) == {}


def _as_format_1(archive: Path, out: Path) -> Path:
    """The archive as the host wrote it before format 2: manifest.json without any ``schedules``."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["format_version"] = 1
                for wf in manifest["workflows"]:
                    assert wf.pop("schedules") == []
                data = (json.dumps(manifest, indent=2) + "\n").encode()
            dst.writestr(info, data)
    return out


async def test_an_archive_of_format_1_still_registers_and_runs(
    registry: Registry, database_url: str, home: Path, reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    old = _as_format_1(reg_archives["swap-1"], tmp_path / "reg-swap-1-format1.cloacina")
    assert read_archive(old).manifest.format_version == 1
    registered = registry.register(old)
    assert (registered.status, registered.active) == ("registered", True)
    assert _live(registry) == {}
    async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
        result = await runner.execute("reg_swap::swap_flow")
    assert result.ok, result.error
    assert result.context.get("finished_by") == "1.0.0"


def _paused(registry: Registry) -> dict[str, bool]:
    return {name: row[5] for name, row in _live(registry).items()}


def test_a_pause_outlives_deactivation_and_new_versions_until_resumed(
    registry: Registry, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["sched-1"])
    set_paused(registry.database, tenant="public", workflow="sched_flow", name="every_minute", paused=True, now=0.0)
    registry.deactivate("sched-flow")
    registry.activate("sched-flow", "1.0.0")
    assert _paused(registry) == {"every_minute": True, "nightly": False}  # it comes back paused
    registry.deactivate("sched-flow")
    registry.register(reg_archives["sched-2"])  # registered while none is active: active, paused by name
    assert _paused(registry) == {"every_minute": True, "hourly": False}
    set_paused(registry.database, tenant="public", workflow="sched_flow", name="every_minute", paused=False, now=1.0)
    registry.deactivate("sched-flow")
    registry.activate("sched-flow", "2.0.0")
    assert _paused(registry) == {"every_minute": False, "hourly": False}  # resumed stays resumed
    set_paused(registry.database, tenant="public", workflow="sched_flow", name=None, paused=True, now=2.0)
    registry.remove("sched-flow", "2.0.0")
    registry.activate("sched-flow", "1.0.0")  # a version is left: the pauses are still the user's
    assert _paused(registry) == {"every_minute": True, "nightly": False}
    registry.remove("sched-flow", "1.0.0")  # the last version: its pauses are forgotten
    registry.register(reg_archives["sched-1"])
    assert _paused(registry) == {"every_minute": False, "nightly": False}

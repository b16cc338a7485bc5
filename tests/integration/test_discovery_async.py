"""Plugin discovery never blocks the event loop: a plugin whose import waits on the loop still loads.

The plugin's module waits (bounded) for an event that only a callback on the event loop sets: if
discovery imported it on the loop, the callback could not run and the wait would time out.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner

GATE = "cloacina_test_runner_gate"

GATED_PLUGIN = f"""
import sys

from cloacina_workflow import task, workflow

gate = sys.modules[{GATE!r}]
gate.opened = gate.event.wait(5)  # set by a callback on the event loop


@workflow(name="gated_in_runner")
class gated_in_runner:
    @task(id="only")
    def only(context):
        context.insert("ran", True)
"""


def _install_gated_plugin(site: Path) -> None:
    site.mkdir()
    (site / "cloacina_test_runner_gated.py").write_text(GATED_PLUGIN, encoding="utf-8")
    info = site / "cloacina_test_runner_gated-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-test-runner-gated\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[cloacina.workflows]\ngated_in_runner = cloacina_test_runner_gated:gated_in_runner\n"
    )


async def test_a_default_runner_discovers_plugins_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = types.ModuleType(GATE)
    gate.event = threading.Event()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATE, gate)
    _install_gated_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    runner = DefaultRunner(f"sqlite:///{tmp_path / 'cloacina.db'}", home=tmp_path / "home")
    starting = asyncio.ensure_future(runner.start())
    asyncio.get_running_loop().call_soon(gate.event.set)  # runs only while discovery leaves the loop free
    try:
        await asyncio.wait_for(starting, timeout=60)
        assert gate.opened is True
        assert "cloacina_test_runner_gated::gated_in_runner" in runner.catalog.entries
    finally:
        await runner.aclose()

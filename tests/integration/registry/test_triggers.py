"""Triggers live with the active version: swapped in with it, stopped when it is deactivated or removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloacina_host import Registry
from cloacina_host._engine._triggers import set_trigger_paused, trigger_rows

pytestmark = pytest.mark.slow


def _live(registry: Registry) -> dict[str, tuple[object, ...]]:
    return {
        r.key: (r.poll_interval_s, r.timeout_s, r.workflows, r.package_version, r.paused)
        for r in trigger_rows(registry.database)
    }


def test_triggers_go_live_with_the_active_version_and_stop_with_it(
    registry: Registry, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["trig"])
    assert _live(registry) == {
        "trig_flow::broken": (1.0, 1.0, ("public::trig_flow::collect",), "1.0.0", False),
        "trig_flow::on_file": (0.3, 1.0, ("public::trig_flow::collect", "public::trig_flow::notify"), "1.0.0", False),
        "trig_flow::stuck": (1.0, 0.5, ("public::trig_flow::collect",), "1.0.0", False),
    }
    set_trigger_paused(registry.database, tenant="public", name="on_file", paused=True, now=0.0)
    registry.deactivate("trig-flow")
    assert _live(registry) == {}
    registry.activate("trig-flow", "1.0.0")
    assert set(_live(registry)) == {"trig_flow::broken", "trig_flow::on_file", "trig_flow::stuck"}
    assert _live(registry)["trig_flow::on_file"][4] is True  # its pause came back with it
    registry.remove("trig-flow", "1.0.0")
    assert _live(registry) == {}


def _paused(registry: Registry) -> dict[str, object]:
    return {key: row[4] for key, row in _live(registry).items()}


def test_a_paused_trigger_stays_paused_across_deactivation_until_resumed(
    registry: Registry, reg_archives: dict[str, Path]
) -> None:
    registry.register(reg_archives["trig"])
    set_trigger_paused(registry.database, tenant="public", name="on_file", paused=True, now=0.0)
    registry.deactivate("trig-flow")
    registry.activate("trig-flow", "1.0.0")
    assert _paused(registry) == {"trig_flow::broken": False, "trig_flow::on_file": True, "trig_flow::stuck": False}
    registry.register(reg_archives["trig"])  # registered again (the same version): still paused
    assert _paused(registry)["trig_flow::on_file"] is True
    set_trigger_paused(registry.database, tenant="public", name="on_file", paused=False, now=1.0)
    registry.deactivate("trig-flow")
    registry.activate("trig-flow", "1.0.0")
    assert _paused(registry)["trig_flow::on_file"] is False  # resumed stays resumed
    set_trigger_paused(registry.database, tenant="public", name="stuck", paused=True, now=2.0)
    registry.remove("trig-flow", "1.0.0")  # its last version: its pauses are forgotten
    registry.register(reg_archives["trig"])
    assert _paused(registry)["trig_flow::stuck"] is False

"""The event emitter calls each observer on its own: one that raises never stops the others."""

from __future__ import annotations

import logging

import pytest

from cloacina_host import make_plugin_manager
from cloacina_host._engine._events import EventEmitter
from cloacina_workflow import hookimpl


class Good:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def cloacina_task_started(self, task_id: str, attempt: int) -> None:
        self.calls.append((task_id, attempt))


class Bad:
    @hookimpl
    def cloacina_task_started(self) -> None:
        raise RuntimeError("broken observer")


@pytest.mark.parametrize("bad_first", [True, False])
def test_a_raising_observer_is_logged_and_the_others_still_hear(
    bad_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    pm = make_plugin_manager()
    good = Good()
    plugins = [(Bad(), "bad"), (good, "good")]
    for plugin, name in plugins if bad_first else reversed(plugins):
        pm.register(plugin, name=name)
    with caplog.at_level(logging.ERROR):
        EventEmitter(pm).emit("cloacina_task_started", execution_id="e", workflow="w", task_id="t", attempt=2)
    assert good.calls == [("t", 2)]
    assert "observer 'bad' raised in cloacina_task_started" in caplog.text


def test_no_observers_is_fine() -> None:
    EventEmitter(make_plugin_manager()).emit(
        "cloacina_execution_finished", execution_id="e", workflow="w", status="completed", context={}
    )

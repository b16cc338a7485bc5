"""Events: observer plugins hear every step through the pluggy hooks, and cannot break an execution."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, hookimpl, task, workflow


@workflow(name="observed", package="events")
class observed:
    @task
    def fetch(ctx: Context) -> None:
        ctx.set("fetched", True)

    @task(dependencies=["fetch"], retry_attempts=1, retry_delay_ms=0)
    def parse(ctx: Context) -> None:
        raise ValueError("unparseable")

    @task(dependencies=["parse"])
    def store(ctx: Context) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def cloacina_execution_started(self, execution_id: str, workflow: str, context: dict[str, Any]) -> None:
        self.events.append(("execution_started", workflow, context))

    @hookimpl
    def cloacina_task_started(self, task_id: str, attempt: int) -> None:
        self.events.append(("task_started", task_id, attempt))

    @hookimpl
    def cloacina_task_retrying(self, task_id: str, attempt: int, error: str, delay_s: float) -> None:
        self.events.append(("task_retrying", task_id, attempt, error, delay_s))

    @hookimpl
    def cloacina_task_finished(self, task_id: str, status: str, attempts: int, error: str | None) -> None:
        self.events.append(("task_finished", task_id, status, attempts, error))

    @hookimpl
    def cloacina_execution_finished(self, execution_id: str, status: str, context: dict[str, Any]) -> None:
        self.events.append(("execution_finished", status, context))


class Broken:
    @hookimpl
    def cloacina_task_started(self, task_id: str) -> None:
        raise RuntimeError(f"observer bug on {task_id}")

    @hookimpl
    def cloacina_execution_finished(self) -> None:
        raise RuntimeError("observer bug at the end")


async def test_an_observer_hears_the_whole_sequence(database_url: str) -> None:
    recorder = Recorder()
    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
        runner.plugin_manager.register(recorder)
        result = await runner.execute(observed, {"k": 1})
    assert result.status == "failed"
    assert recorder.events == [
        ("execution_started", "public::events::observed", {"k": 1}),
        ("task_started", "fetch", 1),
        ("task_finished", "fetch", "completed", 1, None),
        ("task_started", "parse", 1),
        ("task_retrying", "parse", 1, "ValueError: unparseable", 0.0),
        ("task_started", "parse", 2),
        ("task_finished", "parse", "failed", 2, "ValueError: unparseable"),
        ("task_finished", "store", "skipped", 0, "skipped: upstream task 'parse' failed"),
        ("execution_finished", "failed", {"k": 1, "fetched": True}),
    ]


async def test_an_observer_that_raises_is_logged_and_changes_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.ERROR, logger="cloacina_host.events"):
        async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
            runner.plugin_manager.register(recorder, name="recorder")
            runner.plugin_manager.register(Broken(), name="broken-observer")
            result = await runner.execute(observed)
    assert result.status == "failed"  # the workflow's own failure, nothing more
    assert result.tasks["fetch"].status == "completed"
    assert len(recorder.events) == 9
    messages = [r.getMessage() for r in caplog.records]
    assert sum("'broken-observer' raised in cloacina_task_started" in m for m in messages) == 3
    assert sum("'broken-observer' raised in cloacina_execution_finished" in m for m in messages) == 1
    assert any("observer bug on fetch" in (r.exc_text or "") for r in caplog.records)

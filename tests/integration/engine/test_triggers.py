"""The trigger poller on real databases, its clock driven by the test.

Triggers are written straight into the tenant's table (as ``serve`` does for installed plugins);
the workflows are embedded, so no package is built. A firing starts each subscribed workflow once,
a raising or hanging trigger is reported and polled again at its next interval while the others keep
firing, and two pollers sharing a database poll (and fire) once per interval.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from cloacina_host._discovery import WorkflowCatalog
from cloacina_host._engine._triggers import (
    TriggerPoller,
    fire_trigger,
    installed_trigger_specs,
    set_trigger_paused,
    trigger_rows,
)
from cloacina_host._errors import NotFoundError
from cloacina_host._storage import Database, open_database
from cloacina_host._storage import _queries as q
from cloacina_host._storage import _triggers as qt
from cloacina_workflow import Context, Fire, InputError, PollInfo, Skip, task, trigger, workflow

T0 = 1_800_000_000.0
polled: dict[str, int] = {"ready": 0, "broken": 0, "stuck": 0}
released = threading.Event()
mounted = threading.Event()  # set: the inbox `broken` polls is back


@trigger(name="ready", poll_interval_s=10)
async def ready(info: PollInfo) -> Fire | None:
    polled["ready"] += 1
    return Fire({"n": polled["ready"]})


@trigger(name="broken", poll_interval_s=10)
def broken(info: PollInfo) -> Skip:
    polled["broken"] += 1
    if not mounted.is_set():
        raise OSError("the inbox is not mounted")
    return Skip()


@trigger(name="stuck", poll_interval_s=10, timeout_s=0.2)
async def stuck(info: PollInfo) -> Skip:
    polled["stuck"] += 1
    await asyncio.Event().wait()  # hangs until cancelled by its timeout
    return Skip()


@workflow(name="first", package="trig_pkg", triggers=["ready", broken, stuck])
class first:
    @task(id="note")
    def note(ctx: Context) -> None:
        ctx.set("noted", ctx.get("n"))


@workflow(name="second", package="trig_pkg", triggers=[ready])
class second:
    @task(id="note")
    def note(ctx: Context) -> None:
        ctx.set("noted", ctx.get("n"))


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _catalog() -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    catalog.add_workflow(first, package="trig_pkg")
    catalog.add_workflow(second, package="trig_pkg")
    return catalog


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    for k in polled:
        polled[k] = 0
    mounted.clear()
    database = open_database(database_url)
    catalog = _catalog()
    specs = installed_trigger_specs(list(catalog.entries.values()), "public")
    with database.write("declaring") as conn:
        qt.replace_triggers(conn, source="test", package_version=None, specs=specs, now=T0)
    yield database
    database.dispose()


def _started(db: Database) -> list[tuple[str, str | None]]:
    with db.read("reading") as conn:
        records = q.list_executions(conn, tenant="public", limit=1000)
    return sorted((r.namespace, r.started_by) for r in records)


def _row(db: Database, name: str) -> qt.TriggerRow:
    return next(r for r in trigger_rows(db) if r.name == name)


async def _pass(poller: TriggerPoller) -> dict[str, object]:
    started = await poller.tick()
    return {o.trigger: o for o in await asyncio.gather(*started)}


def test_installed_specs_list_each_trigger_once_with_its_workflows() -> None:
    specs = {s.name: s for s in installed_trigger_specs(list(_catalog().entries.values()), "public")}
    assert set(specs) == {"ready", "broken", "stuck"}
    assert specs["ready"].workflows == ("public::trig_pkg::first", "public::trig_pkg::second")
    assert specs["stuck"].timeout_s == 0.2


def test_a_firing_starts_each_subscribed_workflow_once_and_failures_are_reported(db: Database) -> None:
    clock = Clock(T0)
    poller = TriggerPoller(db, _catalog(), tenant="public", owner="host-a", now=clock)
    outcomes = asyncio.run(_pass(poller))
    assert _started(db) == [("public::trig_pkg::first", "trigger ready"), ("public::trig_pkg::second", "trigger ready")]
    assert len(outcomes) == 3
    assert "OSError: the inbox is not mounted" in str(_row(db, "broken").last_error)
    assert "timeout of 0.2 s" in str(_row(db, "stuck").last_error)
    assert _row(db, "ready").last_error is None
    assert len(_row(db, "ready").last_executions) == 2

    # within the interval nothing is polled again
    clock.at = T0 + 5
    assert asyncio.run(_pass(poller)) == {}
    assert polled == {"ready": 1, "broken": 1, "stuck": 1}

    # at the next interval every trigger is polled again: the failing ones did not stop the others
    clock.at = T0 + 10
    asyncio.run(_pass(poller))
    assert polled == {"ready": 2, "broken": 2, "stuck": 2}
    assert len(_started(db)) == 4


def test_a_poll_that_succeeds_again_clears_the_stored_failure(db: Database) -> None:
    clock = Clock(T0)
    poller = TriggerPoller(db, _catalog(), tenant="public", owner="host-a", now=clock)
    asyncio.run(_pass(poller))
    failed = _row(db, "broken")
    assert "OSError: the inbox is not mounted" in str(failed.last_error)
    assert failed.last_error_at == T0
    mounted.set()
    clock.at = T0 + 10
    asyncio.run(_pass(poller))
    recovered = _row(db, "broken")
    assert (recovered.last_error, recovered.last_error_at) == (None, None)  # `triggers list` shows no stale error
    assert "timeout of 0.2 s" in str(_row(db, "stuck").last_error)  # still failing: still shown


def test_two_pollers_on_one_database_poll_once_per_interval(db: Database) -> None:
    clock = Clock(T0)
    a = TriggerPoller(db, _catalog(), tenant="public", owner="host-a", now=clock)
    b = TriggerPoller(db, _catalog(), tenant="public", owner="host-b", now=clock)

    async def both() -> None:
        started = await asyncio.gather(a.tick(), b.tick())
        await asyncio.gather(*started[0], *started[1])

    for step in range(3):
        clock.at = T0 + 10 * step
        asyncio.run(both())
    assert polled["ready"] == 3
    assert len(_started(db)) == 6  # three firings, two workflows each


def test_a_paused_trigger_is_not_polled_until_resumed(db: Database) -> None:
    clock = Clock(T0)
    set_trigger_paused(db, tenant="public", name="trig_pkg::ready", paused=True, now=T0)
    poller = TriggerPoller(db, _catalog(), tenant="public", owner="host-a", now=clock)
    asyncio.run(_pass(poller))
    assert polled["ready"] == 0
    assert _started(db) == []
    set_trigger_paused(db, tenant="public", name="ready", paused=False, now=T0)
    asyncio.run(_pass(poller))
    assert polled["ready"] == 1
    assert len(_started(db)) == 2


def test_firing_by_hand_starts_each_workflow_with_the_context(db: Database) -> None:
    row, ids = fire_trigger(db, _catalog(), tenant="public", name="ready", context={"n": 7}, now=T0)
    assert row.key == "trig_pkg::ready"
    assert len(ids) == 2
    with db.read("reading") as conn:
        contexts = [q.get_execution(conn, i) for i in ids]
    assert all(c is not None and c.started_by == "trigger ready" for c in contexts)
    with pytest.raises(NotFoundError, match="No live trigger 'nope'"):
        fire_trigger(db, _catalog(), tenant="public", name="nope", context={}, now=T0)


class Numbered(BaseModel):
    n: int


@trigger(name="misfit", poll_interval_s=10)
def misfit(info: PollInfo) -> Fire:
    return Fire({"n": "not a number"})


@workflow(name="typed", package="trig_typed", triggers=[misfit], input=Numbered)
class typed:
    @task(id="note")
    def note(ctx: Context) -> None:
        ctx.set("noted", ctx.get("n"))


def test_a_firing_that_does_not_fit_a_typed_input_stores_nothing_and_is_reported(database_url: str) -> None:
    catalog = WorkflowCatalog()
    catalog.add_workflow(typed, package="trig_typed")
    database = open_database(database_url)
    try:
        specs = installed_trigger_specs(list(catalog.entries.values()), "public")
        with database.write("declaring") as conn:
            qt.replace_triggers(conn, source="test", package_version=None, specs=specs, now=T0)
        with pytest.raises(InputError, match="input of typed: 'n'"):
            fire_trigger(database, catalog, tenant="public", name="misfit", context={"n": "x"}, now=T0)
        assert _started(database) == []
        poller = TriggerPoller(database, catalog, tenant="public", owner="host-a", now=Clock(T0))
        (outcome,) = asyncio.run(_pass(poller)).values()
        assert "input of typed: 'n'" in str(outcome.error)  # type: ignore[attr-defined]
        assert "input of typed: 'n'" in str(_row(database, "misfit").last_error)
        assert _started(database) == []
        fire_trigger(database, catalog, tenant="public", name="misfit", context={"n": 3}, now=T0)
        assert _started(database) == [("public::trig_typed::typed", "trigger misfit")]
    finally:
        database.dispose()


SLOW: dict[str, Any] = {"in_flight": 0, "most": 0, "polls": 0, "gate": None}


@trigger(name="slow", poll_interval_s=10, timeout_s=60)
async def slow(info: PollInfo) -> Fire:
    SLOW["polls"] += 1
    SLOW["in_flight"] += 1
    SLOW["most"] = max(SLOW["most"], SLOW["in_flight"])
    try:
        await SLOW["gate"].wait()
    finally:
        SLOW["in_flight"] -= 1
    return Fire({"n": SLOW["polls"]})


@workflow(name="slow_flow", package="slow_pkg", triggers=[slow])
class slow_flow:
    @task(id="note")
    def note(ctx: Context) -> None:
        ctx.set("noted", ctx.get("n"))


def test_a_poll_slower_than_its_interval_is_not_overlapped_by_another_hosts(database_url: str) -> None:
    """The next interval falls due while one host's poll still runs: no other host polls until it ends (two
    polls at once could both see one event and fire twice), or until its claim lapses (its host died)."""
    SLOW.update(in_flight=0, most=0, polls=0)
    database = open_database(database_url)
    catalog = WorkflowCatalog()
    catalog.add_workflow(slow_flow, package="slow_pkg")
    specs = installed_trigger_specs(list(catalog.entries.values()), "public")
    with database.write("declaring") as conn:
        qt.replace_triggers(conn, source="test-slow", package_version=None, specs=specs, now=T0)
    clock = Clock(T0)
    a = TriggerPoller(database, catalog, tenant="public", owner="host-a", now=clock)
    b = TriggerPoller(database, catalog, tenant="public", owner="host-b", now=clock)
    c = TriggerPoller(database, catalog, tenant="public", owner="host-c", now=clock)

    async def in_flight(count: int) -> None:
        deadline = time.monotonic() + 30
        while SLOW["in_flight"] != count:
            assert time.monotonic() < deadline, "the poll never started"
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        SLOW["gate"] = asyncio.Event()
        first = await a.tick()
        assert len(first) == 1
        await in_flight(1)
        clock.at = T0 + 10  # the next interval is due while host-a's poll runs
        assert await b.tick() == []
        SLOW["gate"].set()
        await asyncio.gather(*first)
        second = await b.tick()  # host-a's poll ended: host-b polls this interval
        assert len(second) == 1
        await asyncio.gather(*second)

        SLOW["gate"] = asyncio.Event()
        clock.at = T0 + 20
        third = await c.tick()
        assert len(third) == 1
        await in_flight(1)
        await c.aclose()  # host-c dies mid-poll: its claim is never ended
        clock.at = T0 + 30
        assert await a.tick() == []  # its claim holds until its timeout (60 s) lapses
        clock.at = T0 + 20 + 60
        SLOW["gate"].set()
        fourth = await a.tick()
        assert len(fourth) == 1
        await asyncio.gather(*fourth)

    try:
        asyncio.run(scenario())
        assert (SLOW["most"], SLOW["polls"]) == (1, 4)
        assert len(_started(database)) == 3  # the dead host's poll never fired; the other three did, once each
    finally:
        database.dispose()

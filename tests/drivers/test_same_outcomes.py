"""One table of scenarios, run by every driver: the in-memory runner, the durable engine, the distributed worker.

All three ask one state machine (``cloacina_workflow._machine``), so each scenario ends the same way in
each: the execution's status and error, every task's status, attempt count, error text and number of
failed attempts kept, and the final context. Each driver is checked against the one expected table.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_workflow import Context, TaskError, Workflow, task, workflow
from cloacina_workflow.testing import arun_workflow

RUNS: Counter[tuple[str, str]] = Counter()
#: plain tasks that time out wait on this; set once a driver's runs have ended, so their threads return
RELEASE = threading.Event()


def _attempt(ctx: Context, name: str) -> int:
    """Count a run of task ``name`` in this execution (``ctx["run"]`` is unique per execution); its number."""
    RUNS[(str(ctx.get("run")), name)] += 1
    return RUNS[(str(ctx.get("run")), name)]


FAST = {"retry_delay_ms": 1, "retry_max_delay_ms": 4, "retry_jitter": False}


@workflow(name="success", package="same")
class success:
    @task
    async def extract(ctx: Context) -> None:
        ctx.insert("numbers", [1, 2, 3])

    @task(dependencies=["extract"])
    def transform(ctx: Context) -> None:
        ctx.insert("squares", [n * n for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    async def load(ctx: Context) -> None:
        ctx.insert("total", sum(ctx.get("squares")))


@workflow(name="backoffs", package="same")
class backoffs:
    @task(retry_attempts=3, retry_backoff="fixed", **FAST)  # type: ignore[arg-type]
    def fixed(ctx: Context) -> None:
        if _attempt(ctx, "fixed") < 3:
            raise TaskError.ExecutionFailed(f"try {RUNS[(str(ctx.get('run')), 'fixed')]}")
        ctx.set("fixed", "ok")

    @task(retry_attempts=2, retry_backoff="linear", **FAST)  # type: ignore[arg-type]
    async def linear(ctx: Context) -> None:
        _attempt(ctx, "linear")
        raise ValueError("never works")

    @task(retry_attempts=2, retry_backoff="exponential", retry_delay_ms=1, retry_max_delay_ms=2, retry_jitter=True)
    async def exponential(ctx: Context) -> None:
        if _attempt(ctx, "exponential") < 2:
            raise ConnectionError("refused")
        ctx.set("exponential", "ok")

    @task(dependencies=["fixed", "exponential"])
    def after_both(ctx: Context) -> None:
        ctx.set("after_both", [ctx.get("fixed"), ctx.get("exponential")])

    @task(dependencies=["linear"])
    def after_linear(ctx: Context) -> None:
        ctx.set("after_linear", True)


@workflow(name="conditions", package="same")
class conditions:
    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    def validation(ctx: Context) -> None:
        _attempt(ctx, "validation")
        raise TaskError.ValidationFailed("bad input")

    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    async def connection(ctx: Context) -> None:
        if _attempt(ctx, "connection") < 2:
            raise ConnectionError("reset")
        ctx.set("connection", "ok")

    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    def missing_key(ctx: Context) -> None:
        _attempt(ctx, "missing_key")
        raise KeyError("missing")

    @task(retry_attempts=3, retry_condition="never", **FAST)  # type: ignore[arg-type]
    async def never(ctx: Context) -> None:
        _attempt(ctx, "never")
        raise TaskError.ExecutionFailed("once only")


@workflow(name="timeouts", package="same")
class timeouts:
    @task(timeout_s=0.05, retry_attempts=1, **FAST)  # type: ignore[arg-type]
    async def slow_async(ctx: Context) -> None:
        await asyncio.sleep(30)

    @task(timeout_s=0.05)
    def slow_plain(ctx: Context) -> None:
        RELEASE.wait(30)

    @task(timeout_s=10)
    async def own_timeout_error(ctx: Context) -> None:  # raising TimeoutError is not running out of time
        raise TimeoutError("the remote API timed out")

    @task(timeout_s=10)
    async def quick(ctx: Context) -> None:
        ctx.set("quick", True)


@workflow(name="skips", package="same")
class skips:
    @task
    def a(ctx: Context) -> None:
        ctx.set("a", 1)

    @task(dependencies=["a"])
    def b(ctx: Context) -> None:
        raise TaskError.ValidationFailed("b refuses")

    @task(dependencies=["b"])
    def c(ctx: Context) -> None: ...

    @task(dependencies=["c"])
    def d(ctx: Context) -> None: ...

    @task(dependencies=["a", "c"])
    def f(ctx: Context) -> None: ...

    @task(dependencies=["a"])
    async def e(ctx: Context) -> None:
        ctx.set("e", ctx.get("a") + 1)


@workflow(name="diamond", package="same")
class diamond:
    @task
    def root(ctx: Context) -> None:
        ctx.set("k", "root")

    @task(dependencies=["root"])
    async def left(ctx: Context) -> None:
        ctx.set("k", "left")
        ctx.set("left", True)

    @task(dependencies=["root"])
    def right(ctx: Context) -> None:
        ctx.set("k", "right")
        ctx.set("right", True)

    @task(dependencies=["left", "right"])
    async def join(ctx: Context) -> None:  # right is declared later: it wins
        ctx.set("join_saw", ctx.get("k"))

    @task(dependencies=["right", "left"])
    def join_reversed(ctx: Context) -> None:  # here left is declared later
        ctx.set("join_reversed_saw", ctx.get("k"))


@workflow(name="foreign", package="same")
class foreign:
    @task
    async def value_error(ctx: Context) -> None:
        raise ValueError("not a number: 'x'")

    @task
    def key_error(ctx: Context) -> None:
        ctx.set("lookup", {}["absent"])

    @task
    async def escapes(ctx: Context) -> None:
        raise SystemExit(3)

    @task(dependencies=["value_error"])
    def downstream(ctx: Context) -> None: ...


TIMEOUT = (
    "TaskError.Timeout: task '{}' ran longer than its timeout of 0.05s and was abandoned; "
    "raise timeout_s (or the runner's default_timeout_s) if it needs more time"
)


def _ok(attempts: int = 1) -> tuple[str, int, str | None, int]:
    return ("completed", attempts, None, attempts - 1)


def _failed(attempts: int, error: str) -> tuple[str, int, str | None, int]:
    return ("failed", attempts, error, attempts)


def _skipped(by: str) -> tuple[str, int, str | None, int]:
    return ("skipped", 0, f"skipped: upstream task {by!r} failed", 0)


@dataclass(frozen=True)
class Scenario:
    workflow: Workflow
    status: str
    error: str | None
    tasks: Mapping[str, tuple[str, int, str | None, int]]  # status, attempts, error, failed attempts kept
    context: Mapping[str, Any]

    def expected(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "tasks": dict(self.tasks), "context": dict(self.context)}


ESCAPED = (
    "TaskEscapedError: task 'escapes' raised SystemExit(3), a BaseException that is not an Exception; the "
    "attempt failed. Tasks must raise Exception subclasses (e.g. TaskError.ExecutionFailed) to fail."
)

SCENARIOS: dict[str, Scenario] = {
    "success": Scenario(
        success,
        "completed",
        None,
        {"extract": _ok(), "transform": _ok(), "load": _ok()},
        {"numbers": [1, 2, 3], "squares": [1, 4, 9], "total": 14},
    ),
    "backoffs": Scenario(
        backoffs,
        "failed",
        "task 'linear' failed: ValueError: never works",
        {
            "fixed": _ok(3),
            "linear": _failed(3, "ValueError: never works"),
            "exponential": _ok(2),
            "after_both": _ok(),
            "after_linear": _skipped("linear"),
        },
        {"fixed": "ok", "exponential": "ok", "after_both": ["ok", "ok"]},
    ),
    "conditions": Scenario(
        conditions,
        "failed",
        "task 'validation' failed: TaskError.ValidationFailed: bad input",
        {
            "validation": _failed(1, "TaskError.ValidationFailed: bad input"),
            "connection": _ok(2),
            "missing_key": _failed(1, "KeyError: 'missing'"),
            "never": _failed(1, "TaskError.ExecutionFailed: once only"),
        },
        {"connection": "ok"},
    ),
    "timeouts": Scenario(
        timeouts,
        "failed",
        "task 'slow_async' failed: " + TIMEOUT.format("slow_async"),
        {
            "slow_async": _failed(2, TIMEOUT.format("slow_async")),
            "slow_plain": _failed(1, TIMEOUT.format("slow_plain")),
            "own_timeout_error": _failed(1, "TimeoutError: the remote API timed out"),
            "quick": _ok(),
        },
        {"quick": True},
    ),
    "skips": Scenario(
        skips,
        "failed",
        "task 'b' failed: TaskError.ValidationFailed: b refuses",
        {
            "a": _ok(),
            "b": _failed(1, "TaskError.ValidationFailed: b refuses"),
            "c": _skipped("b"),
            "d": _skipped("b"),
            "f": _skipped("b"),
            "e": _ok(),
        },
        {"a": 1, "e": 2},
    ),
    "diamond": Scenario(
        diamond,
        "completed",
        None,
        {"root": _ok(), "left": _ok(), "right": _ok(), "join": _ok(), "join_reversed": _ok()},
        # the final context overlays outputs in workflow order: join_reversed's (k = left) comes last
        {"k": "left", "left": True, "right": True, "join_saw": "right", "join_reversed_saw": "left"},
    ),
    "foreign": Scenario(
        foreign,
        "failed",
        "task 'value_error' failed: ValueError: not a number: 'x'",
        {
            "value_error": _failed(1, "ValueError: not a number: 'x'"),
            "key_error": _failed(1, "KeyError: 'absent'"),
            "escapes": _failed(1, ESCAPED),
            "downstream": _skipped("value_error"),
        },
        {},
    ),
}


def _seen(status: object, error: str | None, tasks: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """What a driver's result says, in the table's terms (without the per-execution ``run`` and ``scenario`` keys)."""
    return {
        "status": str(status),
        "error": error,
        "tasks": {tid: (str(o.status), o.attempts, o.error, len(o.errors)) for tid, o in tasks.items()},
        "context": {k: v for k, v in context.items() if k not in ("run", "scenario")},
    }


def _initial(name: str) -> dict[str, Any]:
    return {"run": uuid.uuid4().hex, "scenario": name}


def _catalog() -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    for scenario in SCENARIOS.values():
        catalog.add_workflow(scenario.workflow)
    return catalog


async def _in_memory(_tmp_path: Path, _request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    async def one(name: str, s: Scenario) -> dict[str, Any]:
        result = await arun_workflow(s.workflow, _initial(name))
        return _seen(result.status, result.error, result.tasks, result.context.to_dict())

    results = await asyncio.gather(*(one(n, s) for n, s in SCENARIOS.items()))
    return dict(zip(SCENARIOS, results, strict=True))


async def _durable_sqlite(tmp_path: Path, _request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'cloacina.db'}"
    async with DefaultRunner(url, catalog=_catalog(), home=tmp_path, recover=False) as runner:
        results = await asyncio.gather(*(runner.execute(s.workflow, _initial(n)) for n, s in SCENARIOS.items()))
    return {n: _seen(r.status, r.error, r.tasks, r.context.to_dict()) for n, r in zip(SCENARIOS, results, strict=True)}


async def _distributed(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    url = str(request.getfixturevalue("postgres_schema_url"))
    async with DefaultRunner(url, catalog=_catalog(), home=tmp_path, recover=False) as submitter:
        ids = [await submitter.submit(s.workflow, _initial(n), distributed=True) for n, s in SCENARIOS.items()]
        worker = DistributedWorker(url, catalog=_catalog(), home=str(tmp_path), concurrency=8, poll_s=0.5)
        serving = asyncio.ensure_future(worker.run())
        try:
            results = await asyncio.wait_for(asyncio.gather(*(submitter.wait(e, poll_s=0.05) for e in ids)), 60)
        finally:
            worker.stop(now=True)
            await asyncio.wait_for(serving, 30)
    return {n: _seen(r.status, r.error, r.tasks, r.context.to_dict()) for n, r in zip(SCENARIOS, results, strict=True)}


Driver = Callable[[Path, pytest.FixtureRequest], Awaitable[dict[str, dict[str, Any]]]]


@pytest.mark.parametrize(
    "driver",
    [
        pytest.param(_in_memory, id="in-memory"),
        pytest.param(_durable_sqlite, id="durable-sqlite"),
        pytest.param(_distributed, id="distributed-postgresql", marks=pytest.mark.postgres),
    ],
)
async def test_every_driver_ends_every_scenario_the_same_way(
    driver: Driver, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    RELEASE.clear()
    try:
        seen = await driver(tmp_path, request)
    finally:
        RELEASE.set()  # the abandoned plain task's thread returns
    expected = {name: s.expected() for name, s in SCENARIOS.items()}
    differences = {
        name: {"expected": expected[name], "seen": seen[name]} for name in SCENARIOS if seen[name] != expected[name]
    }
    assert differences == {}

"""One table of scenarios, run by every driver: the in-memory runner, the durable engine, the distributed worker,
and both of those again with the workflows as a registered package (their tasks run in its worker process).

All ask one state machine (``cloacina_workflow._machine``), so each scenario ends the same way in each:
the execution's status and error, every task's status, attempt count, error text and number of failed
attempts kept, and the final context. Each driver is checked against the one expected table. The
workflows are defined once, in the package ``tests/packages/reg-same``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import DefaultRunner, ExecutionResult, Registry, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_workflow import Workflow
from cloacina_workflow.testing import arun_workflow

FLOWS = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_reg_same", "reg-same/src/reg_same/__init__.py"
)
RELEASE = FLOWS.RELEASE  # plain tasks that time out wait on this (set once a driver's runs have ended)
success, backoffs, conditions, timeouts = FLOWS.success, FLOWS.backoffs, FLOWS.conditions, FLOWS.timeouts
skips, diamond, foreign, branches = FLOWS.skips, FLOWS.diamond, FLOWS.foreign, FLOWS.branches
deferrals = FLOWS.deferrals
FOREVER = (
    "TaskError.ExecutionFailed: task 'forever' deferred itself 100 times, the most one task may in an execution "
    "(MAX_DEFERRALS = 100); the attempt that asked once more (deferred for 0s: never ready) failed. "
    "Defer for longer each time, or raise an error when the wait is over"
)


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


def _not_met(condition: str) -> tuple[str, int, str | None, int]:
    return ("skipped", 0, f"skipped: condition not met: {condition}", 0)


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
    "TaskEscapedError: task '{}' raised {}, a BaseException that is not an Exception; the "
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
            "own_class": _failed(2, "Throttled: slow down"),  # its own is_transient() says retry
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
            "escapes": _failed(1, ESCAPED.format("escapes", "SystemExit(3)")),
            "context_error": _failed(
                1,
                "ContextError.KeyNotFound: Context key 'absent' does not exist; "
                "use insert() to add it or set() to upsert.",
            ),
            "cancels_itself": _failed(1, ESCAPED.format("cancels_itself", "CancelledError")),
            "downstream": _skipped("value_error"),
        },
        {},
    ),
    # trigger rules and conditions (the machine's ``settle``); a handled failure still fails the execution
    "branches": Scenario(
        branches,
        "failed",
        "task 'fragile' failed: TaskError.ValidationFailed: fragile breaks",
        {
            "extract": _ok(),
            "full_report": _not_met('context \'mode\' equals "full" (it is "quick")'),
            "publish": ("skipped", 0, "skipped: upstream task 'full_report' was skipped", 0),
            "publish_anyway": _ok(),
            "fragile": _failed(1, "TaskError.ValidationFailed: fragile breaks"),
            "cleanup": _ok(),
            "after_fragile": _skipped("fragile"),
            "summary": _ok(),
            "no_failure": (
                "skipped",
                0,
                "skipped: trigger rule any_failed: none of its dependencies ('extract') failed",
                0,
            ),
            "dry_run_only": _not_met("context 'dry_run' exists (the key is absent)"),
            "real_run": _ok(),
        },
        # publish_anyway's only dependency was skipped: its context has no "mode" (a skip adds no output)
        {"mode": "quick", "published_anyway": None, "cleaned": True, "summary": True, "real_run": True},
    ),
    # a deferral (TaskError.Deferred) is an attempt, not a failure: no retry used, its output dropped, capped
    "deferrals": Scenario(
        deferrals,
        "failed",
        f"task 'forever' failed: {FOREVER}",
        {
            "poll": ("completed", 3, None, 0),
            "until": ("completed", 2, None, 0),
            "defer_then_retry": ("completed", 3, None, 1),
            "forever": ("failed", 101, FOREVER, 1),
            "after": _ok(),
            "after_forever": _skipped("forever"),
        },
        {"polled": 3, "until": "ok", "retried": 3, "after": [3, "ok"]},
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


@pytest.fixture(scope="session")
def same_archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/packages/reg-same`` as a ``.cloacina`` archive (``package_workflow``, cached by content)."""
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("reg-same")
    archives = importlib.import_module("tests.conftest").load_helper(
        "cloacina_tests_reg_archives", "reg-archives/archives.py"
    )
    return archives.archive(where, "reg-same", archives.PACKAGES / "reg-same")  # type: ignore[no-any-return]


async def _by_name(
    start: Callable[[str, dict[str, Any]], Coroutine[Any, Any, ExecutionResult]],
) -> dict[str, dict[str, Any]]:
    """Every scenario run by its registered name (``same::NAME``); ``timeouts`` last, on its own.

    Its plain task that times out keeps running in its thread, so its worker process is retired and the
    next task starts a fresh one; a retried task counting its runs in the old one would count anew.
    """
    names = [n for n in SCENARIOS if n != "timeouts"]

    def one(name: str) -> Coroutine[Any, Any, ExecutionResult]:
        wf = SCENARIOS[name].workflow
        return start(f"{wf.package}::{wf.name}", _initial(name))

    results = dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))
    results["timeouts"] = await one("timeouts")
    return {n: _seen(r.status, r.error, r.tasks, r.context.to_dict()) for n, r in results.items()}


async def _registered_sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    url, home = f"sqlite:///{tmp_path / 'cloacina.db'}", tmp_path / "home"
    registry = Registry(url, home=home, load_timeout_s=20)
    try:
        registry.register(request.getfixturevalue("same_archive"))
        async with DefaultRunner(url, catalog=registry.catalog(), home=home, recover=False) as runner:
            return await _by_name(runner.execute)
    finally:
        registry.close()


async def _registered_distributed(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    url, home = str(request.getfixturevalue("postgres_schema_url")), tmp_path / "home"
    registry = Registry(url, home=home, load_timeout_s=20)
    try:
        registry.register(request.getfixturevalue("same_archive"))
        async with DefaultRunner(url, catalog=registry.catalog(), home=home, recover=False) as submitter:
            worker = DistributedWorker(url, catalog=registry.catalog(), home=str(home), concurrency=8, poll_s=0.5)
            serving = asyncio.ensure_future(worker.run())

            async def start(name: str, initial: dict[str, Any]) -> ExecutionResult:
                execution_id = await submitter.submit(name, initial, distributed=True)
                return await asyncio.wait_for(submitter.wait(execution_id, poll_s=0.05), 60)

            try:
                return await _by_name(start)
            finally:
                worker.stop(now=True)
                await asyncio.wait_for(serving, 30)
    finally:
        registry.close()


Driver = Callable[[Path, pytest.FixtureRequest], Awaitable[dict[str, dict[str, Any]]]]


@pytest.mark.parametrize(
    "driver",
    [
        pytest.param(_in_memory, id="in-memory"),
        pytest.param(_durable_sqlite, id="durable-sqlite"),
        pytest.param(_distributed, id="distributed-postgresql", marks=pytest.mark.postgres),
        pytest.param(_registered_sqlite, id="registered-durable-sqlite"),
        pytest.param(_registered_distributed, id="registered-distributed-postgresql", marks=pytest.mark.postgres),
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


def _line_of(path: Path, text: str) -> int:
    """The number of the line of ``path`` that holds ``text`` (once)."""
    found = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("distributed", [False, pytest.param(True, marks=pytest.mark.postgres)])
async def test_a_registered_tasks_stored_traceback_shows_the_packages_code(
    tmp_path: Path, same_archive: Path, distributed: bool, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_schema_url")) if distributed else f"sqlite:///{tmp_path / 'db'}"
    home = tmp_path / "home"
    registry = Registry(url, home=home, load_timeout_s=20)
    try:
        installed = registry.register(same_archive)
        async with DefaultRunner(url, catalog=registry.catalog(), home=home, recover=False) as runner:
            execution_id = await runner.submit("same::foreign", _initial("foreign"), distributed=distributed)
            if distributed:  # run by a distributed worker (cloacina-ctl worker), on its own host
                worker = DistributedWorker(url, catalog=registry.catalog(), home=str(home), poll_s=0.5)
                serving = asyncio.ensure_future(worker.run())
            try:
                result = await asyncio.wait_for(runner.wait(execution_id, poll_s=0.05), 60)
            finally:
                if distributed:
                    worker.stop(now=True)
                    await asyncio.wait_for(serving, 30)
    finally:
        registry.close()
    assert result.error == "task 'value_error' failed: ValueError: not a number: 'x'"
    shown = subprocess.run(
        [sys.executable, "-m", "cloacina_host", "executions", "show", result.execution_id, "--json"],
        env={**os.environ, "CLOACINA_DATABASE_URL": url, "CLOACINA_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    attempts = {t["task_id"]: t["attempts"] for t in json.loads(shown.stdout)["tasks"]}
    source = installed.install_dir / "reg_same" / "__init__.py"  # the package's module, as installed
    for task_id, raising in [
        ("value_error", """raise ValueError("not a number: 'x'")"""),  # an async task
        ("key_error", 'ctx.set("lookup", {}["absent"])'),  # a plain one, run in a thread of the worker
        ("escapes", "raise SystemExit(3)"),  # what escaped is the cause of the TaskEscapedError
    ]:
        [attempt] = attempts[task_id]
        assert attempt["error"] == result.tasks[task_id].error
        tb = attempt["traceback"]
        assert f'File "{source}", line {_line_of(source, raising)}, in {task_id}\n    {raising}\n' in tb, tb
        assert tb.endswith(f"for {installed.install_dir})\n"), tb  # the host's line: which worker ran it
    assert attempts["value_error"][0]["traceback"].splitlines()[-2] == "ValueError: not a number: 'x'"

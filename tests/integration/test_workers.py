"""Worker processes running a package's tasks, on real installed-layout directories."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from cloacina_host._workers import RemoteTaskError, WorkerCrashed, WorkerLoadError, WorkerPool, remote_workflow
from cloacina_workflow import TaskError
from cloacina_workflow import _machine as m
from cloacina_workflow.testing import arun_workflow

PACKAGE = """
import asyncio, ctypes, os
from cloacina_workflow import TaskError, task, workflow
import depmod

@workflow(name="jobs", package="{package}")
class jobs:
    @task(id="hello")
    async def hello(context):
        print("hello from the worker", flush=True)
        context.insert("dep_version", depmod.VERSION)
        context.insert("pid", os.getpid())

    @task(id="double", dependencies=["hello"])
    def double(context):
        context.set("n", context.get("n", 1) * 2)

    @task(id="invalid")
    def invalid(context):
        raise TaskError.ValidationFailed(message="Missing raw_data")


@workflow(name="crashers", package="{package}")
class crashers:
    @task(id="die")
    def die(context):
        os._exit(17)

    @task(id="segfault")
    def segfault(context):
        ctypes.string_at(0)

    @task(id="slow")
    async def slow(context):
        await asyncio.sleep(30)
"""


def make_package(root: Path, name: str, dep_version: str, *, extra: str = "") -> Path:
    """An installed-layout directory: a module, its dist-info, and a private dependency ``depmod``."""
    target = root / f"{name}-{dep_version}"
    target.mkdir()
    module = f"pkg_{name}"
    (target / f"{module}.py").write_text(extra + textwrap.dedent(PACKAGE.format(package=name)))
    (target / "depmod.py").write_text(f"VERSION = {dep_version!r}\n")
    info = target / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[cloacina.workflows]\njobs = {module}:jobs\ncrashers = {module}:crashers\n"
    )
    return target


@pytest.fixture
async def pool():  # type: ignore[no-untyped-def]
    p = WorkerPool(idle_timeout_s=60, load_timeout_s=20)
    yield p
    await p.close()


async def test_worker_runs_tasks_and_prints_reach_the_host(
    tmp_path: Path, pool: WorkerPool, capfd: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path, "alpha", "1.0")
    worker = await pool.get(pkg)
    assert "alpha::jobs" in worker.workflows
    wf = remote_workflow(pool, pkg, "alpha::jobs", worker.workflows["alpha::jobs"])
    assert wf.order[:2] == ("hello", "double")
    out = await worker.run_task("alpha::jobs", "hello", {"n": 21})
    assert out["dep_version"] == "1.0"
    assert out["n"] == 21
    assert out["pid"] == worker.pid
    assert "hello from the worker" in capfd.readouterr().out
    assert await pool.get(pkg) is worker  # reused


@pytest.mark.parametrize("task_id", ["die", "segfault"])
async def test_a_task_that_kills_its_worker_fails_only_that_task(
    tmp_path: Path, pool: WorkerPool, task_id: str
) -> None:
    pkg = make_package(tmp_path, "gamma", "1.0")
    other = make_package(tmp_path, "delta", "1.0")
    worker = await pool.get(pkg)
    other_worker = await pool.get(other)
    slow_elsewhere = asyncio.ensure_future(other_worker.run_task("delta::jobs", "hello", {}))
    with pytest.raises(WorkerCrashed) as info:
        await worker.run_task("gamma::crashers", task_id, {})
    assert info.value.is_transient()  # so the task's retry policy applies
    assert info.value.task == task_id
    assert (await slow_elsewhere)["dep_version"] == "1.0"
    assert other_worker.alive
    replacement = await pool.get(pkg)
    assert replacement is not worker
    assert replacement.pid != worker.pid
    assert (await replacement.run_task("gamma::jobs", "hello", {}))["pid"] == replacement.pid


async def test_task_errors_come_back_as_the_kit_error_with_the_workers_traceback(
    tmp_path: Path, pool: WorkerPool
) -> None:
    pkg = make_package(tmp_path, "eps", "1.0")
    worker = await pool.get(pkg)
    with pytest.raises(TaskError.ValidationFailed) as info:  # the kit's own class, not a wrapper
        await worker.run_task("eps::jobs", "invalid", {})
    assert type(info.value) is TaskError.ValidationFailed
    assert str(info.value) == "Missing raw_data"
    assert m.describe(info.value) == "TaskError.ValidationFailed: Missing raw_data"  # as in-process
    assert not info.value.is_transient()
    tb = m.traceback_text(info.value)  # the worker's traceback: the package's file and line
    assert f'File "{pkg / "pkg_eps.py"}", line ' in tb
    assert "raise TaskError.ValidationFailed" in tb
    assert tb.endswith(f"(raised in worker process {worker.pid} for {pkg})\n")


async def test_foreign_errors_are_told_as_the_worker_told_them(tmp_path: Path, pool: WorkerPool) -> None:
    pkg = make_package(
        tmp_path,
        "iota",
        "1.0",
        extra="class Flaky(ConnectionError):\n    pass\n\n\n",
    )
    (pkg / "pkg_iota.py").write_text(
        (pkg / "pkg_iota.py").read_text()
        + textwrap.dedent(
            """
            @workflow(name="foreign", package="iota")
            class foreign:
                @task(id="flaky")
                def flaky(context):
                    raise Flaky("reset by peer")

                @task(id="lookup")
                async def lookup(context):
                    context.set("x", {}["absent"])
            """
        )
    )
    (pkg / "pkg_iota-1.0.dist-info" / "entry_points.txt").write_text(
        "[cloacina.workflows]\njobs = pkg_iota:jobs\nforeign = pkg_iota:foreign\n"
    )
    worker = await pool.get(pkg)
    with pytest.raises(RemoteTaskError) as info:
        await worker.run_task("iota::foreign", "flaky", {})
    assert info.value.error_type == "Flaky"
    assert m.describe(info.value) == str(info.value) == "Flaky: reset by peer"
    assert info.value.is_transient()  # a ConnectionError: retry_condition="transient" retries it, as in-process
    with pytest.raises(RemoteTaskError) as info:
        await worker.run_task("iota::foreign", "lookup", {})
    assert m.describe(info.value) == "KeyError: 'absent'"
    assert not info.value.is_transient()
    assert 'context.set("x", {}["absent"])' in m.traceback_text(info.value)


async def test_cancelling_a_task_cancels_it_in_the_worker(tmp_path: Path, pool: WorkerPool) -> None:
    pkg = make_package(tmp_path, "zeta", "1.0")
    worker = await pool.get(pkg)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(worker.run_task("zeta::crashers", "slow", {}), 0.2)
    # the worker is still usable and nothing is left pending
    assert (await worker.run_task("zeta::jobs", "hello", {}))["dep_version"] == "1.0"
    assert not worker.busy


async def test_conflicting_private_dependencies_side_by_side(tmp_path: Path, pool: WorkerPool) -> None:
    old = make_package(tmp_path, "old", "1.0")
    new = make_package(tmp_path, "new", "2.0")
    results = await asyncio.gather(
        (await pool.get(old)).run_task("old::jobs", "hello", {}),
        (await pool.get(new)).run_task("new::jobs", "hello", {}),
    )
    assert [r["dep_version"] for r in results] == ["1.0", "2.0"]


async def test_an_import_that_hangs_hits_the_load_time_limit(tmp_path: Path) -> None:
    pkg = make_package(tmp_path, "hang", "1.0", extra="import time\ntime.sleep(60)\n")
    pool = WorkerPool(load_timeout_s=1)
    try:
        with pytest.raises(WorkerLoadError, match="did not finish loading its entry points within 1s"):
            await pool.get(pkg)
        assert pool.workers() == []
    finally:
        await pool.close()


async def test_import_errors_are_reported_by_the_worker(tmp_path: Path, pool: WorkerPool) -> None:
    pkg = make_package(tmp_path, "broken", "1.0", extra="raise ImportError('needs libfoo')\n")
    worker = await pool.get(pkg)
    assert worker.workflows == {}
    assert any("needs libfoo" in p for p in worker.problems)


async def test_idle_workers_are_reaped(tmp_path: Path) -> None:
    pkg = make_package(tmp_path, "idle", "1.0")
    pool = WorkerPool(idle_timeout_s=0)
    try:
        worker = await pool.get(pkg)
        await asyncio.sleep(0.01)
        assert await pool.reap_idle() == 1
        assert not worker.alive
        assert pool.workers() == []
    finally:
        await pool.close()


async def test_remote_workflow_runs_under_the_engine_rules(tmp_path: Path, pool: WorkerPool) -> None:
    pkg = make_package(tmp_path, "eta", "3.0")
    worker = await pool.get(pkg)
    wf = remote_workflow(pool, pkg, "eta::jobs", worker.workflows["eta::jobs"])
    result = await arun_workflow(wf, {"n": 4})
    assert result.tasks["hello"].status == "completed"
    assert result.tasks["double"].status == "completed"
    assert result.context.get("n") == 8
    assert result.context.get("dep_version") == "3.0"
    assert result.status == "failed"
    assert result.tasks["invalid"].error == "TaskError.ValidationFailed: Missing raw_data"  # the engine's form

"""Task code that escapes the worker protocol (issue 10, classes 1 and 2, the worker part).

Real worker processes on installed-layout directories, and a real registered archive run by the
engine: a task that leaves a grandchild holding the worker's pipes, one that blocks the worker's
event loop past its timeout, a plain one that never returns, replies over the size limit or not
JSON, and an output context over ``MAX_CONTEXT_BYTES``. Each ends as a failed attempt (or a
success) with a clear error, on a fresh worker when the old one could not be trusted; nothing hangs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from cloacina_host import DefaultRunner, Registry
from cloacina_host._workers import MAX_REPLY_BYTES, RemoteTaskError, WorkerCrashed, WorkerPool, remote_workflow
from cloacina_workflow import Context

HELPERS = Path(__file__).resolve().parents[1] / "packages" / "hardening" / "hostile.py"
#: Every wait in this module is bounded by this, so a regression fails instead of hanging.
BOUND_S = 60


def _helpers() -> ModuleType:
    load_helper = importlib.import_module("tests.conftest").load_helper  # tests/ is not a package
    return load_helper("cloacina_tests_hardening", "hardening/hostile.py")


h = _helpers()

PACKAGE = f"""
import asyncio, os, sys, threading, time
from cloacina_workflow import task, workflow

_three = threading.Barrier(3, timeout=20)

@workflow(name="tricks", package="tricks")
class tricks:
    @task(id="exits")
    def exits(context):
        sys.exit(3)

    @task(id="cancels_itself")
    def cancels_itself(context):
        raise asyncio.CancelledError("from the task")

    @task(id="meets")
    def meets(context):
        _three.wait()  # returns only once three of these run at the same time in this worker
        context.set("thread", threading.current_thread().name + str(threading.get_ident()))
    @task(id="hello")
    def hello(context):
        context.set("pid", os.getpid())
        context.set("sid", os.getsid(0))

    @task(id="blocks")
    async def blocks(context):
        time.sleep(3600)

    @task(id="waits")
    async def waits(context):
        gate = context.get("dir")
        with open(os.path.join(gate, "started"), "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(gate, "release")) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        context.set("pid", os.getpid())

    @task(id="never_returns")
    def never_returns(context):
        threading.Event().wait()

    @task(id="oversized_reply")
    def oversized_reply(context):
        os.write(int(sys.argv[2]), b"x" * ({MAX_REPLY_BYTES} + 10))
        threading.Event().wait()

    @task(id="garbled_reply")
    def garbled_reply(context):
        os.write(int(sys.argv[2]), b"this is not JSON\\n")
        threading.Event().wait()

    @task(id="huge_output")
    def huge_output(context):
        context.set("blob", "y" * (70 * 1000 * 1000))
"""


def make_package(root: Path, *, extra_files: dict[str, str] | None = None) -> Path:
    target = root / "tricks"
    target.mkdir()
    (target / "pkg_tricks.py").write_text(textwrap.dedent(PACKAGE))
    for name, text in (extra_files or {}).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)
    info = target / "pkg_tricks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg_tricks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cloacina.workflows]\ntricks = pkg_tricks:tricks\n")
    return target


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(idle_timeout_s=60, load_timeout_s=30, cancel_grace_s=1.0)
    yield p
    await asyncio.wait_for(p.close(), BOUND_S)


async def test_each_worker_runs_in_a_session_of_its_own(tmp_path: Path, pool: WorkerPool) -> None:
    worker = await pool.get(make_package(tmp_path))
    out = await worker.run_task("tricks::tricks", "hello", {})
    assert out["pid"] == worker.pid
    assert out["sid"] == worker.pid  # its own session and process group: ending it ends its children


async def test_plain_tasks_sent_to_one_worker_run_at_the_same_time(tmp_path: Path, pool: WorkerPool) -> None:
    worker = await pool.get(make_package(tmp_path))
    for _ in range(2):  # and again, on the threads the first round started
        replies = await asyncio.wait_for(
            asyncio.gather(*(worker.run_task("tricks::tricks", "meets", {}) for _ in range(3))), BOUND_S
        )
        threads = [r["thread"] for r in replies]
        assert len(set(threads)) == 3
        assert all(t.startswith("cloacina-task") for t in threads)
    assert worker.usable


@pytest.mark.parametrize(("task_id", "escaped"), [("exits", "SystemExit"), ("cancels_itself", "CancelledError")])
async def test_a_plain_task_raising_past_exception_fails_its_attempt_and_the_worker_goes_on(
    tmp_path: Path, pool: WorkerPool, task_id: str, escaped: str
) -> None:
    worker = await pool.get(make_package(tmp_path))
    with pytest.raises(Exception, match=escaped) as info:
        await asyncio.wait_for(worker.run_task("tricks::tricks", task_id, {}), BOUND_S)
    assert not isinstance(info.value, WorkerCrashed)
    assert await pool.get(worker.package_dir) is worker
    assert (await asyncio.wait_for(worker.run_task("tricks::tricks", "hello", {}), BOUND_S))["pid"] == worker.pid


async def test_a_task_blocking_the_event_loop_past_its_timeout_gets_a_fresh_worker(
    tmp_path: Path, pool: WorkerPool
) -> None:
    package = make_package(tmp_path)
    worker = await pool.get(package)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(worker.run_task("tricks::tricks", "blocks", {}), 0.5)
    fresh = await asyncio.wait_for(pool.get(package), BOUND_S)
    assert fresh is not worker
    out = await asyncio.wait_for(fresh.run_task("tricks::tricks", "hello", {}), BOUND_S)
    assert out["pid"] == fresh.pid
    old = worker.pid
    assert old is not None
    h.wait_until(lambda: not h.running(old), BOUND_S, f"the blocked worker {old} is killed")


async def test_a_task_beside_one_that_blocks_the_worker_runs_again_on_a_fresh_worker(
    tmp_path: Path, pool: WorkerPool
) -> None:
    package = make_package(tmp_path)
    worker = await pool.get(package)
    tricks = remote_workflow(pool, package, "tricks::tricks", worker.workflows["tricks::tricks"])
    started = tmp_path / "started"
    context = Context({"dir": str(tmp_path)})
    bystander = asyncio.ensure_future(tricks.tasks["waits"].run(context))
    await h.until(started.exists, BOUND_S, "the bystander task starts in the worker")
    with pytest.raises(asyncio.TimeoutError):  # 'blocks' ignores its cancel: the worker is killed for it
        await asyncio.wait_for(worker.run_task("tricks::tricks", "blocks", {}), 0.5)
    old = worker.pid
    await h.until(
        lambda: len(started.read_text().split()) == 2, BOUND_S, "the bystander task starts again on a fresh worker"
    )
    (tmp_path / "release").touch()
    await asyncio.wait_for(bystander, BOUND_S)  # not WorkerCrashed: it was not at fault
    first, again = (int(pid) for pid in started.read_text().split())
    assert first == old
    assert context.get("pid") == again != old


async def test_a_caller_cancelled_while_the_worker_loads_leaves_it_loading_for_the_others(
    tmp_path: Path, pool: WorkerPool
) -> None:
    package = make_package(tmp_path)
    module = package / "pkg_tricks.py"
    loaded = tmp_path / "may-load"
    module.write_text(  # its import waits for the test: both callers are still waiting when one is cancelled
        "import os, time\n_deadline = time.monotonic() + 60\n"
        f"while not os.path.exists({str(loaded)!r}) and time.monotonic() < _deadline:\n    time.sleep(0.02)\n"
        + module.read_text()
    )
    first = asyncio.ensure_future(pool.get(package))  # e.g. a trigger's poll, about to time out
    second = asyncio.ensure_future(pool.get(package))  # e.g. a task
    await asyncio.sleep(0)  # one turn of the loop: both are waiting for the start now
    first.cancel()
    loaded.touch()
    worker = await asyncio.wait_for(second, BOUND_S)
    assert first.cancelled()
    out = await asyncio.wait_for(worker.run_task("tricks::tricks", "hello", {}), BOUND_S)
    assert out["pid"] == worker.pid
    assert await pool.get(package) is worker  # the one start, kept for the next caller


async def test_a_plain_task_that_never_returns_retires_its_worker(tmp_path: Path, pool: WorkerPool) -> None:
    package = make_package(tmp_path)
    worker = await pool.get(package)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(worker.run_task("tricks::tricks", "never_returns", {}), 0.5)
    fresh = await asyncio.wait_for(pool.get(package), BOUND_S)
    assert fresh is not worker
    assert worker.retired_because is not None
    assert "keeps running in its thread" in worker.retired_because
    assert (await asyncio.wait_for(fresh.run_task("tricks::tricks", "hello", {}), BOUND_S))["pid"] == fresh.pid
    old = worker.pid
    assert old is not None
    h.wait_until(lambda: not h.running(old), BOUND_S, f"the retired worker {old} has stopped")


@pytest.mark.parametrize(
    ("task_id", "reason"), [("oversized_reply", "LimitOverrunError|ValueError"), ("garbled_reply", "JSONDecodeError")]
)
async def test_a_reply_the_host_cannot_read_fails_the_task_and_replaces_the_worker(
    tmp_path: Path, pool: WorkerPool, task_id: str, reason: str
) -> None:
    package = make_package(tmp_path)
    worker = await pool.get(package)
    with pytest.raises(WorkerCrashed, match=rf"sent a reply the host cannot read \(({reason})") as info:
        await asyncio.wait_for(worker.run_task("tricks::tricks", task_id, {}), BOUND_S)
    assert info.value.is_transient()
    assert info.value.task == task_id
    fresh = await asyncio.wait_for(pool.get(package), BOUND_S)
    assert fresh is not worker
    assert (await asyncio.wait_for(fresh.run_task("tricks::tricks", "hello", {}), BOUND_S))["pid"] == fresh.pid


async def test_an_output_context_over_the_limit_fails_the_task_in_the_worker(tmp_path: Path, pool: WorkerPool) -> None:
    worker = await pool.get(make_package(tmp_path))
    with pytest.raises(RemoteTaskError, match=r"LimitExceeded: the output context of task 'huge_output' is") as info:
        await asyncio.wait_for(worker.run_task("tricks::tricks", "huge_output", {}), BOUND_S)
    assert "MAX_CONTEXT_BYTES" in str(info.value)
    assert worker.alive  # the worker refused to send it: nothing to replace
    assert (await worker.run_task("tricks::tricks", "hello", {}))["pid"] == worker.pid


async def test_an_input_context_over_the_limit_is_not_sent(tmp_path: Path, pool: WorkerPool) -> None:
    from cloacina_workflow.limits import LimitExceeded

    worker = await pool.get(make_package(tmp_path))
    with pytest.raises(LimitExceeded, match="MAX_CONTEXT_BYTES"):
        await worker.run_task("tricks::tricks", "hello", {"blob": "z" * (17 * 1024 * 1024)})
    assert (await worker.run_task("tricks::tricks", "hello", {}))["pid"] == worker.pid


async def test_a_package_shipping_the_hosts_pydantic_is_refused_by_the_worker(tmp_path: Path, pool: WorkerPool) -> None:
    shadow = {"pydantic/__init__.py": "raise ImportError('the package pydantic was imported')\n"}
    worker = await pool.get(make_package(tmp_path, extra_files=shadow))
    assert worker.workflows == {}
    assert len(worker.problems) == 1
    assert "ships top-level module(s) pydantic, which would shadow the host's own" in worker.problems[0]


@pytest.fixture(scope="module")
def hostile_archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-hostile-archives") if cache is not None else tmp_path_factory.mktemp("hostile")
    return h.build(where)["hostile"]


@pytest.mark.slow
def test_cli_run_of_a_task_leaving_a_child_on_the_pipes_completes(
    hostile_archive: Path, tmp_path: Path, database_url: str
) -> None:
    env = {"CLOACINA_HOME": str(tmp_path / "home"), "CLOACINA_DATABASE_URL": database_url}
    assert h.ctl(["register", str(hostile_archive)], env, tmp_path).status == 0
    pidfile = tmp_path / "grandchild.pid"
    try:
        # pipes: a grandchild holding the CLI's stdout/stderr or the worker's reply pipe would hang this
        ran = h.ctl(["run", "reg_hostile::fork_flow", "--context", f'{{"pidfile": "{pidfile}"}}'], env, tmp_path)
        assert ran.status == 0, ran.stderr
        grandchild = h.read_pid(pidfile)
        h.wait_until(lambda: not h.running(grandchild), BOUND_S, f"the task's child {grandchild} is gone")
    finally:
        h.reap_leftover(pidfile)


@pytest.mark.slow
async def test_registered_tasks_that_block_their_worker_or_return_too_much_leave_the_host_fine(
    hostile_archive: Path, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    registry = Registry(database_url, home=home, load_timeout_s=30)
    try:
        await asyncio.to_thread(registry.register, hostile_archive)
        async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
            blocked = await asyncio.wait_for(runner.execute("reg_hostile::block_flow"), BOUND_S)
            assert blocked.status == "failed"
            assert blocked.tasks["blocks"].status == "failed"
            after = await asyncio.wait_for(runner.execute("reg_hostile::hostile"), BOUND_S)  # same package
            assert after.ok, after.error
            huge = await asyncio.wait_for(runner.execute("reg_hostile::huge_flow"), BOUND_S)
            assert huge.status == "failed"
            assert "MAX_CONTEXT_BYTES" in (huge.tasks["huge"].error or "")
            again = await asyncio.wait_for(runner.execute("reg_hostile::hostile"), BOUND_S)
            assert again.ok, again.error
    finally:
        registry.close()

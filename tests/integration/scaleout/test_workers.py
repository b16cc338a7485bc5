"""Real ``cloacina-ctl worker`` processes sharing one PostgreSQL: exactly once, SIGKILL, leases, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import func, select

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._storage._schema import executions, task_executions
from cloacina_workflow import Context, Workflow, task, workflow

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

StartWorker = Callable[..., Any]  # conftest's WorkerProcess
ReadRuns = Callable[[Path], tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[int]]]]


@workflow(name="ghost", package="nowhere")
class ghost:
    """Known to the submitter only: no worker can load it."""

    @task
    def boo(ctx: Context) -> None:
        pass


def _submitter(url: str, flows: ModuleType) -> DefaultRunner:
    catalog = WorkflowCatalog()
    for wf in (flows.simple, flows.pipeline, flows.parallel, flows.slow, ghost):
        catalog.add_workflow(wf)
    return DefaultRunner(url, catalog=catalog, recover=False)


async def _lease_of(runner: DefaultRunner, execution_id: str, task_id: str) -> float:
    """When the lease on a claimed task lapses, as stored (0 when it has none)."""
    db = runner.database

    def read() -> float:
        with db.read("reading a task's lease") as conn:
            query = select(task_executions.c.lease_expires_at).where(
                task_executions.c.execution_id == execution_id, task_executions.c.task_id == task_id
            )
            return float(conn.execute(query).scalar_one() or 0.0)

    return await asyncio.to_thread(read)


async def _wait_done(runner: DefaultRunner, ids: list[str], timeout: float = 120.0) -> None:
    db = runner.database

    def running() -> int:
        with db.read("counting running executions") as conn:
            query = select(func.count()).where(executions.c.id.in_(ids), executions.c.status == "running")
            return int(conn.execute(query).scalar_one())

    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(running):
        if time.monotonic() > deadline:
            pytest.fail(f"executions still running after {timeout}s")
        await asyncio.sleep(0.1)


async def _submit_mixed(
    runner: DefaultRunner, flows: ModuleType, out: Path, count: int, sleep_s: float
) -> dict[str, tuple[str, Workflow]]:
    shapes = (flows.simple, flows.pipeline, flows.parallel)
    ids = {}
    for i in range(count):
        wf = shapes[i % 3]
        context = {"key": f"w{i}", "out_dir": str(out), "sleep_s": sleep_s}
        ids[await runner.submit(wf, context, distributed=True)] = (f"w{i}", wf)
    return ids


async def test_three_workers_run_300_workflows_every_task_exactly_once(
    postgres_schema_url: str, scale_flows: ModuleType, start_worker: StartWorker, tmp_path: Path, read_runs: ReadRuns
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    workers = [start_worker(postgres_schema_url, f"w{i}", "--concurrency", "4", "--quiet") for i in range(3)]
    async with _submitter(postgres_schema_url, scale_flows) as runner:
        ids = await _submit_mixed(runner, scale_flows, out, 300, 0.0)
        ghost_id = await runner.submit(ghost, {"key": "ghost"}, distributed=True)
        await _wait_done(runner, [*ids, ghost_id])
        records = [await runner.get_execution(eid) for eid in ids]
        ghost_record = await runner.get_execution(ghost_id)
    assert [w.stop() for w in workers] == [0, 0, 0]

    assert {r.status for r in records} == {"completed"}
    counts, pids = read_runs(out)
    expected = {(key, tid) for key, wf in ids.values() for tid in wf.tasks}
    assert set(counts) == expected
    assert set(counts.values()) == {1}  # every task ran exactly once, as seen from outside the engine
    assert {pid for p in pids.values() for pid in p} == {w.pid for w in workers}  # all three shared the work
    for r in records:  # one attempt per task: no task was claimed twice, no dependent made ready twice
        assert all(len(t.attempts) == 1 and t.attempts[0].status == "completed" for t in r.tasks)
        if r.workflow.endswith("::parallel"):
            assert r.context_out is not None
            assert r.context_out["total"] == sum(range(30))
    # a workflow no worker can load fails with the load error; the workers went on serving
    assert ghost_record.status == "failed"
    assert "cannot load workflow 'public::nowhere::ghost'" in (ghost_record.error or "")


async def test_a_sigkilled_worker_loses_only_its_in_flight_tasks(
    postgres_schema_url: str, scale_flows: ModuleType, start_worker: StartWorker, tmp_path: Path, read_runs: ReadRuns
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    # a lease long enough that a busy survivor on a loaded 2-core machine always renews in time;
    # short enough that the victim's tasks are taken over within seconds
    options = ("--concurrency", "4", "--lease-seconds", "5", "--quiet")
    workers = [start_worker(postgres_schema_url, f"k{i}", *options) for i in range(3)]
    victim = workers[0]
    async with _submitter(postgres_schema_url, scale_flows) as runner:
        ids = await _submit_mixed(runner, scale_flows, out, 300, 0.02)
        deadline = time.monotonic() + 60
        while sum(1 for p in read_runs(out)[1].values() if victim.pid in p) < 40:  # mid-run, busy
            assert time.monotonic() < deadline, victim.output()
            await asyncio.sleep(0.02)
        victim.signal(signal.SIGKILL)
        assert victim.process.wait(10) == -signal.SIGKILL
        await _wait_done(runner, list(ids))
        records = [await runner.get_execution(eid) for eid in ids]
    assert [w.stop() for w in workers[1:]] == [0, 0]

    assert {r.status for r in records} == {"completed"}
    counts, pids = read_runs(out)
    assert set(counts) == {(key, tid) for key, wf in ids.values() for tid in wf.tasks}
    twice = {k for k, n in counts.items() if n > 1}
    assert set(counts.values()) <= {1, 2}
    attempts = {(key, t.task_id): t.attempts for r in records for t in r.tasks for key in [ids[r.id][0]]}
    victim_tag = f":{victim.pid}:k0"
    interrupted = {k for k, a in attempts.items() if any(x.status == "interrupted" for x in a)}
    # the victim was running tasks when it died: those, and only those, were taken over
    assert interrupted
    for k in interrupted:
        first, second = attempts[k]
        assert victim_tag in (first.worker or "")
        assert "lease of worker" in (first.error or "")
        assert second.status == "completed"
        assert victim_tag not in (second.worker or "")
    for k, a in attempts.items():
        if k not in interrupted:
            assert [x.status for x in a] == ["completed"]
    # ran twice from the outside: a task the victim had started, and only such a task
    assert twice <= interrupted
    for k in twice:
        assert victim.pid in pids[k]
        assert any(pid != victim.pid for pid in pids[k])


async def test_a_held_lease_keeps_a_task_from_others_and_a_lapsed_one_is_taken_over(
    postgres_schema_url: str, scale_flows: ModuleType, start_worker: StartWorker, tmp_path: Path, read_runs: ReadRuns
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    lease_s = 2.0  # short, so the lapse comes soon; a loaded machine still renews well within it
    options = ("--lease-seconds", str(lease_s), "--poll-seconds", "0.5")
    workers = {name: start_worker(postgres_schema_url, name, *options) for name in ("a", "b")}
    for w in workers.values():
        w.wait_for("serving tenant")
    async with _submitter(postgres_schema_url, scale_flows) as runner:
        context = {"key": "s", "out_dir": str(out), "nap_s": 6.0, "nap_once": True}
        execution_id = await runner.submit(scale_flows.slow, context, distributed=True)
        deadline = time.monotonic() + 30
        while not read_runs(out)[0]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        [holder_pid] = read_runs(out)[1][("s", "nap")]
        holder = next(w for w in workers.values() if w.pid == holder_pid)
        other = next(w for w in workers.values() if w is not holder)
        first = await _lease_of(runner, execution_id, "nap")  # the claim's lease: it lapses then unless renewed
        deadline = time.monotonic() + 30
        while time.time() < first or (await _lease_of(runner, execution_id, "nap")) <= first:
            assert time.monotonic() < deadline, "the holder never renewed its lease"
            await asyncio.sleep(0.05)
        assert read_runs(out)[0][("s", "nap")] == 1  # past the claim's lease, renewed: nobody else took it
        holder.signal(signal.SIGSTOP)  # alive but silent: its lease lapses
        try:
            await _wait_done(runner, [execution_id], timeout=30)
        finally:
            holder.signal(signal.SIGCONT)
        record = await runner.get_execution(execution_id)
        holder.wait_for("lost the lease")  # its late result is refused
    assert [w.stop() for w in workers.values()] == [0, 0]

    assert record.status == "completed"
    nap, after = record.tasks
    assert [a.status for a in nap.attempts] == ["interrupted", "completed"]
    assert f":{holder.pid}:" in (nap.attempts[0].worker or "")
    assert f":{other.pid}:" in (nap.attempts[1].worker or "")
    assert [a.status for a in after.attempts] == ["completed"]
    counts, _ = read_runs(out)
    assert counts == {("s", "nap"): 2, ("s", "after"): 1}
    assert record.context_out is not None
    assert record.context_out["napped_in"] == other.pid


async def test_sigterm_finishes_what_fits_in_the_grace_period_and_hands_back_the_rest(
    postgres_schema_url: str, scale_flows: ModuleType, start_worker: StartWorker, tmp_path: Path, read_runs: ReadRuns
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    async with _submitter(postgres_schema_url, scale_flows) as runner:
        quick = await runner.submit(
            scale_flows.slow, {"key": "quick", "out_dir": str(out), "nap_s": 1.0}, distributed=True
        )
        first = start_worker(postgres_schema_url, "first", "--grace-seconds", "10", "--concurrency", "1")
        first.wait_for("claimed public::scale::slow nap")
        first.signal(signal.SIGTERM)
        assert first.process.wait(30) == 0  # the running task finished inside the grace period
        record = await runner.get_execution(quick)
        assert [(t.task_id, t.status) for t in record.tasks] == [("nap", "completed"), ("after", "ready")]

        long = await runner.submit(
            scale_flows.slow, {"key": "long", "out_dir": str(out), "nap_s": 60, "nap_once": True}, distributed=True
        )
        second = start_worker(postgres_schema_url, "second", "--grace-seconds", "0.5")
        second.wait_for("claimed public::scale::slow nap")
        started = time.monotonic()
        second.signal(signal.SIGTERM)
        assert second.process.wait(30) == 0
        assert time.monotonic() - started < 20  # handed back, not waited for
        assert "released public::scale::slow nap" in second.output()
        record = await runner.get_execution(long)
        nap = record.tasks[0]
        assert nap.status == "ready"  # claimable at once: no lease to wait for
        assert [a.status for a in nap.attempts] == ["interrupted"]
        assert "released" in (nap.attempts[0].error or "")

        third = start_worker(postgres_schema_url, "third", "--lease-seconds", "60")  # no lapse could explain it
        await _wait_done(runner, [quick, long], timeout=30)
        results = [await runner.get_execution(e) for e in (quick, long)]
    assert third.stop() == 0
    assert [r.status for r in results] == ["completed", "completed"]


def test_a_worker_retries_an_unreachable_database_with_backoff_and_no_traceback(tmp_path: Path, ctl: Path) -> None:
    url = "postgresql://cloacina:s3cret-pw@127.0.0.1:1/nowhere"
    process = subprocess.Popen(
        [str(ctl), "worker", "--database-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CLOACINA_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        while sum("Retrying in" in line for line in lines) < 3:
            line = process.stderr.readline()
            assert line, f"the worker exited ({process.wait()}):\n{''.join(lines)}"
            lines.append(line)
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(lines) + rest
    assert process.returncode == 0
    assert "Traceback" not in text
    assert "s3cret-pw" not in text
    retries = [line for line in lines if "Retrying in" in line]
    assert all("postgresql://cloacina:***@127.0.0.1:1/nowhere" in line for line in retries)
    assert [r.split("Retrying in ")[1].split("s ")[0] for r in retries] == ["0.5", "1", "2"]


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_sigterm_while_the_worker_is_still_starting_stops_it_cleanly(
    postgres_schema_url: str, start_worker: Any
) -> None:
    """A worker told to stop before its loop runs (discovery, connecting) still stops with status 0."""
    worker = start_worker(postgres_schema_url, "early", "--quiet")
    deadline = time.monotonic() + 60
    while not _catches(worker.pid, signal.SIGTERM):  # the first moment our code handles SIGTERM
        assert worker.process.poll() is None, worker.output()
        assert time.monotonic() < deadline, "the worker never installed its SIGTERM handler"
        time.sleep(0.005)
    assert worker.stop() == 0, worker.output()
    assert "Traceback" not in worker.output()


def test_a_worker_refuses_sqlite(tmp_path: Path, ctl: Path) -> None:
    proc = subprocess.run(
        [str(ctl), "worker", "--database-url", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CLOACINA_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 1
    assert "needs PostgreSQL" in proc.stderr
    assert "Traceback" not in proc.stderr


assert sys.platform != "win32"  # signals as POSIX has them


def test_cli_run_distributed_waits_for_the_workers_and_detach_only_stores(
    postgres_schema_url: str, start_worker: StartWorker, scale_site: Path, tmp_path: Path, ctl: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(scale_site), "CLOACINA_HOME": str(tmp_path / "home")}
    base = [str(ctl), "run", "scale::pipeline", "--database-url", postgres_schema_url, "--distributed"]
    detached = subprocess.run([*base, "--detach"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert detached.returncode == 0, detached.stderr
    assert "`cloacina-ctl worker` (or `serve`) processes sharing this database run it" in detached.stderr
    worker = start_worker(postgres_schema_url, "cli")
    waited = subprocess.run([*base, "--json"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert worker.stop() == 0
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["status"] == "completed"
    assert result["context"]["total"] == 14
    assert f"completed public::scale::pipeline load (execution {detached.stdout.strip()[:8]}" in worker.output()

    sqlite = [str(ctl), "run", "scale::pipeline", "--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--distributed"]
    refused = subprocess.run(sqlite, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert refused.returncode == 1
    assert "cloacina-ctl run --distributed needs PostgreSQL" in refused.stderr

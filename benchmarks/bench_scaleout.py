"""Scale-out benchmark: the ``parallel`` shape run by 1, 2 and 4 ``cloacina-ctl worker`` processes on PostgreSQL.

    python benchmarks/bench_scaleout.py [--workflows 300] [--workers 1,2,4] [--concurrency 32] [--rounds 1]
                                         [--no-inprocess]

For each worker count: a fresh schema, that many real ``cloacina-ctl worker`` processes (started and
serving before the clock starts), then ``--workflows`` executions of ``parallel`` (setup → three
batches → merge, 5 tasks) stored in one transaction; the clock stops when the last one has finished.
Prints workflows/s, tasks/s and the scaling efficiency, throughput_n / (n x throughput_1), beside the
same executions run in-process (``DefaultRunner``, ``max_concurrent_tasks`` = ``--concurrency``) on
the same database, so the cost of distribution shows against the engine's own figure. PostgreSQL
is ``$CLOACINA_BENCH_POSTGRES_URL`` or ``$CLOACINA_TEST_POSTGRES_URL`` (``synchronous_commit=on``).
Workers, PostgreSQL and this script share the machine's CPUs: on a small machine the efficiency says
more about the cores than about the coordination.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from _pg import postgres_schema
from rich.console import Console
from rich.table import Table

from cloacina_host._defaults import DEFAULT_WORKER_CONCURRENCY

FLOWS = """
from cloacina_workflow import Context, task, workflow


@workflow(name="parallel", package="bench_scale")
class parallel:
    @task
    async def setup(ctx: Context) -> None:
        ctx.set("items", list(range(30)))

    @task(dependencies=["setup"])
    async def batch_1(ctx: Context) -> None:
        ctx.set("sum_1", sum(ctx.get("items")[0:10]))

    @task(dependencies=["setup"])
    async def batch_2(ctx: Context) -> None:
        ctx.set("sum_2", sum(ctx.get("items")[10:20]))

    @task(dependencies=["setup"])
    async def batch_3(ctx: Context) -> None:
        ctx.set("sum_3", sum(ctx.get("items")[20:30]))

    @task(dependencies=["batch_1", "batch_2", "batch_3"])
    async def merge(ctx: Context) -> None:
        ctx.set("total", ctx.get("sum_1") + ctx.get("sum_2") + ctx.get("sum_3"))
"""
TASKS = 5
CTL = Path(sys.executable).with_name("cloacina-ctl")


@dataclass
class Row:
    workers: int  # 0: in-process
    seconds: float
    workflows_s: float
    tasks_s: float


def _site(root: Path) -> Path:
    """A directory with an installed plugin offering ``bench_scale::parallel`` (module + dist-info)."""
    site = root / "site"
    site.mkdir()
    (site / "cloacina_bench_scale_flows.py").write_text(FLOWS, encoding="utf-8")
    info = site / "cloacina_bench_scale_flows-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-bench-scale-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cloacina.workflows]\nparallel = cloacina_bench_scale_flows:parallel\n")
    return site


def _submit_all(url: str, site: Path, count: int) -> tuple[list[str], float]:
    """Store ``count`` executions in one transaction (roots ready, workers notified at commit)."""
    sys.path.insert(0, str(site))
    import cloacina_bench_scale_flows as flows

    from cloacina_host._storage import _claims as c
    from cloacina_host._storage import open_database
    from cloacina_host._storage._ops import execution_row, task_rows
    from cloacina_host._storage._queries import dumps

    wf = flows.parallel
    db = open_database(url)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    try:
        with db.write("submitting the benchmark's executions") as conn:
            for eid in ids:
                execution = execution_row(
                    eid,
                    tenant="public",
                    namespace="public::bench_scale::parallel",
                    package="bench_scale",
                    workflow="parallel",
                    package_version="1.0",
                    workflow_fingerprint=None,
                    context_in=dumps({}),
                    created_at=time.time(),
                )
                roots = [tid for tid in wf.order if not wf.tasks[tid].dependencies]
                tasks = task_rows(eid, wf.order, ready=roots)
                c.insert_execution(conn, execution=execution, tasks=tasks)
        return ids, time.perf_counter()
    finally:
        db.dispose()


def _wait_done(url: str, ids: list[str], timeout: float) -> float:
    from sqlalchemy import func, select

    from cloacina_host._storage import open_database
    from cloacina_host._storage._schema import executions

    db = open_database(url, migrate_schema=False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with db.read("counting") as conn:  # the schema is this round's: every execution in it is ours
                counts = dict(
                    conn.execute(select(executions.c.status, func.count()).group_by(executions.c.status)).all()
                )
            left, failed = counts.get("running", 0), counts.get("failed", 0)
            if sum(counts.values()) < len(ids):
                raise SystemExit(f"only {sum(counts.values())} of {len(ids)} executions were stored")
            if not left:
                if failed:
                    raise SystemExit(f"{failed} executions failed; see the workers' logs")
                return time.perf_counter()
            if time.monotonic() > deadline:
                raise SystemExit(f"{left} executions still running after {timeout}s")
            time.sleep(0.02)
    finally:
        db.dispose()


def _round(base: str, site: Path, logs: Path, workers: int, args: argparse.Namespace) -> Row:
    with postgres_schema(base) as url:
        from cloacina_host._storage import open_database

        open_database(url).dispose()  # migrate before the workers race to
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        # the workers' connections carry this round's name: other workers LISTENing on the same database
        # (another schema, another user of the machine) must not count as this round's
        app = f"cloacina-bench-{url.rsplit('%3D', 1)[-1]}"
        env = {**os.environ, "PYTHONPATH": path, "CLOACINA_HOME": str(logs / "home"), "PGAPPNAME": app}
        env.pop("CLOACINA_DATABASE_URL", None)
        procs = []
        for i in range(workers):
            log = logs / f"w{workers}-{i}.log"
            with open(log, "wb") as err:
                cmd = [str(CTL), "worker", "--database-url", url, "--concurrency", str(args.concurrency)]
                procs.append((subprocess.Popen([*cmd, "--quiet"], stderr=err, env=env), log))
        try:
            _wait_listening(url, workers, app)  # every worker serves before the clock starts
            ids, started = _submit_all(url, site, args.workflows)
            finished = _wait_done(url, ids, timeout=600)
        finally:
            for proc, _ in procs:
                proc.terminate()
            for proc, log in procs:
                if proc.wait(60) != 0:
                    print(log.read_text(), file=sys.stderr)
    seconds = finished - started
    return Row(workers, seconds, args.workflows / seconds, args.workflows * TASKS / seconds)


def _inprocess(base: str, site: Path, args: argparse.Namespace) -> Row:
    """The same executions run by one ``DefaultRunner`` on the same database (a fresh schema)."""
    import asyncio

    sys.path.insert(0, str(site))
    import cloacina_bench_scale_flows as flows

    from cloacina_host import DefaultRunner
    from cloacina_host._discovery import WorkflowCatalog

    async def run(url: str) -> float:
        async with DefaultRunner(
            url, catalog=WorkflowCatalog(), recover=False, max_concurrent_tasks=args.concurrency
        ) as runner:
            runner.add_workflow(flows.parallel)
            name = "bench_scale::parallel"
            for _ in range(10):  # warm up: connections, statement caches
                assert (await runner.execute(name)).ok
            started = time.perf_counter()
            results = await asyncio.gather(*(runner.execute(name) for _ in range(args.workflows)))
            seconds = time.perf_counter() - started
            failed = [r for r in results if not r.ok]
            if failed:
                raise SystemExit(f"{len(failed)} in-process executions failed: {failed[0].error}")
            return seconds

    with postgres_schema(base) as url:
        seconds = asyncio.run(run(url))
    return Row(0, seconds, args.workflows / seconds, args.workflows * TASKS / seconds)


def _wait_listening(url: str, workers: int, app: str, timeout: float = 60.0) -> None:
    """Until ``workers`` connections named ``app`` LISTEN on the workers' channel (each worker has started serving)."""
    import psycopg

    base = url.split("?")[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(base, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN cloacina_tasks%%' "
                "AND application_name = %s AND datname = current_database()",
                (app,),
            ).fetchone()
            if row is not None and row[0] >= workers:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"only {row[0] if row else 0} of {workers} workers started serving")
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=300, help="executions per round (default 300)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_WORKER_CONCURRENCY,
        help=f"--concurrency of each worker (default {DEFAULT_WORKER_CONCURRENCY}, the worker's own)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds per worker count; the median is shown")
    parser.add_argument(
        "--inprocess",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the executions in-process on the same database (default: yes)",
    )
    args = parser.parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    base = os.environ.get("CLOACINA_BENCH_POSTGRES_URL") or os.environ.get("CLOACINA_TEST_POSTGRES_URL")
    if not base:
        console.print("Scale-out benchmark skipped: set CLOACINA_BENCH_POSTGRES_URL (or CLOACINA_TEST_POSTGRES_URL).")
        return 0
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cloacina-bench-scale-") as tmp:
        site = _site(Path(tmp))
        if args.inprocess:
            console.print(f"[dim]in-process, {args.workflows} workflows...[/dim]")
            rounds = [_inprocess(base, site, args) for _ in range(args.rounds)]
            rows.append(sorted(rounds, key=lambda r: r.seconds)[len(rounds) // 2])
        for n in counts:
            console.print(f"[dim]{n} worker(s), {args.workflows} workflows...[/dim]")
            rounds = [_round(base, site, Path(tmp), n, args) for _ in range(args.rounds)]
            rows.append(sorted(rounds, key=lambda r: r.seconds)[len(rounds) // 2])
    one = next((r for r in rows if r.workers == 1), None)
    cpus = os.cpu_count() or 1
    table = Table(
        title=f"Cloacina scale-out, parallel shape ({TASKS} tasks), PostgreSQL, {cpus} CPU(s), "
        f"Python {sys.version.split()[0]}",
        caption=f"{args.workflows} workflows per round, --concurrency {args.concurrency} per worker; "
        f"workers, PostgreSQL and the submitter share {cpus} CPU(s), so past {cpus} busy processes "
        "more workers cannot add throughput",
    )
    for column in ("workers", "seconds", "workflows/s", "tasks/s", "scaling efficiency"):
        table.add_column(column, justify="right")
    for r in rows:
        if r.workers == 0:
            label, efficiency = f"in-process (max_concurrent_tasks {args.concurrency})", "-"
        else:
            label = str(r.workers)
            efficiency = "-" if one is None else f"{r.tasks_s / (r.workers * one.tasks_s):.0%}"
        table.add_row(label, f"{r.seconds:.2f}", f"{r.workflows_s:,.0f}", f"{r.tasks_s:,.0f}", efficiency)
    console.print(table)
    console.print("scaling efficiency = throughput with n workers / (n x throughput with 1 worker)")
    if cpus <= 2:
        console.print(f"note: this machine has {cpus} CPU(s); run it on more cores to see coordination cost alone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

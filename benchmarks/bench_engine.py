"""Engine benchmark: three workflow shapes, run one at a time and 150 at once, on SQLite and PostgreSQL.

    python benchmarks/bench_engine.py [--runs 200] [--workflows 150] [--backends sqlite,postgresql] [--check]

Sequential: per-workflow latency (p50, p95) of ``await runner.execute(...)``, one after another.
Concurrent: ``--workflows`` executions at once with ``max_concurrent_tasks=32``: workflows/s, tasks/s
(median of three rounds). SQLite is a file in a temporary directory, WAL mode, ``synchronous=FULL``:
every state change the engine waits for is on disk. PostgreSQL (``$CLOACINA_BENCH_POSTGRES_URL`` or
``$CLOACINA_TEST_POSTGRES_URL``) runs in a throw-away schema with ``synchronous_commit=on``.
``--check`` exits 1 if a target is missed (pipeline >= 1,500 tasks/s concurrent and a 3-task
sequential workflow <= 10 ms p50, both on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, Workflow, task, workflow

PIPELINE_TARGET_TASKS_S = 1500.0
SEQUENTIAL_TARGET_P50_MS = 10.0


@workflow(name="simple", package="bench")
class simple:
    @task
    async def hello(ctx: Context) -> None:
        ctx.set("hello", "world")


@workflow(name="pipeline", package="bench")
class pipeline:
    @task
    async def extract(ctx: Context) -> None:
        ctx.set("numbers", list(range(10)))

    @task(dependencies=["extract"])
    async def transform(ctx: Context) -> None:
        ctx.set("squares", [n * n for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    async def load(ctx: Context) -> None:
        ctx.set("total", sum(ctx.get("squares")))


@workflow(name="parallel", package="bench")
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


SHAPES: tuple[Workflow, ...] = (simple, pipeline, parallel)


@dataclass
class Row:
    backend: str
    durability: str
    shape: str
    tasks: int
    p50_ms: float
    p95_ms: float
    workflows_s: float
    tasks_s: float
    commits: int
    writes: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _bench_shape(url: str, backend: str, wf: Workflow, runs: int, workflows: int) -> Row:
    catalog = WorkflowCatalog()
    async with DefaultRunner(url, catalog=catalog, recover=False, max_concurrent_tasks=32) as runner:
        runner.add_workflow(wf)
        name = f"bench::{wf.name}"
        for _ in range(10):  # warm up: connections, statement caches
            assert (await runner.execute(name)).ok
        latencies = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await runner.execute(name)
            latencies.append((time.perf_counter() - started) * 1000)
            assert result.ok, result.error
        before = runner.writer.stats.batches, runner.writer.stats.writes
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            results = await asyncio.gather(*(runner.execute(name) for _ in range(workflows)))
            rounds.append(time.perf_counter() - started)
            assert all(r.ok for r in results)
        commits = (runner.writer.stats.batches - before[0]) // 3
        writes = (runner.writer.stats.writes - before[1]) // 3
        durability = runner.database.durability
    elapsed = statistics.median(rounds)
    return Row(
        backend=backend,
        durability=durability,
        shape=wf.name,
        tasks=len(wf.tasks),
        p50_ms=statistics.median(latencies),
        p95_ms=_percentile(latencies, 0.95),
        workflows_s=workflows / elapsed,
        tasks_s=workflows * len(wf.tasks) / elapsed,
        commits=commits,
        writes=writes,
    )


@contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cloacina-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def _postgres_url(base: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="sequential executions per shape (default 200)")
    parser.add_argument("--workflows", type=int, default=150, help="concurrent executions per round (default 150)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--check", action="store_true", help="exit 1 when a SQLite target is missed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    pg = os.environ.get("CLOACINA_BENCH_POSTGRES_URL") or os.environ.get("CLOACINA_TEST_POSTGRES_URL")
    rows: list[Row] = []
    notes: list[str] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgresql" and not pg:
            notes.append("PostgreSQL skipped: set CLOACINA_BENCH_POSTGRES_URL (or CLOACINA_TEST_POSTGRES_URL).")
            continue
        for wf in SHAPES:
            console.print(f"[dim]{backend}: {wf.name}...[/dim]")
            with _sqlite_url() if backend == "sqlite" else _postgres_url(pg or "") as url:
                rows.append(asyncio.run(_bench_shape(url, backend, wf, args.runs, args.workflows)))

    durability = {r.backend: r.durability for r in rows}
    table = Table(
        title=f"Cloacina engine, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
        caption="; ".join(f"{b}: {d}" for b, d in durability.items()) + "; max_concurrent_tasks=32",
    )
    for column, justify in [
        ("backend", "left"),
        ("shape", "left"),
        ("tasks", "right"),
        ("seq p50 ms", "right"),
        ("seq p95 ms", "right"),
        (f"x{args.workflows} workflows/s", "right"),
        ("tasks/s", "right"),
        ("commits/round", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.backend,
            r.shape,
            str(r.tasks),
            f"{r.p50_ms:.2f}",
            f"{r.p95_ms:.2f}",
            f"{r.workflows_s:,.0f}",
            f"{r.tasks_s:,.0f}",
            f"{r.commits} ({r.writes} writes)",
        )
    console.print(table)
    for note in notes:
        console.print(note)

    missed = False
    for r in rows:
        if r.backend != "sqlite" or r.shape != "pipeline":
            continue
        ok_rate = r.tasks_s >= PIPELINE_TARGET_TASKS_S
        ok_p50 = r.p50_ms <= SEQUENTIAL_TARGET_P50_MS
        missed |= not (ok_rate and ok_p50)
        console.print(
            f"target pipeline concurrent >= {PIPELINE_TARGET_TASKS_S:,.0f} tasks/s: {r.tasks_s:,.0f} "
            f"{'[green]met[/green]' if ok_rate else '[red]MISSED[/red]'}; "
            f"sequential 3-task p50 <= {SEQUENTIAL_TARGET_P50_MS:.0f} ms: {r.p50_ms:.2f} ms "
            f"{'[green]met[/green]' if ok_p50 else '[red]MISSED[/red]'}"
        )
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Engine benchmark: the workflow shapes one at a time and many at once, on SQLite and PostgreSQL, in one table.

    python benchmarks/bench_engine.py [--runs 200] [--workflows 150,1000] [--backends sqlite,postgresql]
                                      [--baseline GITREF] [--check]

For each backend and shape, a fresh process (so that its peak RSS is its own) and a fresh database:
sequential latency (p50, p95) of ``await runner.execute(...)``, one after another, then ``N``
executions at once with ``max_concurrent_tasks=32`` for the first ``--workflows`` figure (workflows/s,
tasks/s: the median of three rounds); ``pipeline`` (3 tasks in a chain) runs again, in a process of
its own, at each further ``--workflows`` figure. Each row gives the process's peak RSS and the memory
per in-flight workflow: (peak RSS - RSS of the idle, warmed-up host) / N. SQLite is a file in a
temporary directory, WAL mode, ``synchronous=FULL``: every state change the engine waits for is on
disk; the fsync of this disk is measured and printed, as it bounds the sequential latency.
PostgreSQL (``$CLOACINA_BENCH_POSTGRES_URL`` or ``$CLOACINA_TEST_POSTGRES_URL``) runs in a throw-away
schema with ``synchronous_commit=on``.

``--baseline REF`` (e.g. ``HEAD~3``) runs every row for the tree of that git commit too (first on
``PYTHONPATH``, same interpreter and dependencies), each right before this tree's, side by side.
``--check`` exits 1 if a target of issue 11 is missed: ``pipeline`` >= 5,000 tasks/s on SQLite at every
``--workflows`` figure and >= 4,500 on PostgreSQL; a sequential 3-task workflow <= 2 ms p50 on SQLite;
at most 10 KB per in-flight workflow above the idle host (the 1,000-at-once rows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _baseline import checkout, environment
from _pg import postgres_schema
from rich.console import Console
from rich.table import Table

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, Workflow, task, workflow

SQLITE_PIPELINE_TASKS_S = 5000.0
POSTGRES_PIPELINE_TASKS_S = 4500.0
SEQUENTIAL_P50_MS = 2.0
KB_PER_WORKFLOW = 10.0
MEMORY_CHECKED_AT = 1000  # in-flight workflows of the rows whose memory is checked
ROUNDS = 3
THIS_TREE = "this tree"


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


_ALL: tuple[Workflow, ...] = (simple, pipeline, parallel)
SHAPES: dict[str, Workflow] = {wf.name: wf for wf in _ALL}


@dataclass
class Row:
    tree: str  # "this tree", or the --baseline commit
    backend: str
    durability: str
    shape: str
    tasks: int
    workflows: int  # executions at once
    p50_ms: float | None  # sequential, None when not measured in this run
    p95_ms: float | None
    workflows_s: float
    tasks_s: float
    commits: int
    writes: int
    idle_rss_kb: int | None
    peak_rss_kb: int | None

    @property
    def kb_per_workflow(self) -> float | None:
        if self.idle_rss_kb is None or self.peak_rss_kb is None:
            return None
        return max(0, self.peak_rss_kb - self.idle_rss_kb) / self.workflows


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _rss_kb() -> int | None:
    """This process's resident set now, in KiB (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, AttributeError):
        return None


def _peak_rss_kb() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


async def _measure(url: str, tree: str, backend: str, shape: str, runs: int, workflows: int) -> Row:
    wf = SHAPES[shape]
    catalog = WorkflowCatalog()
    async with DefaultRunner(url, catalog=catalog, recover=False, max_concurrent_tasks=32) as runner:
        runner.add_workflow(wf)
        name = f"bench::{wf.name}"
        for _ in range(10):  # warm up: connections, statement caches
            assert (await runner.execute(name)).ok
        idle = _rss_kb()
        latencies = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await runner.execute(name)
            latencies.append((time.perf_counter() - started) * 1000)
            assert result.ok, result.error
        before = runner.writer.stats.batches, runner.writer.stats.writes
        rounds = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            results = await asyncio.gather(*(runner.execute(name) for _ in range(workflows)))
            rounds.append(time.perf_counter() - started)
            assert all(r.ok for r in results)
            del results
        commits = (runner.writer.stats.batches - before[0]) // ROUNDS
        writes = (runner.writer.stats.writes - before[1]) // ROUNDS
        durability = runner.database.durability
    elapsed = statistics.median(rounds)
    return Row(
        tree=tree,
        backend=backend,
        durability=durability,
        shape=wf.name,
        tasks=len(wf.tasks),
        workflows=workflows,
        p50_ms=statistics.median(latencies) if latencies else None,
        p95_ms=_percentile(latencies, 0.95) if latencies else None,
        workflows_s=workflows / elapsed,
        tasks_s=workflows * len(wf.tasks) / elapsed,
        commits=commits,
        writes=writes,
        idle_rss_kb=idle,
        peak_rss_kb=_peak_rss_kb(),
    )


def _run_child(
    url: str, tree: str, backend: str, shape: str, runs: int, workflows: int, env: dict[str, str] | None = None
) -> Row:
    """One measurement in a process of its own (its peak RSS is that measurement's), of ``env``'s code."""
    spec = {"url": url, "tree": tree, "backend": backend, "shape": shape, "runs": runs, "workflows": workflows}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {tree} {backend} {shape} x{workflows} run failed:\n{done.stderr}")
    return Row(**json.loads(done.stdout.strip().splitlines()[-1]))


def _fsync_ms(directory: str, count: int = 100) -> float:
    """The median time of an fsync after a 4 KiB write in ``directory``: a durable commit costs at least that."""
    path = Path(directory) / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        times = []
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times)


@contextmanager
def _sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cloacina-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _table(rows: list[Row]) -> Table:
    durability = {r.backend: r.durability for r in rows}
    table = Table(
        title=f"Cloacina engine, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
        caption="; ".join(f"{b}: {d}" for b, d in durability.items())
        + "; max_concurrent_tasks=32; KB/workflow: (peak RSS - idle host RSS) / workflows at once",
    )
    several = len({r.tree for r in rows}) > 1
    for column, justify in [
        *([("tree", "left")] if several else []),
        ("backend", "left"),
        ("shape", "left"),
        ("tasks", "right"),
        ("seq p50 ms", "right"),
        ("seq p95 ms", "right"),
        ("at once", "right"),
        ("workflows/s", "right"),
        ("tasks/s", "right"),
        ("commits/round", "right"),
        ("peak RSS MB", "right"),
        ("KB/workflow", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        per = r.kb_per_workflow
        table.add_row(
            *([r.tree] if several else []),
            r.backend,
            r.shape,
            str(r.tasks),
            _ms(r.p50_ms),
            _ms(r.p95_ms),
            f"{r.workflows:,}",
            f"{r.workflows_s:,.0f}",
            f"{r.tasks_s:,.0f}",
            f"{r.commits} ({r.writes} writes)",
            "" if r.peak_rss_kb is None else f"{r.peak_rss_kb / 1024:.0f}",
            "" if per is None else f"{per:.1f}",
        )
    return table


def _verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]MISSED[/red]"


def _checks(rows: list[Row]) -> list[tuple[str, bool]]:
    """Each target of issue 11 the rows measure: (what was asked and measured, met)."""
    checks = []
    for r in rows:
        if r.shape != "pipeline":
            continue
        target = SQLITE_PIPELINE_TASKS_S if r.backend == "sqlite" else POSTGRES_PIPELINE_TASKS_S
        checks.append(
            (f"{r.backend} pipeline x{r.workflows:,} >= {target:,.0f} tasks/s: {r.tasks_s:,.0f}", r.tasks_s >= target)
        )
        if r.backend == "sqlite" and r.p50_ms is not None:
            checks.append(
                (
                    f"sqlite sequential 3-task p50 <= {SEQUENTIAL_P50_MS:g} ms: {r.p50_ms:.2f} ms",
                    r.p50_ms <= SEQUENTIAL_P50_MS,
                )
            )
        per = r.kb_per_workflow
        if r.workflows >= MEMORY_CHECKED_AT and per is not None:
            checks.append(
                (
                    f"{r.backend} x{r.workflows:,} memory <= {KB_PER_WORKFLOW:g} KB per in-flight workflow: "
                    f"{per:.1f} KB",
                    per <= KB_PER_WORKFLOW,
                )
            )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="sequential executions per shape (default 200)")
    parser.add_argument(
        "--workflows",
        default="150,1000",
        help="executions at once, comma-separated: every shape at the first, pipeline at each (default 150,1000)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ", ".join(SHAPES))
    parser.add_argument("--baseline", metavar="GITREF", help="also run every row for this git commit, side by side")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one measurement, as JSON, in a process of its own
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        spec: dict[str, Any] = json.loads(args.child)
        row = asyncio.run(
            _measure(spec["url"], spec["tree"], spec["backend"], spec["shape"], spec["runs"], spec["workflows"])
        )
        print(json.dumps(asdict(row)))
        return 0

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    pg = os.environ.get("CLOACINA_BENCH_POSTGRES_URL") or os.environ.get("CLOACINA_TEST_POSTGRES_URL")
    counts = [int(n) for n in args.workflows.split(",") if n.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown or not counts:
        parser.error(f"unknown shape(s) {', '.join(unknown)}" if unknown else "--workflows names no count")
    rows: list[Row] = []
    notes: list[str] = []
    trees: dict[str, dict[str, str] | None] = {}
    scratch = tempfile.TemporaryDirectory(prefix="cloacina-bench-baseline-")
    if args.baseline:
        trees[args.baseline] = environment(checkout(args.baseline, Path(scratch.name)))
    trees[THIS_TREE] = None
    fsync: float | None = None
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgresql" and not pg:
            notes.append("PostgreSQL skipped: set CLOACINA_BENCH_POSTGRES_URL (or CLOACINA_TEST_POSTGRES_URL).")
            continue
        runs = [(shape, counts[0], args.runs) for shape in shapes]
        runs += [("pipeline", n, 0) for n in counts[1:] if "pipeline" in shapes]
        for shape, workflows, sequential in runs:
            console.print(f"[dim]{backend}: {shape}, {sequential} one by one, {workflows:,} at once...[/dim]")
            for tree, env in trees.items():  # the baseline's row right before this tree's, each on a fresh database
                with _sqlite_url() if backend == "sqlite" else postgres_schema(pg or "", "bench") as url:
                    if backend == "sqlite" and fsync is None:
                        fsync = _fsync_ms(str(Path(url.removeprefix("sqlite:///")).parent))
                        notes.append(f"An fsync on this disk takes {fsync:.2f} ms now (median of 100, 4 KiB writes).")
                    rows.append(_run_child(url, tree, backend, shape, sequential, workflows, env))
    scratch.cleanup()

    console.print(_table(rows))
    for note in notes:
        console.print(note)
    checks = _checks([r for r in rows if r.tree == THIS_TREE])
    for text, ok in checks:
        console.print(f"target {text} {_verdict(ok)}")
    missed = any(not ok for _, ok in checks)
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())

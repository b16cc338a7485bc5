"""API load benchmark: a real ``cloacina-ctl server`` driven by 50 HTTP clients at once for 60 s, SQLite and PostgreSQL.

    python benchmarks/bench_api.py [--clients 50] [--seconds 60] [--backends sqlite,postgresql] [--drain-timeout 600]

For each backend: a temporary home and a fresh database (a SQLite file, or a throw-away schema of
``$CLOACINA_BENCH_POSTGRES_URL`` / ``$CLOACINA_TEST_POSTGRES_URL``), a ``write`` key made with
``cloacina-ctl api-keys create``, and ``cloacina-ctl server`` on a free loopback port. A small
package (two tasks that print a line each), built once with ``cloacina-ctl package``, is uploaded
over the API. Then ``--clients`` clients (``httpx.AsyncClient`` each, one kept-alive connection)
loop for ``--seconds`` (``$CLOACINA_BENCH_API_SECONDS`` changes the default): submit an execution,
read its status, read the logs of an execution submitted earlier (any client's), list the newest
executions. Printed per request kind and overall: count, requests/s, p50, p99 and max latency,
errors (any non-2xx answer or exception; each listed at the end with its status and body). Then the
backlog drains (within ``--drain-timeout``): how many of the submitted executions completed, and
how long after the load stopped the last one ended; the CPU time the server process and the clients
spent per request, the server's peak RSS (VmHWM) and the machine's load average (on a shared
machine, latency is mostly the wait for a CPU: compare the CPU per request between runs).

Exits 1 on any error, failed execution or execution still unfinished at the drain deadline. The
server, its task workers, PostgreSQL and the clients share the machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _pg import postgres_schema
from rich.console import Console
from rich.table import Table

CTL = Path(sys.executable).with_name("cloacina-ctl")
LISTENING = re.compile(r"listening on (http://\S+)")
KINDS = ("submit", "status", "logs", "list")
WORKFLOW = "api_bench::api_bench"
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0

PACKAGE_PYPROJECT = """
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "cloacina-api-bench"
version = "1.0.0"
requires-python = ">=3.10"
dependencies = ["cloacina-workflow>=0.1"]

[project.entry-points."cloacina.workflows"]
api_bench = "cloacina_api_bench:api_bench"

[tool.hatch.build.targets.wheel]
packages = ["cloacina_api_bench"]
"""
PACKAGE_SOURCE = """
from cloacina_workflow import Context, task, workflow


@workflow(name="api_bench", package="api_bench", description="Two small tasks that print a line each")
class api_bench:
    @task
    def fetch(ctx: Context) -> None:
        print("fetching item", ctx.get("n", 0))
        ctx.set("value", ctx.get("n", 0) * 2)

    @task(dependencies=["fetch"])
    async def report(ctx: Context) -> None:
        print("value is", ctx.get("value"))
        ctx.set("reported", True)
"""


@dataclass
class Failure:
    kind: str
    status: str  # the HTTP status, or the exception's type
    body: str


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: list[Failure] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)


@dataclass
class Result:
    backend: str
    seconds: float
    stats: Stats
    completed: int
    failed: int
    unfinished: int
    drain_s: float
    peak_rss_kb: int
    cpu_s: float  # the server process's CPU time (user + system, all threads) during the load
    client_cpu_s: float  # this process's (the clients')
    load_average: float  # the machine's 1-minute load average at the end of the load


# -- the package and the server ------------------------------------------------------------------


def _archive(root: Path) -> Path:
    """The benchmark's package, built with ``cloacina-ctl package`` (no isolation: offline)."""
    project = root / "package"
    (project / "cloacina_api_bench").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PACKAGE_PYPROJECT, encoding="utf-8")
    (project / "cloacina_api_bench" / "__init__.py").write_text(PACKAGE_SOURCE, encoding="utf-8")
    out = root / "api-bench.cloacina"
    cmd = [str(CTL), "package", str(project), "-o", str(out), "--no-isolation"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cloacina-ctl package failed ({proc.returncode}):\n{proc.stderr}")
    return out


@contextmanager
def _sqlite_url(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root / 'cloacina.db'}"


def _ctl_json(env: dict[str, str], *args: str) -> Any:
    cmd = [str(CTL), *args, "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cloacina-ctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


@contextmanager
def _server(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``cloacina-ctl server`` on a free loopback port; SIGTERM when done (kill if it does not stop)."""
    with log.open("wb") as out:
        cmd = [str(CTL), "server", "--host", "127.0.0.1", "--port", "0"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (found := LISTENING.search(log.read_text(errors="replace"))):
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not listen within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        yield proc, found.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (every thread; not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# -- the load ------------------------------------------------------------------------------------


async def _call(
    stats: Stats, kind: str, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> dict[str, Any] | None:
    """One request, timed; its JSON body when it succeeded, None (and an error recorded) when not."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.latencies[kind].append(time.perf_counter() - started)
        stats.errors.append(Failure(kind, type(exc).__name__, str(exc)[:300]))
        return None
    stats.latencies[kind].append(time.perf_counter() - started)
    if not 200 <= response.status_code < 300:
        stats.errors.append(Failure(kind, str(response.status_code), response.text[:300]))
        return None
    body: dict[str, Any] = response.json()
    return body


async def _client(url: str, key: str, stats: Stats, until: float, rng: random.Random, tls: ssl.SSLContext) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {key}"}
    client = httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S, verify=tls)
    async with client:
        n = 0
        while time.perf_counter() < until:
            n += 1
            body = await _call(
                stats, "submit", client, "POST", "/api/v1/executions", json={"workflow": WORKFLOW, "context": {"n": n}}
            )
            if body is not None:
                stats.submitted.append(body["execution_id"])
                await _call(stats, "status", client, "GET", f"/api/v1/executions/{body['execution_id']}")
            if stats.submitted:
                earlier = stats.submitted[rng.randrange(len(stats.submitted))]
                await _call(stats, "logs", client, "GET", f"/api/v1/executions/{earlier}/logs")
            await _call(stats, "list", client, "GET", "/api/v1/executions", params={"limit": 20})


async def _load(url: str, key: str, clients: int, seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    tls = ssl.create_default_context()  # unused on http://, but each client would build its own (slow)
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client(url, key, stats, until, random.Random(i), tls) for i in range(clients)))
    return stats, time.perf_counter() - started


def _counts(database_url: str, ids: set[str]) -> Counter[str]:
    """The status of each of ``ids`` (executions), read from the database."""
    from sqlalchemy import select

    from cloacina_host._storage import open_database
    from cloacina_host._storage._schema import executions

    db = open_database(database_url, migrate_schema=False, read_only=True)
    try:
        with db.read("counting the benchmark's executions") as conn:
            rows = conn.execute(select(executions.c.id, executions.c.status)).all()
    finally:
        db.dispose()
    return Counter(status for eid, status in rows if eid in ids)


def _drain(database_url: str, ids: set[str], timeout: float) -> tuple[Counter[str], float]:
    """Until none of ``ids`` runs any more (or ``timeout``): the statuses, and the seconds it took."""
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        counts = _counts(database_url, ids)
        if counts.get("running", 0) + counts.get("queued", 0) == 0 or time.perf_counter() > deadline:
            return counts, time.perf_counter() - started
        time.sleep(0.25)


def _run_backend(
    backend: str, database_url: str, archive: Path, root: Path, args: argparse.Namespace, console: Console
) -> Result:
    home = root / f"home-{backend}"
    env = {**os.environ, "CLOACINA_HOME": str(home), "CLOACINA_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env.pop("CLOACINA_TENANT", None)
    key = _ctl_json(env, "api-keys", "create", "--tenant", "public", "--role", "write", "--name", "bench")["key"]
    log = root / f"server-{backend}.log"
    with _server(env, log) as (proc, url):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
            uploaded = http.post(
                "/api/v1/packages",
                content=archive.read_bytes(),
                params={"filename": archive.name},
                headers={"Content-Type": "application/octet-stream"},
            )
            if uploaded.status_code != 201:
                raise SystemExit(f"uploading the package: {uploaded.status_code} {uploaded.text}")
            warm = http.post("/api/v1/executions", json={"workflow": WORKFLOW}).json()["execution_id"]
            _wait_one(http, warm)  # the package's worker process has started
        console.print(
            f"[dim]{backend}: server at {url}, package uploaded; {args.clients} clients for {args.seconds:g} s...[/dim]"
        )
        cpu_before, client_before = _cpu_s(proc.pid), time.process_time()
        stats, seconds = asyncio.run(_load(url, key, args.clients, args.seconds))
        cpu, client_cpu = _cpu_s(proc.pid) - cpu_before, time.process_time() - client_before
        load_average = os.getloadavg()[0]
        console.print(f"[dim]{backend}: waiting for {len(stats.submitted):,} executions to finish...[/dim]")
        counts, drain_s = _drain(database_url, set(stats.submitted), args.drain_timeout)
        peak = _peak_rss_kb(proc.pid)
    return Result(
        backend,
        seconds,
        stats,
        completed=counts.get("completed", 0),
        failed=sum(n for s, n in counts.items() if s not in {"completed", "running", "queued"}),
        unfinished=counts.get("running", 0) + counts.get("queued", 0) + len(stats.submitted) - sum(counts.values()),
        drain_s=drain_s,
        peak_rss_kb=peak,
        cpu_s=cpu,
        client_cpu_s=client_cpu,
        load_average=load_average,
    )


def _wait_one(http: httpx.Client, execution_id: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/api/v1/executions/{execution_id}").json()["status"]
        if status == "completed":
            return
        if status not in {"queued", "running"}:
            raise SystemExit(f"the warm-up execution ended {status}")
        time.sleep(0.1)
    raise SystemExit(f"the warm-up execution did not finish within {timeout:.0f} s")


# -- the report ----------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:,.1f}"


def _table(results: list[Result], args: argparse.Namespace) -> Table:
    cpus = os.cpu_count() or 1
    table = Table(
        title=f"Cloacina API under load: {args.clients} clients x {args.seconds:g} s, {cpus} CPU(s), "
        f"Python {sys.version.split()[0]}",
        caption="each client loops: submit, status of it, logs of an earlier one, list (limit 20); "
        "latency in ms; server, task workers, database and clients share the CPUs",
    )
    for column in ("backend", "request", "count", "req/s", "p50", "p99", "max", "errors"):
        table.add_column(column, justify="right")
    for r in results:
        everything = [v for k in KINDS for v in r.stats.latencies[k]]
        errors = Counter(f.kind for f in r.stats.errors)
        for kind, values in [*((k, r.stats.latencies[k]) for k in KINDS), ("all", everything)]:
            count = len(values)
            failed = len(r.stats.errors) if kind == "all" else errors.get(kind, 0)
            table.add_row(
                r.backend if kind == KINDS[0] else "",
                f"[bold]{kind}[/bold]" if kind == "all" else kind,
                f"{count:,}",
                f"{count / r.seconds:,.0f}",
                _ms(values, 0.50),
                _ms(values, 0.99),
                _ms(values, 1.0),
                f"[red]{failed}[/red]" if failed else "0",
            )
        table.add_section()
    return table


def _executions_table(results: list[Result]) -> Table:
    table = Table(
        title="Submitted executions after the load; CPU time per request (of the server process, of the clients)",
        caption="server CPU includes running the executions (not their task worker process); load average: "
        "the machine's, 1 min, as the load ended",
    )
    columns = ("submitted", "completed", "failed", "unfinished", "drain s", "server CPU", "client CPU")
    for column in ("backend", *columns, "server peak RSS", "load average"):
        table.add_column(column, justify="right")
    for r in results:
        requests = max(1, sum(len(v) for v in r.stats.latencies.values()))
        table.add_row(
            r.backend,
            f"{len(r.stats.submitted):,}",
            f"{r.completed:,}",
            f"[red]{r.failed}[/red]" if r.failed else "0",
            f"[red]{r.unfinished}[/red]" if r.unfinished else "0",
            f"{r.drain_s:.1f}",
            f"{r.cpu_s * 1000 / requests:.1f} ms",
            f"{r.client_cpu_s * 1000 / requests:.1f} ms",
            f"{r.peak_rss_kb / 1024:,.0f} MiB",
            f"{r.load_average:.1f}",
        )
    return table


def _default_seconds() -> float:
    return float(os.environ.get("CLOACINA_BENCH_API_SECONDS") or 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=_default_seconds(),
        help="load duration (default: $CLOACINA_BENCH_API_SECONDS, else 60)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--drain-timeout", type=float, default=600.0, help="seconds allowed for the backlog to finish (default 600)"
    )
    args = parser.parse_args(argv)
    # SIGTERM ends the run as Ctrl-C does: the server is stopped and the temporary files removed (finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    pg = os.environ.get("CLOACINA_BENCH_POSTGRES_URL") or os.environ.get("CLOACINA_TEST_POSTGRES_URL")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cloacina-bench-api-") as tmp:
        root = Path(tmp)
        console.print("[dim]building the package...[/dim]")
        archive = _archive(root)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "postgresql" and not pg:
                console.print("PostgreSQL skipped: set CLOACINA_BENCH_POSTGRES_URL (or CLOACINA_TEST_POSTGRES_URL).")
                continue
            console.print(f"[dim]{backend}: starting the server...[/dim]")
            with _sqlite_url(root) if backend == "sqlite" else postgres_schema(pg or "", "bench_api") as url:
                results.append(_run_backend(backend, url, archive, root, args, console))
    console.print(_table(results, args))
    console.print(_executions_table(results))
    bad = 0
    for r in results:
        if r.stats.errors:
            bad += len(r.stats.errors)
            console.print(f"[red]{r.backend}: {len(r.stats.errors)} errors[/red]")
            grouped = Counter((f.kind, f.status, f.body) for f in r.stats.errors)
            for (kind, status, body), n in grouped.most_common(20):
                console.print(f"  {n} x {kind} -> {status}: {body}", markup=False)
        if r.failed or r.unfinished:
            bad += r.failed + r.unfinished
            console.print(f"[red]{r.backend}: {r.failed} executions failed, {r.unfinished} unfinished[/red]")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

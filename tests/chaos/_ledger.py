"""What a chaos round checks after each kill: nothing committed is lost or run again, the rows agree.

The tasks (the scale-flows plugin, ``tests/packages/scale-flows``) append ``KEY TASK PID`` to a side
file as each run starts; an execution's ``key`` is in its stored input context. After every kill the
ledger reads the database first (one snapshot), then the side files, and checks against every earlier
observation:

- a task once seen ``completed`` is still ``completed``, with the same stored output;
- a task once seen ``completed`` has not run since: its count of runs in the side files is the count
  read right after that observation (runs are logged as they start, so a run logged later started
  after the completion was committed). A task that was running when its process died may run again;
- the rows are consistent: a task's ``attempt`` is its latest attempt row, at most one attempt of a
  task is ``running``, a completed task has exactly one completed attempt and it is the latest, a
  completed execution has only completed tasks;
- on SQLite, ``PRAGMA integrity_check`` returns ``ok``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, select, text

from cloacina_host._storage._database import parse_database_url
from cloacina_host._storage._schema import executions, task_attempts, task_executions

ReadRuns = Callable[[Path], tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[int]]]]
Key = tuple[str, str]  # (execution id, task id)


@dataclass(frozen=True)
class TaskRow:
    status: str
    attempt: int
    output: str | None
    attempts: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Snapshot:
    executions: dict[str, tuple[str, str, str | None]]  # id -> (status, key, context_out)
    tasks: dict[Key, TaskRow]
    integrity: str


def snapshot(url: str) -> Snapshot:
    """Every execution, task and attempt row, read in one transaction (repeatable read on PostgreSQL)."""
    parsed = parse_database_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    engine = create_engine(parsed) if sqlite else create_engine(parsed, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            integrity = conn.execute(text("PRAGMA integrity_check")).scalar_one() if sqlite else "ok"
            execs = {
                row.id: (row.status, json.loads(row.context_in).get("key", ""), row.context_out)
                for row in conn.execute(select(executions))
            }
            history: dict[Key, list[tuple[int, str]]] = {}
            for row in conn.execute(select(task_attempts).order_by(task_attempts.c.attempt)):
                history.setdefault((row.execution_id, row.task_id), []).append((row.attempt, row.status))
            rows = {
                (row.execution_id, row.task_id): TaskRow(
                    row.status, row.attempt, row.context_out, tuple(history.get((row.execution_id, row.task_id), []))
                )
                for row in conn.execute(select(task_executions))
            }
    finally:
        engine.dispose()
    return Snapshot(execs, rows, str(integrity))


def row_problems(snap: Snapshot) -> list[str]:
    problems = [] if snap.integrity == "ok" else [f"PRAGMA integrity_check: {snap.integrity}"]
    for (eid, tid), row in snap.tasks.items():
        where = f"task {tid} of execution {eid[:8]}"
        numbers = [a for a, _ in row.attempts]
        statuses = [s for _, s in row.attempts]
        if numbers and row.attempt != max(numbers):
            problems.append(f"{where}: attempt {row.attempt} but its latest attempt row is {max(numbers)}")
        if statuses.count("running") > 1:
            problems.append(f"{where}: {statuses.count('running')} attempts running at once")
        if row.status == "completed" and (statuses.count("completed") != 1 or statuses[-1:] != ["completed"]):
            problems.append(f"{where}: completed, but its attempts are {statuses}")
    for eid, (status, _, _) in snap.executions.items():
        if status == "completed":
            left = sorted(t for (e, t), r in snap.tasks.items() if e == eid and r.status != "completed")
            if left:
                problems.append(f"execution {eid[:8]} completed with tasks {left} not completed")
    return problems


@dataclass
class Ledger:
    """Everything seen committed so far, and the rounds run (for the summary)."""

    url: str
    out_dir: Path
    read_runs: ReadRuns
    completed: dict[Key, tuple[str | None, int]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, event: str) -> None:
        self.events.append(f"t+{time.monotonic() - self.started:6.1f}s {event}")

    def observe(self, after: str, snap: Snapshot | None = None) -> Snapshot:
        """Check the invariants now (on ``snap`` if given); raise ``AssertionError`` naming every violation."""
        snap = snap if snap is not None else snapshot(self.url)
        runs, _ = self.read_runs(self.out_dir)  # after the database: a run logged later started later
        keys = {eid: key for eid, (_, key, _) in snap.executions.items()}
        problems = row_problems(snap)
        for (eid, tid), (output, count) in self.completed.items():
            row = snap.tasks.get((eid, tid))
            where = f"task {tid} of execution {eid[:8]} (key {keys.get(eid)})"
            if row is None or row.status != "completed":
                problems.append(f"{where} was completed and is now {row.status if row else 'gone'}")
            elif row.output != output:
                problems.append(f"{where}: its committed output changed from {output!r} to {row.output!r}")
            now = runs[(keys.get(eid, ""), tid)]
            if now != count:
                problems.append(f"{where} ran again after its completion was committed ({count} -> {now} runs)")
        for (eid, tid), row in snap.tasks.items():
            if row.status == "completed" and (eid, tid) not in self.completed:
                self.completed[(eid, tid)] = (row.output, runs[(keys[eid], tid)])
        done = sum(1 for s, _, _ in snap.executions.values() if s == "completed")
        self.note(
            f"checked after {after}: {len(self.completed)} tasks and {done}/{len(snap.executions)} executions completed"
        )
        assert not problems, f"after {after}:\n  " + "\n  ".join(problems)
        return snap

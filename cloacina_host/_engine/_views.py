"""Executions as JSON documents: what ``executions list|show|logs --json`` print and the server's API returns.

One place builds them, so the command line and the HTTP API never disagree on a field.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from .._discovery import CatalogEntry, WorkflowCatalog
from .._output import OutputLine
from .._storage import AttemptRecord, ExecutionRecord

__all__ = [
    "attempt_output_json",
    "execution_detail_json",
    "execution_summary_json",
    "line_json",
    "local_seconds",
    "schedule_json",
    "trigger_json",
    "utc_seconds",
    "when",
    "workflow_graph",
    "workflow_json",
    "workflow_problems_json",
]


def when(ts: float | None) -> str | None:
    """A timestamp as ISO 8601 in UTC, to the millisecond (None stays None)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="milliseconds")


def line_json(line: OutputLine) -> dict[str, Any]:
    """A line as ``--json`` gives it: its time (ISO 8601, UTC), stream, level and text."""
    return {"t": when(line.t), "stream": line.stream, "level": line.level, "text": line.text}


def attempt_output_json(a: AttemptRecord) -> dict[str, Any]:
    """The output members of an attempt in JSON (``executions show --json`` and ``logs --json``)."""
    return {"output": [line_json(line) for line in a.output], "output_cut": a.output_cut}


def execution_summary_json(r: ExecutionRecord) -> dict[str, Any]:
    """One execution as ``executions list --json`` shows it."""
    return {
        "id": r.id,
        "workflow": r.namespace,
        "package": r.package,
        "package_version": r.package_version,
        "workflow_fingerprint": r.workflow_fingerprint,
        "status": r.shown_status,  # queued: stored detached, no host has started it yet
        "error": r.error,
        "created_at": when(r.created_at),
        "started_at": when(r.started_at),
        "rerun_of": r.rerun_of,
        "started_by": r.started_by,
        "finished_at": when(r.finished_at),
        "duration_s": r.duration_s,
    }


def execution_detail_json(r: ExecutionRecord) -> dict[str, Any]:
    """One execution with its events, tasks and attempts, as ``executions show --json`` shows it."""
    return {
        **execution_summary_json(r),
        "tenant": r.tenant,
        "context": r.context_in,
        "final_context": r.context_out,
        "cancel_requested_at": when(r.cancel_requested_at),
        "events": [
            {"seq": e.seq, "at": when(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail} for e in r.events
        ],
        "tasks": [
            {
                "task_id": t.task_id,
                "status": t.status,
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "status": a.status,
                        "started_at": when(a.started_at),
                        "finished_at": when(a.finished_at),
                        "duration_s": a.duration_s,
                        "error": a.error,
                        "traceback": a.traceback,
                        **attempt_output_json(a),
                    }
                    for a in t.attempts
                ],
                "started_at": when(t.started_at),
                "finished_at": when(t.finished_at),
                "duration_s": t.duration_s,
                "error": t.error,
                # a task that deferred itself (or waits for a retry) runs again from then
                "ready_at": when(t.ready_at) if t.status in ("deferred", "retry_wait") else None,
            }
            for t in r.tasks
        ],
    }


def utc_seconds(at: float | None) -> str | None:
    """A timestamp as ISO 8601 in UTC to the second, ``Z``-suffixed (schedules and triggers)."""
    if at is None:
        return None
    return dt.datetime.fromtimestamp(at, tz=dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def local_seconds(at: float | None, tz: str) -> str | None:
    if at is None:
        return None
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(at, tz=ZoneInfo(tz)).isoformat(timespec="seconds")


def schedule_json(state: Any) -> dict[str, Any]:
    """A live schedule (a ``_schedules.ScheduleState``) as ``schedules list --json`` shows it."""
    row = state.row
    return {
        "workflow": row.workflow_key,
        "namespace": row.namespace,
        "name": row.name,
        "cron": row.cron,
        "timezone": row.timezone,
        "context": row.context,
        "catchup": row.catchup,
        "max_catchup": row.max_catchup,
        "paused": row.paused,
        "source": row.source,
        "package_version": row.package_version,
        "next_fire": None
        if state.next_fire_at is None
        else {"utc": utc_seconds(state.next_fire_at), "local": local_seconds(state.next_fire_at, row.timezone)},
        "last_fire": None
        if row.last_fire_at is None
        else {"utc": utc_seconds(row.last_fire_at), "execution_id": row.last_execution_id},
    }


def trigger_json(row: Any) -> dict[str, Any]:
    """A live trigger (a trigger row) as ``triggers list --json`` shows it."""
    next_poll = None if row.paused else (row.last_poll_at or 0.0) + row.poll_interval_s
    return {
        "trigger": row.key,
        "package": row.package,
        "name": row.name,
        "poll_interval_s": row.poll_interval_s,
        "timeout_s": row.timeout_s,
        "workflows": [w.split("::", 1)[1] for w in row.workflows],
        "paused": row.paused,
        "source": row.source,
        "package_version": row.package_version,
        "last_poll": utc_seconds(row.last_poll_at),
        "next_poll": None if next_poll is None else utc_seconds(max(next_poll, time.time())),
        "last_fire": None
        if row.last_fire_at is None
        else {"utc": utc_seconds(row.last_fire_at), "execution_ids": list(row.last_executions)},
        "last_error": None
        if row.last_error is None
        else {"utc": utc_seconds(row.last_error_at), "error": row.last_error},
    }


def workflow_json(entry: CatalogEntry, tenant: str) -> dict[str, Any]:
    """A workflow the host can run, as ``workflows list --json`` shows it."""
    wf = entry.workflow
    return {
        "namespace": entry.namespace(tenant),
        "package": entry.package,
        "name": wf.name,
        "description": wf.description,
        "author": wf.author,
        "tasks": list(wf.order),
        "task_count": len(wf.tasks),
        "source": {
            "kind": entry.source.kind,
            "distribution": entry.source.distribution,
            "version": entry.source.version,
            "entry_point": entry.source.entry_point,
        },
        "fingerprint": entry.fingerprint,
    }


def workflow_graph(entry: CatalogEntry) -> list[dict[str, Any]]:
    """The workflow's DAG: each task (in run order) with the tasks it depends on."""
    wf = entry.workflow
    return [{"task_id": tid, "dependencies": list(wf.tasks[tid].spec.dependencies)} for tid in wf.order]


def workflow_problems_json(
    catalog: WorkflowCatalog, conflicts: dict[str, list[CatalogEntry]], tenant: str
) -> list[dict[str, Any]]:
    """What ``workflows list`` reports besides the workflows: plugins that failed to load, and workflows
    offered by more than one source (each source's entry in ``entries``, as ``workflow_json`` gives it)."""
    problems: list[dict[str, Any]] = [
        {"kind": "load", "distribution": p.distribution, "entry_point": p.entry_point, "message": str(p)}
        for p in catalog.problems
    ]
    for key, found in conflicts.items():
        error = catalog.conflict_error(key, conflicts)
        problems.append(
            {
                "kind": "conflict",
                "workflow": key,
                "sources": error.sources,
                "message": str(error),
                "entries": [workflow_json(e, tenant) for e in found],
            }
        )
    return problems

"""Server-sent event streams: ``/api/v1/executions/{id}/events`` (the execution and each of its tasks) and
``/api/v1/events`` (every execution of the tenant).

Streams are read from the database, so they show executions wherever they run (this server, another
``serve``, distributed workers). Each event is ``event: execution|task``, ``id: N`` and ``data:`` one JSON
object (``ExecutionChanged`` or ``TaskChanged``); an execution's stream ends after its final event. A
comment line is sent at once and then every ``HEARTBEAT_S`` (proxies keep the connection). When the
server stops, every stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from .._engine._history import ExecutionRecord, list_executions
from .._engine._views import execution_summary_json
from ._deps import runtime
from ._models import ExecutionChanged, TaskChanged
from ._routes_executions import find
from ._runtime import TenantRuntime

router = APIRouter(prefix="/api/v1", tags=["events"])

#: how often a stream reads the database
POLL_S = 0.25
#: a comment line this often keeps idle connections open
HEARTBEAT_S = 15.0
#: the executions the tenant-wide stream follows (the newest)
FOLLOWED = 200
_ENDED = frozenset({"completed", "failed", "cancelled"})
_SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events"}
}


def _frame(kind: str, seq: int, data: Any) -> str:
    return f"event: {kind}\nid: {seq}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class _Stream:
    """Event numbering, heartbeats and the stop signal shared by both streams."""

    def __init__(self, request: Request) -> None:
        self.closing: asyncio.Event = request.app.state.closing
        self.request = request
        self.seq = 0
        self.last_sent = time.monotonic()

    def frame(self, kind: str, data: Any) -> str:
        self.seq += 1
        self.last_sent = time.monotonic()
        return _frame(kind, self.seq, data)

    async def pause(self) -> bool:
        """Wait a poll interval; False once the server stops or the client has gone."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), POLL_S)
        return not self.closing.is_set() and not await self.request.is_disconnected()

    def heartbeat(self) -> str | None:
        if time.monotonic() - self.last_sent < HEARTBEAT_S:
            return None
        self.last_sent = time.monotonic()
        return ": keep-alive\n\n"


def _task_state(record: ExecutionRecord) -> dict[str, tuple[str, int, str | None]]:
    return {t.task_id: (t.status, len(t.attempts), t.error) for t in record.tasks}


async def _execution_events(stream: _Stream, rt: TenantRuntime, first: ExecutionRecord) -> AsyncIterator[str]:
    yield ": connected\n\n"
    record: ExecutionRecord | None = first
    shown_status: str | None = None
    tasks: dict[str, tuple[str, int, str | None]] = {}
    while record is not None:
        for task_id, state in _task_state(record).items():
            if tasks.get(task_id) != state:
                tasks[task_id] = state
                status, attempts, error = state
                changed = TaskChanged(
                    execution_id=record.id, task_id=task_id, status=status, attempts=attempts, error=error
                )
                yield stream.frame("task", changed.model_dump())
        if record.shown_status != shown_status:  # after its tasks: the final event is the execution's end
            shown_status = record.shown_status
            body = ExecutionChanged.model_validate({"execution": execution_summary_json(record)})
            yield stream.frame("execution", body.model_dump())
        if record.status in _ENDED:
            return
        if not await stream.pause():
            return
        beat = stream.heartbeat()
        if beat:
            yield beat
        record = await find(rt, record.id)


async def _tenant_events(stream: _Stream, rt: TenantRuntime, seen: dict[str, str]) -> AsyncIterator[str]:
    yield ": connected\n\n"
    while await stream.pause():
        found = await asyncio.to_thread(
            list_executions, None, home=None, tenant=rt.tenant, limit=FOLLOWED, database=rt.database
        )
        for record in reversed(found.records):  # oldest first
            if seen.get(record.id) != record.shown_status:
                seen[record.id] = record.shown_status
                body = ExecutionChanged.model_validate({"execution": execution_summary_json(record)})
                yield stream.frame("execution", body.model_dump())
        beat = stream.heartbeat()
        if beat:
            yield beat


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get("/executions/{execution_id}/events", name="executions.events", responses=_SSE_RESPONSES)
async def execution_events(
    execution_id: str,
    request: Request,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> StreamingResponse:
    """Server-sent events of one execution: its status (``event: execution``) and each task's (``event: task``)
    as they change, from its current state to its end."""
    first = await find(rt, execution_id)  # 404 before the stream starts
    return _sse(_execution_events(_Stream(request), rt, first))


@router.get("/events", name="events", responses=_SSE_RESPONSES)
async def tenant_events(request: Request, rt: TenantRuntime = Depends(runtime)) -> StreamingResponse:  # noqa: B008
    """Server-sent events of every execution of the tenant: each new execution and each change of status
    (from the moment the stream opens)."""
    found = await asyncio.to_thread(
        list_executions, None, home=None, tenant=rt.tenant, limit=FOLLOWED, database=rt.database
    )
    seen = {r.id: r.shown_status for r in found.records}
    return _sse(_tenant_events(_Stream(request), rt, seen))

"""``/api/v1/schedules`` and ``/api/v1/triggers``: list, pause, resume, and fire a trigger by hand."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Body, Depends

from .._engine._schedules import schedule_states, set_paused
from .._engine._triggers import fire_trigger_async, set_trigger_paused, trigger_rows
from .._engine._views import schedule_json, trigger_json
from ._deps import runtime
from ._models import FireRequest, SchedulesChanged, SchedulesList, TriggerChanged, TriggerFired, TriggersList
from ._runtime import TenantRuntime

router = APIRouter(prefix="/api/v1", tags=["schedules and triggers"])


@router.get("/schedules", name="schedules.list", response_model=SchedulesList)
async def list_schedules(rt: TenantRuntime = Depends(runtime)) -> SchedulesList:  # noqa: B008
    """The live cron schedules: next fire time, last fire and its execution."""
    states = await asyncio.to_thread(schedule_states, rt.database, now=time.time())
    return SchedulesList.model_validate({"tenant": rt.tenant, "schedules": [schedule_json(s) for s in states]})


async def _toggle(rt: TenantRuntime, workflow: str, name: str | None, *, paused: bool) -> SchedulesChanged:
    changed = await asyncio.to_thread(
        set_paused, rt.database, tenant=rt.tenant, workflow=workflow, name=name, paused=paused, now=time.time()
    )
    return SchedulesChanged.model_validate(
        {"paused": paused, "changed": [{"workflow": r.workflow_key, "name": r.name} for r in changed]}
    )


@router.post("/schedules/{workflow}/pause", name="schedules.pause", response_model=SchedulesChanged)
async def pause_schedules(
    workflow: str,
    name: str | None = None,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> SchedulesChanged:
    """Stop schedule ``name`` of ``workflow`` (all its schedules without ``name``) from firing."""
    return await _toggle(rt, workflow, name, paused=True)


@router.post("/schedules/{workflow}/resume", name="schedules.resume", response_model=SchedulesChanged)
async def resume_schedules(
    workflow: str,
    name: str | None = None,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> SchedulesChanged:
    """Let paused schedules fire again, from now on."""
    return await _toggle(rt, workflow, name, paused=False)


@router.get("/triggers", name="triggers.list", response_model=TriggersList)
async def list_triggers(rt: TenantRuntime = Depends(runtime)) -> TriggersList:  # noqa: B008
    """The live poll triggers: interval, subscribed workflows, last poll, fire and error."""
    rows = await asyncio.to_thread(trigger_rows, rt.database)
    return TriggersList.model_validate({"tenant": rt.tenant, "triggers": [trigger_json(r) for r in rows]})


async def _toggle_trigger(rt: TenantRuntime, name: str, *, paused: bool) -> TriggerChanged:
    row, changed = await asyncio.to_thread(
        set_trigger_paused, rt.database, tenant=rt.tenant, name=name, paused=paused, now=time.time()
    )
    return TriggerChanged(trigger=row.key, paused=paused, changed=changed)


@router.post("/triggers/{name}/pause", name="triggers.pause", response_model=TriggerChanged)
async def pause_trigger(name: str, rt: TenantRuntime = Depends(runtime)) -> TriggerChanged:  # noqa: B008
    """Stop trigger ``name`` (or ``PACKAGE::NAME``) from being polled."""
    return await _toggle_trigger(rt, name, paused=True)


@router.post("/triggers/{name}/resume", name="triggers.resume", response_model=TriggerChanged)
async def resume_trigger(name: str, rt: TenantRuntime = Depends(runtime)) -> TriggerChanged:  # noqa: B008
    """Poll a paused trigger again."""
    return await _toggle_trigger(rt, name, paused=False)


@router.post("/triggers/{name}/fire", name="triggers.fire", response_model=TriggerFired, status_code=201)
async def fire(
    name: str,
    request: FireRequest = Body(default_factory=FireRequest),  # noqa: B008
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> TriggerFired:
    """Fire the trigger by hand: one execution per subscribed workflow, started here at once."""
    row, ids = await fire_trigger_async(
        rt.database, rt.host.catalog, tenant=rt.tenant, name=name, context=request.context, now=time.time()
    )
    await rt.runner.recover()  # start them now rather than at the next pass
    workflows = [w.split("::", 1)[1] for w in row.workflows]
    started = [{"workflow": w, "execution_id": i} for w, i in zip(workflows, ids, strict=True)]
    return TriggerFired.model_validate({"trigger": row.key, "executions": started})

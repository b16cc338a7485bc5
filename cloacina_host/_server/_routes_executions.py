"""``/api/v1/executions``: submit (typed input checked first), list, show with tasks and attempts, logs,
cancel, retry, rerun — through the tenant's runner, as ``run``/``executions`` do."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Body, Depends, Query

from .._engine._history import ExecutionRecord, find_execution, list_executions
from .._engine._logs import logs_json
from .._engine._views import execution_detail_json, execution_summary_json
from ._auth import Principal, principal
from ._deps import actor, runtime
from ._models import (
    CancelResponse,
    ExecutionDetail,
    ExecutionLogs,
    ExecutionsList,
    RetryRequest,
    SubmitRequest,
    Submitted,
)
from ._runtime import TenantRuntime

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

Status = Literal["queued", "running", "completed", "failed", "cancelled"]


async def find(rt: TenantRuntime, execution_id: str) -> ExecutionRecord:
    """Execution ``execution_id`` (or a unique prefix) of the tenant; 404 when the tenant has none."""
    return await asyncio.to_thread(
        find_execution, None, home=None, tenant=rt.tenant, execution_id=execution_id, database=rt.database
    )


@router.post("", name="executions.submit", response_model=Submitted, status_code=201)
async def submit(request: SubmitRequest, rt: TenantRuntime = Depends(runtime)) -> Submitted:  # noqa: B008
    """Start an execution; its context is checked against the workflow's typed input first (422 naming the
    field; nothing stored). It runs in this server; poll it or follow its events."""
    if "::" in request.workflow:
        from .._discovery import check_tenant_of

        check_tenant_of(request.workflow, rt.tenant)
    execution_id = await rt.runner.submit(request.workflow, request.context)
    record = await find(rt, execution_id)
    return Submitted(execution_id=execution_id, workflow=record.namespace)


@router.get("", name="executions.list", response_model=ExecutionsList)
async def list_all(
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    workflow: str | None = Query(None, max_length=1000, description="NAME, PACKAGE::NAME or a namespace"),
    status: Status | None = Query(None),  # noqa: B008
    limit: int = Query(20, ge=1, le=1000),
) -> ExecutionsList:
    """The tenant's executions, newest first."""
    if workflow:
        from .._discovery import check_tenant_of

        check_tenant_of(workflow, rt.tenant)
    found = await asyncio.to_thread(
        list_executions,
        None,
        home=None,
        tenant=rt.tenant,
        workflow=workflow,
        status=status,
        limit=limit,
        database=rt.database,
    )
    return ExecutionsList.model_validate({"executions": [execution_summary_json(r) for r in found.records]})


@router.get("/{execution_id}", name="executions.show", response_model=ExecutionDetail)
async def show(execution_id: str, rt: TenantRuntime = Depends(runtime)) -> ExecutionDetail:  # noqa: B008
    """One execution with each task's status, attempts, errors and output, as ``executions show --json``."""
    return ExecutionDetail.model_validate(execution_detail_json(await find(rt, execution_id)))


@router.get("/{execution_id}/logs", name="executions.logs", response_model=ExecutionLogs)
async def logs(
    execution_id: str,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    task: str | None = Query(None, max_length=1000, description="Only this task's attempts"),
    attempt: int | None = Query(None, ge=1, description="Only attempt N (of each task shown)"),
) -> ExecutionLogs:
    """What each attempt of each task wrote, in workflow order, as ``executions logs --json`` (404 naming
    the tasks or attempts there are when ``task`` or ``attempt`` is not one of them)."""
    record = await find(rt, execution_id)
    return ExecutionLogs.model_validate(logs_json(record, task, attempt))


@router.post("/{execution_id}/cancel", name="executions.cancel", response_model=CancelResponse)
async def cancel(
    execution_id: str,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    caller: Principal = Depends(principal),  # noqa: B008
) -> CancelResponse:
    """Cancel it wherever it runs (409 when it has ended already)."""
    record = await find(rt, execution_id)
    outcome = await rt.runner.cancel(record.id, actor=actor(caller))
    return CancelResponse(execution_id=record.id, ended=outcome.ended, owner=outcome.owner, status=outcome.status)


@router.post("/{execution_id}/retry", name="executions.retry", response_model=Submitted)
async def retry(
    execution_id: str,
    request: RetryRequest = Body(default_factory=RetryRequest),  # noqa: B008
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    caller: Principal = Depends(principal),  # noqa: B008
) -> Submitted:
    """Run a finished execution's failed, skipped and cancelled tasks again (409 while it runs)."""
    record = await find(rt, execution_id)
    await rt.runner.retry(record.id, latest=request.latest, actor=actor(caller))
    return Submitted(execution_id=record.id, workflow=record.namespace)


@router.post("/{execution_id}/rerun", name="executions.rerun", response_model=Submitted, status_code=201)
async def rerun(
    execution_id: str,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    caller: Principal = Depends(principal),  # noqa: B008
) -> Submitted:
    """Start a new execution of the same workflow with the same input."""
    record = await find(rt, execution_id)
    new_id = await rt.runner.rerun(record.id, actor=actor(caller))
    return Submitted(execution_id=new_id, workflow=record.namespace)

"""``/api/v1/workflows``: what the tenant can run (installed, embedded, registered), each with its DAG."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from .._engine._views import workflow_graph, workflow_json, workflow_problems_json
from ._deps import runtime
from ._models import WorkflowsList
from ._runtime import TenantRuntime

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.get("", name="workflows.list", response_model=WorkflowsList)
async def list_workflows(rt: TenantRuntime = Depends(runtime)) -> WorkflowsList:  # noqa: B008
    """Every workflow the tenant can run, as ``workflows list --json`` shows it, plus its graph; and the
    problems (plugins that failed to load, workflows offered by more than one source)."""
    catalog = rt.host.catalog
    current, conflicts = await asyncio.to_thread(catalog.snapshot)
    entries = sorted(current.values(), key=lambda e: e.key)
    workflows = [{**workflow_json(e, rt.tenant), "graph": workflow_graph(e)} for e in entries]
    problems = workflow_problems_json(catalog, conflicts, rt.tenant)
    return WorkflowsList.model_validate({"tenant": rt.tenant, "workflows": workflows, "problems": problems})

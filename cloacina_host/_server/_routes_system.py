"""Health, readiness, metrics (public) and ``whoami``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .._engine._gauges import database_unready
from ._auth import Principal, principal
from ._metrics import CONTENT_TYPE, Metrics
from ._models import Health, Ready, Whoami
from ._runtime import Tenants

router = APIRouter()


@router.get("/healthz", name="health", response_model=Health, tags=["system"])
async def health() -> Health:
    """The process answers (liveness)."""
    return Health(status="ok")


@router.get("/readyz", name="ready", response_model=Ready, responses={503: {"model": Ready}}, tags=["system"])
async def ready(request: Request) -> JSONResponse:
    """Ready: the database answers and its schema is at this host's version (503 otherwise, saying why)."""
    tenants: Tenants = request.app.state.tenants
    databases = [request.app.state.api_keys.database, *(r.database for r in tenants.running())]
    problems = [p for p in await asyncio.gather(*(asyncio.to_thread(database_unready, d) for d in databases)) if p]
    body = Ready(status="unready" if problems else "ready", problems=sorted(set(problems)))
    return JSONResponse(body.model_dump(), status_code=503 if problems else 200)


@router.get("/metrics", name="metrics", tags=["system"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    found: Metrics = request.app.state.metrics
    return Response(await asyncio.to_thread(found.render), media_type=CONTENT_TYPE)


@router.get("/api/v1/whoami", name="whoami", response_model=Whoami, tags=["keys"])
async def whoami(caller: Principal = Depends(principal)) -> Whoami:  # noqa: B008
    """The calling key: its id, tenant, role and name."""
    return Whoami(key_id=caller.key.id, tenant=caller.tenant, role=caller.role.value, name=caller.key.name)

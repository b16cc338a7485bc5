"""The application: every router, the application-wide key check, the error handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Depends, FastAPI

from .. import _tracing
from .._packaging._source import MAX_ARCHIVE_SIZE
from .._registry._api_keys import ApiKeyStore
from .._version import host_version
from . import (
    _events,
    _routes_executions,
    _routes_keys,
    _routes_packages,
    _routes_schedules,
    _routes_system,
    _routes_trust,
    _routes_workflows,
)
from ._auth import authorize
from ._errors import ERROR_RESPONSES, install_handlers
from ._metrics import Metrics
from ._runtime import TenantRuntime, Tenants
from ._ui import mount_ui

__all__ = ["ROUTERS", "Where", "create_app"]

#: every router of the API (each route named; ``_auth.RULES`` has a rule per name)
ROUTERS = tuple(
    m.router
    for m in (
        _routes_system,
        _routes_packages,
        _routes_workflows,
        _routes_executions,
        _events,
        _routes_schedules,
        _routes_keys,
        _routes_trust,
    )
)


@dataclass(frozen=True)
class Where:
    """The database the server's keys and tenants are in (the public tenant's)."""

    database_url: str | None
    home: str | None


def create_app(
    *,
    tenants: Tenants,
    api_keys: ApiKeyStore,
    where: Where,
    max_archive_size: int = MAX_ARCHIVE_SIZE,
) -> FastAPI:
    """The API over ``tenants`` (each request's tenant comes from its key, checked against ``api_keys``)."""
    app = FastAPI(
        title="Cloacina",
        version=host_version(),
        description="Workflows as packages: upload, run and watch them per tenant. Send `Authorization: Bearer KEY`.",
        docs_url=None,  # no page that loads assets from a CDN
        redoc_url=None,
        dependencies=[Depends(authorize)],
        responses=ERROR_RESPONSES,
    )
    metrics = Metrics(tenants.running)
    app.state.tenants = tenants
    app.state.api_keys = api_keys
    app.state.where = where
    app.state.metrics = metrics
    app.state.max_archive_size = max_archive_size
    app.state.closing = asyncio.Event()

    def observe(runtime: TenantRuntime) -> None:
        plugins = runtime.host.catalog.plugin_manager
        plugins.register(metrics.observer(runtime.tenant), name=f"cloacina-server-metrics-{runtime.tenant}")
        traces = _tracing.observer(runtime.tenant)  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set
        if traces is not None:
            plugins.register(traces, name=f"cloacina-server-traces-{runtime.tenant}")

    tenants.started.append(observe)
    for runtime in tenants.running():
        observe(runtime)
    for router in ROUTERS:
        app.include_router(router)
    install_handlers(app)
    mount_ui(app)
    return app

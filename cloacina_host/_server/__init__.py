"""``cloacina-ctl server``: the HTTP API over the engine and registry (FastAPI on uvicorn), with API keys
and Prometheus metrics. Needs the ``server`` extra: ``pip install 'cloacina-host[server]'``.

Layout: ``_app`` builds the application; ``_auth`` holds the key check and the per-route rule table
(fail closed); ``_models`` the pydantic request and response models; ``_errors`` maps Cloacina's
errors to HTTP statuses; one ``_routes_*`` module per resource; ``_events`` the server-sent event
streams; ``_metrics`` the Prometheus metrics, fed by an engine event observer; ``_runtime`` the
tenants this process serves.
"""

from __future__ import annotations

from ._app import create_app
from ._runtime import TenantRuntime, Tenants

__all__ = ["TenantRuntime", "Tenants", "create_app"]

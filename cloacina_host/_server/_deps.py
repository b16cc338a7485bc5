"""What routes ask for: the caller, and the running tenant it belongs to."""

from __future__ import annotations

from fastapi import Depends, Request

from ._auth import Principal, principal
from ._runtime import TenantRuntime, Tenants

__all__ = ["actor", "runtime"]


async def runtime(request: Request, caller: Principal = Depends(principal)) -> TenantRuntime:  # noqa: B008
    """The caller's tenant, served by this process (started on first use)."""
    tenants: Tenants = request.app.state.tenants
    return await tenants.get(caller.tenant)


def actor(caller: Principal) -> str:
    """Who asked, as ``execution_events.actor`` records it."""
    return f"api-key {caller.key.id}" + (f" ({caller.key.name})" if caller.key.name else "")

"""``/api/v1/tenants`` and ``/api/v1/trust``: the caller's tenant, its signature policy and trusted keys — as
``cloacina-ctl tenants list|policy`` and ``trust add|list|remove`` do, through the registry's trust store,
with the same checks and messages.

A key belongs to one tenant and sees that tenant only: ``GET /api/v1/tenants`` lists it alone, and any
other tenant's name is not found (404), whether it exists or not. There is no cross-tenant role:
tenants are created and listed whole with the command line, on a machine that holds the database URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import APIRouter, Depends, Query, Request

from .._errors import NotFoundError
from .._packaging import parse_public_key
from .._registry import TrustStore, list_tenants
from ._auth import Principal, principal
from ._deps import runtime
from ._models import (
    PolicyModel,
    PolicyRequest,
    TenantModel,
    TenantsList,
    TrustAdded,
    TrustAddRequest,
    TrustList,
    TrustRevoked,
)
from ._runtime import TenantRuntime

router = APIRouter(prefix="/api/v1")


def _utc(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="seconds")


def _own(tenant: str, caller: Principal) -> None:
    """Refuse (404) a tenant other than the key's, saying which one the key sees."""
    if tenant != caller.tenant:
        raise NotFoundError(
            f"No tenant {tenant!r} for this key: API key {caller.key.id} belongs to tenant {caller.tenant!r} and "
            f"sees only it (GET /api/v1/tenants)."
        )


def _trust(rt: TenantRuntime) -> TrustStore:
    return rt.host.registry.trust


@router.get("/tenants", name="tenants.list", response_model=TenantsList, tags=["tenants"])
async def list_own(request: Request, caller: Principal = Depends(principal)) -> TenantsList:  # noqa: B008
    """The tenants this key sees: its own."""
    where = request.app.state.where
    found = await asyncio.to_thread(list_tenants, where.database_url, home=where.home)
    return TenantsList(
        tenants=[TenantModel(name=t.name, created_at=_utc(t.created_at)) for t in found if t.name == caller.tenant]
    )


@router.get("/tenants/{tenant}/policy", name="tenants.policy", response_model=PolicyModel, tags=["tenants"])
async def show_policy(
    tenant: str,
    caller: Principal = Depends(principal),  # noqa: B008
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> PolicyModel:
    """The tenant's signature policy: whether only archives signed by a key it trusts are accepted."""
    _own(tenant, caller)
    result = await asyncio.to_thread(_trust(rt).policy)
    return PolicyModel.model_validate(result.to_json())


@router.put("/tenants/{tenant}/policy", name="tenants.set_policy", response_model=PolicyModel, tags=["tenants"])
async def set_policy(
    tenant: str,
    body: PolicyRequest,
    caller: Principal = Depends(principal),  # noqa: B008
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
) -> PolicyModel:
    """Require signatures by a trusted key (or not) for every later upload, activation and load. Refused (409)
    while the tenant trusts no key, or while an active version is not signed by a trusted key."""
    _own(tenant, caller)
    result = await asyncio.to_thread(_trust(rt).set_policy, required=body.require_signatures)
    return PolicyModel.model_validate(result.to_json())


@router.get("/trust", name="trust.list", response_model=TrustList, tags=["trust"])
async def list_trusted(
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    include_revoked: bool = Query(False, alias="all", description="Also list revoked keys"),
) -> TrustList:
    """The tenant's trusted keys and its signature policy."""
    store = _trust(rt)
    keys = await asyncio.to_thread(store.keys, include_revoked=include_revoked)
    policy = await asyncio.to_thread(store.policy)
    return TrustList.model_validate(
        {"tenant": rt.tenant, "require_signatures": policy.require_signatures, "keys": [k.to_json() for k in keys]}
    )


@router.post("/trust", name="trust.add", response_model=TrustAdded, tags=["trust"])
async def add_trusted(body: TrustAddRequest, rt: TenantRuntime = Depends(runtime)) -> TrustAdded:  # noqa: B008
    """Trust a public key under a name (a revoked key is trusted again; the same key and name again changes nothing)."""
    key = parse_public_key(body.public_key)
    result = await asyncio.to_thread(_trust(rt).add, body.name, key)
    return TrustAdded.model_validate(result.to_json())


@router.delete("/trust/{key}", name="trust.remove", response_model=TrustRevoked, tags=["trust"])
async def remove_trusted(key: str, rt: TenantRuntime = Depends(runtime)) -> TrustRevoked:  # noqa: B008
    """Revoke a trusted key (by name, or a fingerprint prefix of 8+ digits): uploads signed by it are refused
    from now on; the versions it signed are listed and keep running until deactivated."""
    result = await asyncio.to_thread(_trust(rt).revoke, key)
    return TrustRevoked.model_validate(result.to_json())

"""``/api/v1/api-keys``: an admin key manages its own tenant's keys (list, create, revoke)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from .._errors import NotFoundError
from .._registry._api_keys import create_api_key, list_api_keys, parse_role, revoke_api_key
from ._auth import Principal, principal
from ._models import ApiKeyModel, ApiKeysList, CreatedKeyModel, CreateKeyRequest

router = APIRouter(prefix="/api/v1/api-keys", tags=["keys"])


@router.get("", name="api_keys.list", response_model=ApiKeysList)
async def list_keys(request: Request, caller: Principal = Depends(principal)) -> ApiKeysList:  # noqa: B008
    """The tenant's keys (never their secrets)."""
    where = request.app.state.where
    keys = await asyncio.to_thread(list_api_keys, where.database_url, home=where.home, tenant=caller.tenant)
    return ApiKeysList.model_validate({"api_keys": [k.to_json() for k in keys]})


@router.post("", name="api_keys.create", response_model=CreatedKeyModel, status_code=201)
async def create_key(
    body: CreateKeyRequest,
    request: Request,
    caller: Principal = Depends(principal),  # noqa: B008
) -> CreatedKeyModel:
    """A new key of the caller's tenant; the response holds the key itself, shown this once."""
    where = request.app.state.where
    created = await asyncio.to_thread(
        create_api_key,
        where.database_url,
        home=where.home,
        tenant=caller.tenant,
        role=parse_role(body.role),
        name=body.name,
    )
    return CreatedKeyModel.model_validate({**created.key.to_json(), "key": created.token})


@router.delete("/{key_id}", name="api_keys.revoke", response_model=ApiKeyModel)
async def revoke_key(key_id: str, request: Request, caller: Principal = Depends(principal)) -> ApiKeyModel:  # noqa: B008
    """Revoke one of the tenant's keys (another tenant's is not found)."""
    where = request.app.state.where
    keys = await asyncio.to_thread(list_api_keys, where.database_url, home=where.home, tenant=caller.tenant)
    if key_id not in {k.id for k in keys}:
        raise NotFoundError(f"No API key {key_id!r} in tenant {caller.tenant!r}. List them: GET /api/v1/api-keys")
    key = await asyncio.to_thread(revoke_api_key, where.database_url, home=where.home, key_id=key_id)
    return ApiKeyModel.model_validate(key.to_json())

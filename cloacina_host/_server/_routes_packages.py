"""``/api/v1/packages``: register (upload), list, show, activate, deactivate, remove — as ``register`` and
``cloacina-ctl packages`` do, with the same checks and messages."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request

from .._registry import parse_requirement
from ._deps import runtime
from ._models import ActivateResponse, PackageDetail, PackagesList, RegisterResponse, RemoveResponse
from ._runtime import TenantRuntime
from ._upload import read_upload

router = APIRouter(prefix="/api/v1/packages", tags=["packages"])


@router.get("", name="packages.list", response_model=PackagesList)
async def list_packages(rt: TenantRuntime = Depends(runtime)) -> PackagesList:  # noqa: B008
    """The tenant's registered packages: versions, the active one, workflows."""
    packages = await asyncio.to_thread(rt.host.registry.list_packages)
    return PackagesList.model_validate({"tenant": rt.tenant, "packages": [p.to_json() for p in packages]})


@router.post("", name="packages.upload", response_model=RegisterResponse, status_code=201)
async def upload(
    request: Request,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    force: bool = Query(False, description="Replace a registered version that has different bytes"),
    activate: bool | None = Query(None, description="Make it active (or not); default: when newest"),
    filename: str = Query("upload.cloacina", max_length=200, description="The archive's name, for messages"),
) -> RegisterResponse:
    """Register a ``.cloacina`` archive: the body itself (``application/octet-stream``) or a
    ``multipart/form-data`` file. Checked, stored, installed and loaded as ``register`` does; over the
    size limit it is refused (413) before it is read whole, and nothing is stored."""
    data = await read_upload(request, limit=request.app.state.max_archive_size, name=filename)
    result = await asyncio.to_thread(rt.host.registry.register, data, force=force, activate=activate, name=filename)
    return RegisterResponse.model_validate(result.to_json())


@router.get("/{name}", name="packages.show", response_model=PackageDetail)
async def show(name: str, rt: TenantRuntime = Depends(runtime)) -> PackageDetail:  # noqa: B008
    """Every version of package ``name``, the active one, workflows, tasks and unfinished executions."""
    info = await asyncio.to_thread(rt.host.registry.show, name)
    return PackageDetail.model_validate(info.to_json(detail=True))


@router.post("/{name}/versions/{version}/activate", name="packages.activate", response_model=ActivateResponse)
async def activate_version(name: str, version: str, rt: TenantRuntime = Depends(runtime)) -> ActivateResponse:  # noqa: B008
    """Make ``version`` the one new executions use (roll back or forward); loaded in a fresh worker first."""
    name, version = parse_requirement(f"{name}=={version}")
    result = await asyncio.to_thread(rt.host.registry.activate, name, version)
    return ActivateResponse.model_validate(result.to_json())


@router.post("/{name}/deactivate", name="packages.deactivate", response_model=ActivateResponse)
async def deactivate(name: str, rt: TenantRuntime = Depends(runtime)) -> ActivateResponse:  # noqa: B008
    """Leave the package without an active version (its versions stay)."""
    result = await asyncio.to_thread(rt.host.registry.deactivate, name)
    return ActivateResponse.model_validate(result.to_json())


@router.delete("/{name}/versions/{version}", name="packages.remove", response_model=RemoveResponse)
async def remove(
    name: str,
    version: str,
    rt: TenantRuntime = Depends(runtime),  # noqa: B008
    force: bool = Query(False, description="Remove it even while unfinished executions use it"),
) -> RemoveResponse:
    """Remove a version; refused (409) while executions still run on it, unless ``force``."""
    name, version = parse_requirement(f"{name}=={version}")
    result = await asyncio.to_thread(rt.host.registry.remove, name, version, force=force)
    return RemoveResponse.model_validate(result.to_json())

"""Tenants, as the registry offers them: where a tenant's tables live is storage's (``_storage._tenants``)."""

from __future__ import annotations

from .._storage._tenants import (
    TenantInfo,
    TenantLocation,
    create_tenant,
    list_tenants,
    open_tenant_database,
    tenant_exists,
    tenant_location,
)

__all__ = [
    "TenantInfo",
    "TenantLocation",
    "create_tenant",
    "list_tenants",
    "open_tenant_database",
    "tenant_exists",
    "tenant_location",
]

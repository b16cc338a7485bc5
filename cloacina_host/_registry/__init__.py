"""The registry: ``.cloacina`` archives stored in the database, installed into content-addressed
directories, loaded into isolated workers; versions, the active one, hot swap; tenants; trusted
keys and the signature policy."""

from __future__ import annotations

from ._errors import PackageNotFoundError, RegistryError, TenantError
from ._names import check_tenant_name, parse_requirement
from ._registry import Registry
from ._results import ActivateResult, PackageInfo, PackageVersion, RegisteredWorkflow, RegisterResult, RemoveResult
from ._tenants import (
    TenantInfo,
    create_tenant,
    list_tenants,
    open_tenant_database,
    tenant_exists,
    tenant_location,
)
from ._trust import PolicyResult, RevokeResult, TrustedKey, TrustResult, TrustStore, VersionSigner

__all__ = [
    "ActivateResult",
    "PackageInfo",
    "PackageNotFoundError",
    "PackageVersion",
    "PolicyResult",
    "RegisterResult",
    "RegisteredWorkflow",
    "Registry",
    "RegistryError",
    "RemoveResult",
    "RevokeResult",
    "TenantError",
    "TenantInfo",
    "TrustResult",
    "TrustStore",
    "TrustedKey",
    "VersionSigner",
    "check_tenant_name",
    "create_tenant",
    "list_tenants",
    "open_tenant_database",
    "parse_requirement",
    "tenant_exists",
    "tenant_location",
]

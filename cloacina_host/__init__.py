"""Cloacina host: discovers, stores and runs workflows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    __version__: str
    from ._discovery import (
        ENTRY_POINT_GROUP,
        CatalogEntry,
        WorkflowCatalog,
        WorkflowSource,
        discover,
        discover_async,
        invalidate_entry_point_cache,
        make_plugin_manager,
    )
    from ._engine import ExecutionResult, ExecutionStatus, TaskOutcome, TaskStatus
    from ._errors import (
        AmbiguousWorkflowError,
        HostError,
        NotFoundError,
        PluginLoadError,
        StorageError,
        UsageError,
        WorkflowConflictError,
        WorkflowNotFoundError,
    )
    from ._host import DefaultRunner
    from ._packaging import (
        Archive,
        ArchiveError,
        Manifest,
        PackageResult,
        PackagingError,
        ValidationReport,
        manifest_json_schema,
        package_workflow,
        read_archive,
        validate_archive,
    )
    from ._registry import (
        ActivateResult,
        PackageInfo,
        PackageNotFoundError,
        PackageVersion,
        RegisteredWorkflow,
        RegisterResult,
        Registry,
        RegistryError,
        RemoveResult,
        TenantError,
        create_tenant,
        list_tenants,
    )

# Imported on first use (PEP 562), so that `cloacina-ctl inspect` does not pay for SQLAlchemy and
# a plugin importing one name does not load the whole host.
_LAZY = {
    "ActivateResult": "._registry",
    "PackageInfo": "._registry",
    "PackageNotFoundError": "._registry",
    "PackageVersion": "._registry",
    "RegisterResult": "._registry",
    "RegisteredWorkflow": "._registry",
    "Registry": "._registry",
    "RegistryError": "._registry",
    "RemoveResult": "._registry",
    "TenantError": "._registry",
    "create_tenant": "._registry",
    "list_tenants": "._registry",
    "AmbiguousWorkflowError": "._errors",
    "Archive": "._packaging",
    "ArchiveError": "._packaging",
    "CatalogEntry": "._discovery",
    "DefaultRunner": "._host",  # the engine's runner, composed with discovery and the registry
    "ENTRY_POINT_GROUP": "._discovery",
    "ExecutionResult": "._engine",
    "ExecutionStatus": "._engine",
    "HostError": "._errors",
    "Manifest": "._packaging",
    "NotFoundError": "._errors",
    "PackageResult": "._packaging",
    "PackagingError": "._packaging",
    "PluginLoadError": "._errors",
    "StorageError": "._errors",
    "TaskOutcome": "._engine",
    "TaskStatus": "._engine",
    "UsageError": "._errors",
    "ValidationReport": "._packaging",
    "WorkflowCatalog": "._discovery",
    "WorkflowConflictError": "._errors",
    "WorkflowNotFoundError": "._errors",
    "WorkflowSource": "._discovery",
    "discover": "._discovery",
    "discover_async": "._discovery",
    "invalidate_entry_point_cache": "._discovery",
    "make_plugin_manager": "._discovery",
    "manifest_json_schema": "._packaging",
    "package_workflow": "._packaging",
    "read_archive": "._packaging",
    "validate_archive": "._packaging",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from ._version import host_version

        globals()["__version__"] = value = host_version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloacina_host' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ENTRY_POINT_GROUP",
    "ActivateResult",
    "AmbiguousWorkflowError",
    "Archive",
    "ArchiveError",
    "CatalogEntry",
    "DefaultRunner",
    "ExecutionResult",
    "ExecutionStatus",
    "HostError",
    "Manifest",
    "NotFoundError",
    "PackageInfo",
    "PackageNotFoundError",
    "PackageResult",
    "PackageVersion",
    "PackagingError",
    "PluginLoadError",
    "RegisterResult",
    "RegisteredWorkflow",
    "Registry",
    "RegistryError",
    "RemoveResult",
    "StorageError",
    "TaskOutcome",
    "TaskStatus",
    "TenantError",
    "UsageError",
    "ValidationReport",
    "WorkflowCatalog",
    "WorkflowConflictError",
    "WorkflowNotFoundError",
    "WorkflowSource",
    "__version__",
    "create_tenant",
    "discover",
    "discover_async",
    "invalidate_entry_point_cache",
    "list_tenants",
    "make_plugin_manager",
    "manifest_json_schema",
    "package_workflow",
    "read_archive",
    "validate_archive",
]

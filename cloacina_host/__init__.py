"""Cloacina host: discovers, stores and runs workflows."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._discovery import (
    ENTRY_POINT_GROUP,
    CatalogEntry,
    WorkflowCatalog,
    WorkflowSource,
    discover,
    make_plugin_manager,
)
from ._engine import DefaultRunner, ExecutionResult, TaskOutcome
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

try:
    __version__ = version("cloacina-host")
except PackageNotFoundError:  # pragma: no cover - source tree never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ENTRY_POINT_GROUP",
    "AmbiguousWorkflowError",
    "Archive",
    "ArchiveError",
    "CatalogEntry",
    "DefaultRunner",
    "ExecutionResult",
    "HostError",
    "Manifest",
    "NotFoundError",
    "PackageResult",
    "PackagingError",
    "PluginLoadError",
    "StorageError",
    "TaskOutcome",
    "UsageError",
    "ValidationReport",
    "WorkflowCatalog",
    "WorkflowConflictError",
    "WorkflowNotFoundError",
    "WorkflowSource",
    "__version__",
    "discover",
    "make_plugin_manager",
    "manifest_json_schema",
    "package_workflow",
    "read_archive",
    "validate_archive",
]

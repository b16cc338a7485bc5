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

try:
    __version__ = version("cloacina-host")
except PackageNotFoundError:  # pragma: no cover - source tree never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ENTRY_POINT_GROUP",
    "AmbiguousWorkflowError",
    "CatalogEntry",
    "DefaultRunner",
    "ExecutionResult",
    "HostError",
    "NotFoundError",
    "PluginLoadError",
    "StorageError",
    "TaskOutcome",
    "UsageError",
    "WorkflowCatalog",
    "WorkflowConflictError",
    "WorkflowNotFoundError",
    "WorkflowSource",
    "__version__",
    "discover",
    "make_plugin_manager",
]

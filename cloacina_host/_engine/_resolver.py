"""What the engine needs to find the workflow an execution runs: the catalog resolves a name, and a
``VersionResolver`` among its sources (the registry, built by the host's composition module,
``cloacina_host._host``) resolves a registered workflow at the version an execution recorded.

The engine never imports the registry: it asks its catalog's sources for this protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._discovery import CatalogEntry, WorkflowCatalog
from .._errors import NotFoundError

__all__ = ["VersionResolver", "resolve_version", "version_resolvers"]


@runtime_checkable
class VersionResolver(Protocol):
    """A catalog source offering workflows by version (``Registry.resolve``)."""

    def resolve(self, package: str, workflow: str, version: str | None = None) -> CatalogEntry:
        """``package::workflow`` at ``version`` (None: the active one); ``HostError`` when there is none."""
        ...


def version_resolvers(catalog: WorkflowCatalog) -> list[VersionResolver]:
    """The sources of ``catalog`` that resolve workflows by version, in the order they were added."""
    return [s for s in catalog.sources if isinstance(s, VersionResolver)]


def resolve_version(catalog: WorkflowCatalog, package: str, workflow: str, version: str | None) -> CatalogEntry:
    """``package::workflow`` at ``version`` from the first versioned source of ``catalog``."""
    for source in version_resolvers(catalog):
        return source.resolve(package, workflow, version)
    raise NotFoundError(f"No registry here offers {package}::{workflow} version {version}.")

"""The default host, composed in one place: discovery (installed plugins) + the tenant's registry
(registered packages) + the engine. The CLI, ``DefaultRunner()`` and (later) the server build their
host here; the layers below never reach up for each other (the engine knows the registry only as a
``VersionResolver`` among its catalog's sources).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._defaults import DEFAULT_IDLE_TIMEOUT_S
from ._discovery import WorkflowCatalog, discover
from ._engine import DefaultRunner as _EngineRunner
from ._registry import Registry
from ._settings import default_database_url
from ._storage import Database, parse_database_url
from ._storage._tenants import open_tenant_database

__all__ = ["Database", "DefaultRunner", "Host", "compose", "open_command_database", "uses_postgresql"]


@dataclass
class Host:
    """What a host runs: the catalog (installed plugins, embedded workflows, registered packages)
    and the registry that offers the registered ones."""

    catalog: WorkflowCatalog
    registry: Registry

    def close(self) -> None:
        """Release the registry's database connections (for commands without an event loop)."""
        self.registry.close()

    async def aclose(self) -> None:
        """Stop the workers of registered packages and release the registry's connections."""
        await self.registry.aclose()


def compose(
    database_url: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    tenant: str,
    disabled: Iterable[str] = (),
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    database_opener: Callable[[], Database] | None = None,
) -> Host:
    """Discover installed plugins (``disabled`` ones not loaded) and add ``tenant``'s registry as a source.

    ``database_opener``: the registry's database, when the caller owns it (a command's, opened once).
    """
    catalog = discover(disabled=disabled)
    registry = Registry(
        database_url, home=home, tenant=tenant, idle_timeout_s=idle_timeout_s, database_opener=database_opener
    )
    catalog.add_source(registry)
    return Host(catalog, registry)


def open_command_database(
    database_url: str | None, *, home: str | None, tenant: str, read_only: bool, pool_size: int = 4
) -> Database:
    """The one database a ``cloacina-ctl`` command opens: ``tenant``'s, read-only for commands that only read.

    Read-only opens create, migrate and write nothing: a database not there yet reads as empty, one
    at an older schema version is refused with the commands that upgrade it.
    """
    return open_tenant_database(database_url, home=home, tenant=tenant, read_only=read_only, pool_size=pool_size)


def uses_postgresql(database_url: str | None, home: str | None) -> bool:
    """Whether ``database_url`` (default: the SQLite file under the Cloacina home) is PostgreSQL."""
    return parse_database_url(database_url or default_database_url(home)).drivername != "sqlite"


class DefaultRunner(_EngineRunner):
    __doc__ = _EngineRunner.__doc__

    def _default_catalog(self) -> WorkflowCatalog:
        """Installed plugins and the registered packages of the runner's tenant (looked up at each submit)."""
        return compose(self._database_url, home=self._home, tenant=self.tenant).catalog

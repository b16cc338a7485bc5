"""The tenants one server process runs: each has its host, runner and database (a ``serve`` loop of its own).

``Tenants.get(name)`` returns a running tenant, asking ``start`` for it on first use (the command line
starts a ``serve`` loop for it and hands back what it is made of); concurrent first requests share one start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .._engine import DefaultRunner
from .._host import Database, Host

__all__ = ["TenantRuntime", "Tenants"]


@dataclass(frozen=True)
class TenantRuntime:
    """One served tenant: its host (catalog and registry), its runner and its database."""

    tenant: str
    host: Host
    runner: DefaultRunner
    database: Database


class Tenants:
    """The served tenants, started on demand by ``start`` (and told to the ``started`` callbacks)."""

    def __init__(self, start: Callable[[str], Awaitable[TenantRuntime]]) -> None:
        self._start = start
        self._running: dict[str, TenantRuntime] = {}
        self._starting: dict[str, asyncio.Future[TenantRuntime]] = {}
        self.started: list[Callable[[TenantRuntime], None]] = []

    def add(self, runtime: TenantRuntime) -> None:
        """A tenant started outside ``get`` (those served from the start)."""
        self._running[runtime.tenant] = runtime
        for callback in self.started:
            callback(runtime)

    def running(self) -> list[TenantRuntime]:
        return list(self._running.values())

    async def get(self, tenant: str) -> TenantRuntime:
        found = self._running.get(tenant)
        if found is not None:
            return found
        pending = self._starting.get(tenant)
        if pending is None:
            pending = self._starting[tenant] = asyncio.ensure_future(self._start(tenant))
            pending.add_done_callback(lambda _f: self._starting.pop(tenant, None))
        runtime = await asyncio.shield(pending)
        if tenant not in self._running:
            self.add(runtime)
        return runtime

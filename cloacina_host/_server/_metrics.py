"""Prometheus metrics of the server (``GET /metrics``), fed by the engine's event hooks.

Every served tenant's catalog gets a ``MetricsObserver`` (a plugin implementing the ``cloacina_*``
event hooks), so every driver's events count: local runs, registered packages' worker processes and
the embedded distributed worker alike. Gauges (queue depth, live worker processes) are read when
scraped. Labels are bounded: ``tenant`` (the tenants created) and ``status`` (the few end statuses);
never a workflow, execution or task id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cloacina_workflow import hookimpl

from .._engine._gauges import queue_depth
from ._runtime import TenantRuntime

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsObserver"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: seconds: from a few milliseconds (a trivial task) to an hour
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The server's metrics, in a registry of their own (one per application)."""

    def __init__(self, runtimes: Callable[[], list[TenantRuntime]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.executions_started = Counter(
            "cloacina_executions_started", "Executions started by this server", ["tenant"], registry=r
        )
        self.executions_finished = Counter(
            "cloacina_executions_finished", "Executions ended, by status", ["tenant", "status"], registry=r
        )
        self.execution_seconds = Histogram(
            "cloacina_execution_duration_seconds",
            "Time from an execution's start to its end, by status",
            ["tenant", "status"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.tasks_started = Counter("cloacina_task_attempts_started", "Task attempts started", ["tenant"], registry=r)
        self.tasks_retrying = Counter(
            "cloacina_task_retries", "Task attempts that failed and will run again", ["tenant"], registry=r
        )
        self.tasks_finished = Counter(
            "cloacina_tasks_finished", "Tasks ended for good, by status", ["tenant", "status"], registry=r
        )
        self.task_seconds = Histogram(
            "cloacina_task_duration_seconds",
            "Time a task took over all its attempts, by status",
            ["tenant", "status"],
            buckets=_BUCKETS,
            registry=r,
        )
        r.register(_Gauges(runtimes))

    def observer(self, tenant: str) -> MetricsObserver:
        return MetricsObserver(self, tenant)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsObserver:
    """Counts one tenant's events (registered on its catalog's plugin manager)."""

    def __init__(self, metrics: Metrics, tenant: str) -> None:
        self._m = metrics
        self.tenant = tenant
        self._started: dict[str, float] = {}

    @hookimpl
    def cloacina_execution_started(self, execution_id: str) -> None:
        self._started[execution_id] = time.monotonic()
        self._m.executions_started.labels(self.tenant).inc()

    @hookimpl
    def cloacina_execution_finished(self, execution_id: str, status: str) -> None:
        self._m.executions_finished.labels(self.tenant, status).inc()
        started = self._started.pop(execution_id, None)
        if started is not None:  # started here (one resumed after a restart has no start to measure from)
            self._m.execution_seconds.labels(self.tenant, status).observe(time.monotonic() - started)

    @hookimpl
    def cloacina_task_started(self) -> None:
        self._m.tasks_started.labels(self.tenant).inc()

    @hookimpl
    def cloacina_task_retrying(self) -> None:
        self._m.tasks_retrying.labels(self.tenant).inc()

    @hookimpl
    def cloacina_task_finished(self, status: str, duration_s: float) -> None:
        self._m.tasks_finished.labels(self.tenant, status).inc()
        self._m.task_seconds.labels(self.tenant, status).observe(max(0.0, duration_s))


class _Gauges(Collector):
    """Read at each scrape: executions waiting for a host, and live worker processes, per tenant."""

    def __init__(self, runtimes: Callable[[], list[TenantRuntime]]) -> None:
        self._runtimes = runtimes

    def describe(self) -> Iterator[Any]:
        return iter(())  # collected at scrape time only

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queued = GaugeMetricFamily(
            "cloacina_queue_depth", "Executions stored and not started by any host yet", labels=["tenant"]
        )
        workers = GaugeMetricFamily(
            "cloacina_workers_alive", "Live worker processes of registered packages", labels=["tenant"]
        )
        for runtime in self._runtimes():
            try:
                depth = queue_depth(runtime.database, tenant=runtime.tenant)
            except Exception:  # noqa: BLE001  # the database away for a moment: this gauge is left out once
                depth = None
            if depth is not None:
                queued.add_metric([runtime.tenant], depth)
            alive = sum(1 for w in runtime.host.registry.pools.workers() if w.alive)
            workers.add_metric([runtime.tenant], alive)
        yield queued
        yield workers

"""OpenTelemetry traces, optional: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set.

A span per execution (``cloacina.execution``) and per task attempt (``cloacina.task``, its child), made
from the engine's event hooks by ``TraceObserver``; and, for a registered package's task, a span in
its worker process (``cloacina.task.run``, a child of the attempt's): the attempt's trace context goes
to the worker in the task request (``request_context``), as a W3C ``traceparent``. Spans are sent
over OTLP/HTTP by the SDK's batch processor, configured by the standard ``OTEL_*`` variables.

Off (the variable unset, or ``OTEL_SDK_DISABLED=true``), nothing of OpenTelemetry is imported and
nothing is done. On without the ``otel`` extra installed: one warning naming the fix, and no traces.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from cloacina_workflow import hookimpl

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["TraceObserver", "enabled", "flush", "observer", "remote_attempt", "request_context"]

log = logging.getLogger("cloacina_host.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
INSTALL_HINT = "pip install 'cloacina-host[otel]'"
_SCOPE = "cloacina"

#: the running attempt's trace context (a ``traceparent`` carrier), for the worker request it makes
_ATTEMPT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("cloacina_trace", default=None)

#: spans held open at most (oldest dropped unsent): an execution whose end another host sees never ends here
MAX_OPEN_SPANS = 10_000

_lock = threading.Lock()
_state: dict[str, Any] = {}  # "tracer", "provider": set once per process by _tracer()


def enabled() -> bool:
    """Whether traces are asked for (an OTLP endpoint set, the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _tracer() -> Tracer | None:
    """This process's tracer, made on first use (None: traces off, or the SDK missing: warned once)."""
    with _lock:
        if "tracer" in _state:
            return _state["tracer"]  # type: ignore[no-any-return]
        _state["tracer"] = None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            log.warning(
                "%s is set, but OpenTelemetry's SDK and OTLP exporter are not installed (%s): no traces are sent. "
                "Install them: %s",
                next(n for n in ENDPOINT_VARIABLES if os.environ.get(n, "").strip()),
                exc,
                INSTALL_HINT,
            )
            return None
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "cloacina"}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _state["provider"] = provider
        _state["tracer"] = tracer = provider.get_tracer(_SCOPE)
        return tracer


def flush(timeout_s: float = 2.0) -> None:
    """Send the spans still buffered (a worker process leaves with ``os._exit``, past the SDK's own exit hook)."""
    provider: TracerProvider | None = _state.get("provider")
    if provider is not None:
        provider.force_flush(int(timeout_s * 1000))


def observer(tenant: str) -> TraceObserver | None:
    """The event-hook plugin that traces ``tenant``'s executions; None when traces are off (or cannot be sent)."""
    if not enabled():
        return None
    tracer = _tracer()
    return None if tracer is None else TraceObserver(tracer, tenant)


def request_context() -> dict[str, str] | None:
    """The trace context a task request carries to a worker process (None: not traced)."""
    return _ATTEMPT.get()


class TraceObserver:
    """Spans for one tenant's executions and task attempts (registered on its catalog's plugin manager).

    The hooks of one execution run on the host that drives it; a span is ended by the event that
    ends its attempt (retrying, deferred, finished), and any still open when the execution ends. A span
    whose end this process never hears of (a distributed execution ended by another host) is dropped
    unsent once ``MAX_OPEN_SPANS`` are open.
    """

    def __init__(self, tracer: Tracer, tenant: str) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._tracer = tracer
        self._trace = trace
        self._status, self._code = Status, StatusCode
        self._propagator = TraceContextTextMapPropagator()
        self.tenant = tenant
        self._executions: dict[str, Span] = {}
        self._attempts: dict[tuple[str, str, int], Span] = {}

    def _end(self, span: Span, status: str, error: str | None = None) -> None:
        span.set_attribute("cloacina.status", status)
        if status == "completed":
            span.set_status(self._status(self._code.OK))
        elif status in ("failed", "cancelled", "retrying"):
            span.set_status(self._status(self._code.ERROR, error or status))
        span.end()

    @hookimpl
    def cloacina_execution_started(self, execution_id: str, workflow: str) -> None:
        _bound(self._executions)
        self._executions[execution_id] = self._tracer.start_span(
            "cloacina.execution",
            attributes={
                "cloacina.tenant": self.tenant,
                "cloacina.workflow": workflow,
                "cloacina.execution_id": execution_id,
            },
        )

    @hookimpl
    def cloacina_task_started(self, execution_id: str, workflow: str, task_id: str, attempt: int) -> None:
        parent = self._executions.get(execution_id)
        context = None if parent is None else self._trace.set_span_in_context(parent)
        span = self._tracer.start_span(
            "cloacina.task",
            context=context,
            attributes={
                "cloacina.tenant": self.tenant,
                "cloacina.workflow": workflow,
                "cloacina.execution_id": execution_id,
                "cloacina.task": task_id,
                "cloacina.attempt": attempt,
            },
        )
        _bound(self._attempts)
        self._attempts[(execution_id, task_id, attempt)] = span
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        _ATTEMPT.set(carrier)  # the attempt runs in this context: its worker request carries it

    def _end_attempt(self, execution_id: str, task_id: str, attempt: int, status: str, error: str | None) -> None:
        span = self._attempts.pop((execution_id, task_id, attempt), None)
        if span is not None:
            self._end(span, status, error)

    @hookimpl
    def cloacina_task_retrying(self, execution_id: str, task_id: str, attempt: int, error: str) -> None:
        self._end_attempt(execution_id, task_id, attempt, "retrying", error)

    @hookimpl
    def cloacina_task_deferred(self, execution_id: str, task_id: str, attempt: int, note: str) -> None:
        self._end_attempt(execution_id, task_id, attempt, "deferred", note)

    @hookimpl
    def cloacina_task_finished(
        self, execution_id: str, task_id: str, status: str, attempts: int, error: str | None
    ) -> None:
        self._end_attempt(execution_id, task_id, attempts, status, error)

    @hookimpl
    def cloacina_execution_finished(self, execution_id: str, status: str) -> None:
        for key in [k for k in self._attempts if k[0] == execution_id]:
            self._end(self._attempts.pop(key), status)
        span = self._executions.pop(execution_id, None)
        if span is not None:
            self._end(span, status)


def _bound(spans: dict[Any, Span]) -> None:
    """Make room for one more open span: drop the oldest (never ended, so never sent) past the bound."""
    while len(spans) >= MAX_OPEN_SPANS:
        spans.pop(next(iter(spans)))


class RemoteAttempt:
    """The span of a task run in a worker process, a child of the host's attempt span."""

    def __init__(self, span: Span, detach: Any) -> None:
        self._span = span
        self._detach = detach

    def end(self, error: str | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._detach()
        self._span.set_attribute("cloacina.status", "failed" if error else "completed")
        self._span.set_status(Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK))
        self._span.end()


def remote_attempt(carrier: object, workflow: str, task_id: str) -> RemoteAttempt | None:
    """In a worker process: start the span of the task a request asks for, made current for the task's code
    (its own spans nest under it). None when the request carries no trace context, or traces are off."""
    if not isinstance(carrier, dict) or not enabled():
        return None
    tracer = _tracer()
    if tracer is None:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({str(k): str(v) for k, v in carrier.items()})
    span = tracer.start_span(
        "cloacina.task.run",
        context=parent,
        attributes={"cloacina.workflow": workflow, "cloacina.task": task_id, "process.pid": os.getpid()},
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return RemoteAttempt(span, lambda: otel_context.detach(token))

"""What the storage layer reads back: plain dataclasses, JSON already decoded."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .._output import OutputLine, decode


@dataclass(frozen=True)
class AttemptRecord:
    """One run of a task: when, how it ended, the error and traceback if it failed, and what it wrote."""

    attempt: int
    status: str
    started_at: float
    finished_at: float | None
    error: str | None
    traceback: str | None
    worker: str | None
    #: the attempt's output in its stored form (``output`` reads it)
    stored_output: str | None = field(default=None, repr=False)
    #: bytes of output dropped over the cap (``MAX_TASK_OUTPUT_BYTES``); the start was kept
    output_cut: int = 0

    @functools.cached_property
    def output(self) -> tuple[OutputLine, ...]:
        """What the attempt wrote to stdout and stderr, and its log records, in order (so far, if it runs)."""
        return decode(self.stored_output)

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class TaskRecord:
    """A task of an execution, with its attempts in order."""

    task_id: str
    position: int
    status: str
    attempt: int
    ready_at: float | None
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    error: str | None
    context_out: dict[str, Any] | None
    attempts: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution as stored. ``tasks`` is empty unless the query loaded them."""

    id: str
    tenant: str
    namespace: str
    package: str
    workflow: str
    package_version: str | None
    status: str
    context_in: dict[str, Any]
    context_out: dict[str, Any] | None
    error: str | None
    created_at: float
    finished_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    tasks: tuple[TaskRecord, ...] = field(default=())
    #: ``Workflow.fingerprint()`` of what ran, for registered packages (their manifest's)
    workflow_fingerprint: str | None = None
    #: when a host started it (``None``: queued, stored by a detached submit and not picked up yet)
    started_at: float | None = None
    #: when a cancel was asked for (the host running it stops it)
    cancel_requested_at: float | None = None
    #: the execution whose input this one reused (``executions rerun``)
    rerun_of: str | None = None
    #: what was asked of it after it was submitted (cancel, retry, rerun), oldest first
    events: tuple[EventRecord, ...] = ()
    #: what started it: ``manual``, ``schedule NAME at TIME`` (None: stored before migration 4)
    started_by: str | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.created_at

    @property
    def shown_status(self) -> str:
        """``status``, except ``queued`` for a running one no host has started yet."""
        return "queued" if self.status == "running" and self.started_at is None else self.status


@dataclass(frozen=True)
class EventRecord:
    """Something asked of an execution after it was submitted: a cancel, a retry, a rerun; who asked, when."""

    seq: int
    at: float
    kind: str
    actor: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class PackageRecord:
    """A registered package version, without its archive bytes. ``manifest`` is the manifest's JSON text."""

    name: str
    version: str
    display_name: str
    archive_sha256: str
    archive_size: int
    registered_at: float
    manifest: str
    active: bool

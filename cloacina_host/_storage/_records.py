"""What the storage layer reads back: plain dataclasses, JSON already decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AttemptRecord:
    """One run of a task: when, how it ended, and the error and traceback if it failed."""

    attempt: int
    status: str
    started_at: float
    finished_at: float | None
    error: str | None
    traceback: str | None
    worker: str | None

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
    #: what started it: ``manual``, ``schedule NAME at TIME`` (None: stored before migration 4)
    started_by: str | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.created_at


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

"""What a distributed worker keeps: its counts, and a record per task it runs under a lease."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .._output import AttemptOutput
from .._storage import _claims as c
from .._workers import StopRequest
from ._guard import TaskSlot

#: the longest wait between two attempts at reconnecting
MAX_BACKOFF_S = 30.0


@dataclass
class WorkerStats:
    """What a worker did since it started."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0  # attempts that deferred their task (TaskError.Deferred)
    reclaimed: int = 0  # claims that took a task over from a worker whose lease lapsed
    lost: int = 0  # results refused because the lease had passed to another worker
    released: int = 0  # handed back unfinished at shutdown


@dataclass
class Running:
    """A claimed task running in this worker."""

    claim: c.Claim
    task: asyncio.Task[None]
    claimed_at: float
    slot: TaskSlot  # its place under ``concurrency``, held until its code really returned
    ending: bool = False  # its end is being written: the renewer must not cancel it
    stop: StopRequest = field(default_factory=StopRequest)  # a cancel ends a registered package's worker
    written: AttemptOutput | None = None  # what the attempt writes (stored with its end)

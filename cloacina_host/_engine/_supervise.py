"""Supervised background loops: when one dies, its runner or worker stops and says why.

A runner renews its leases, a worker renews its claims and listens for notifications, the
group-commit writer stores state: each in a loop of its own. A loop that dies silently lets a host
run on with lapsed leases (two hosts then run one task), so each is watched: when one raises, the
owner stops claiming and starting work, logs why, and every caller waiting on it hears a
``LoopDiedError`` naming the loop. A lease renewal that keeps failing is a death too, once the
leases it could not renew have lapsed (``RenewalClock``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._errors import EXIT_INFRASTRUCTURE, HostError

__all__ = ["LeasesLapsedError", "LoopDiedError", "RenewalClock", "watch"]


class LoopDiedError(HostError):
    """A background loop (``loop`` names it) of a runner or worker died; it stopped (exit status 2)."""

    exit_status = EXIT_INFRASTRUCTURE

    def __init__(self, message: str, *, loop: str) -> None:
        super().__init__(message)
        self.loop = loop


class LeasesLapsedError(HostError):
    """Renewing the leases failed for longer than a lease lasts: other hosts may run these tasks now."""


@dataclass
class RenewalClock:
    """When leases were last known to be renewed; ``failed`` raises once they must have lapsed."""

    lease_s: float
    renewed_at: float = field(default_factory=time.monotonic)

    def renewed(self, asked_at: float) -> None:
        """A renewal asked at ``asked_at`` (``time.monotonic()``) succeeded; also: nothing was held then."""
        self.renewed_at = asked_at

    def failed(self, exc: BaseException) -> None:
        """A renewal failed with ``exc``; ``LeasesLapsedError`` when none succeeded for a whole lease."""
        lapsed = time.monotonic() - self.renewed_at
        if lapsed >= self.lease_s:
            raise LeasesLapsedError(
                f"the leases could not be renewed for {lapsed:.1f} s, longer than a lease ({self.lease_s:g} s), "
                f"so other hosts may take the work over: {str(exc).rstrip()}"
            ) from exc


def died(owner: str, loop: str, exc: BaseException | None, consequence: str) -> LoopDiedError:
    """The error that says ``owner``'s ``loop`` died of ``exc`` (None: it ended without an error)."""
    if exc is None:
        why = "it ended unexpectedly"
    elif isinstance(exc, HostError):
        why = str(exc).rstrip().rstrip(".")
    else:
        why = f"{type(exc).__name__}: {exc}".rstrip().rstrip(".")
    error = LoopDiedError(f"{owner} stopped: its {loop} loop died ({why}). {consequence}", loop=loop)
    error.__cause__ = exc
    return error


def watch(task: asyncio.Future[Any], on_death: Callable[[BaseException | None], None]) -> None:
    """Call ``on_death(exception)`` when ``task`` (a loop meant to run until cancelled) ends otherwise."""

    def ended(t: asyncio.Future[Any]) -> None:
        if t.cancelled():
            return
        on_death(t.exception())

    task.add_done_callback(ended)

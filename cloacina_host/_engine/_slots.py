"""The places under ``max_concurrent_tasks`` that every execution of one runner shares."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

__all__ = ["Slots"]


class Queued(Protocol):
    """What waits in the queue for a place: an execution with one of its tasks (``ExecutionRun``)."""

    def _start_with_place(self, tid: str) -> bool: ...


class Slots:
    """The places under ``max_concurrent_tasks``, with one queue of what waits for one.

    Like ``asyncio.Semaphore`` (``acquire``, ``release``, ``locked``; first come, first served), and a
    task that is ready but finds no free place waits as a ``(run, task id)`` entry (``queue``): its
    coroutine is only created when a place is handed to it, so a thousand waiting workflows cost a
    thousand small tuples, not a thousand asyncio tasks, frames and futures.
    """

    __slots__ = ("_free", "_waiting")

    def __init__(self, places: int) -> None:
        self._free = places
        self._waiting: deque[asyncio.Future[None] | tuple[Queued, str]] = deque()

    def locked(self) -> bool:
        return self._free == 0

    def try_acquire(self) -> bool:
        """Take a free place now, if one is free and nothing waits before us."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a place, then cancelled: pass it on
                self.release()
            raise

    def queue(self, run: Queued, tid: str) -> None:
        """``run``'s task ``tid`` waits for a place; ``run._start_with_place(tid)`` is called with one."""
        self._waiting.append((run, tid))

    def release(self) -> None:
        """Give a place back: to the first waiter still waiting, else to the free ones."""
        waiting = self._waiting
        while waiting:
            first = waiting.popleft()
            if isinstance(first, tuple):
                run, tid = first
                if run._start_with_place(tid):
                    return
            elif not first.done():
                first.set_result(None)
                return
        self._free += 1

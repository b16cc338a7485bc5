"""Writes nobody waits for, held back so that they ride along with a later commit instead of costing one.

The engine records an attempt's start without waiting for it: the task runs at once. Submitted on
its own, that record would cost a commit (an fsync) of its own in a quiet host, one before the
attempt's end. ``HeldWrites.hold`` keeps it on the event loop instead: when the attempt ends, its
end ``take()``s the held writes and stores both in one commit (``_ops.ran`` folds them into one write
per row); an attempt still running after ``delay_s`` has its start submitted then, so a long task
shows ``running`` and a host killed during it leaves a record of the attempt for recovery to mark
``interrupted``. ``flush()`` submits at once (the engine cancels the attempt: shutdown, lost lease).

One timer per shelf, not one per attempt: held writes are kept in the order they were held, and
the timer submits those whose time is up, then waits for the next.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence

from ._writer import GroupCommitWriter, Op

log = logging.getLogger("cloacina_host.storage")

#: how long an attempt's start may wait for its end before it is committed on its own
START_RECORD_DELAY_S = 0.05


class HeldWrite:
    """Writes held on a ``HeldWrites`` shelf: ``take()`` them, or they are submitted when their time is up."""

    __slots__ = ("_due", "_future", "_ops", "_writer")

    def __init__(self, writer: GroupCommitWriter, ops: Sequence[Op], due: float) -> None:
        self._writer = writer
        self._ops: Sequence[Op] | None = ops
        self._due = due
        self._future: asyncio.Future[None] | None = None

    def take(self) -> Sequence[Op] | None:
        """The held writes, for the caller to submit with its own; None if they were submitted already."""
        ops, self._ops = self._ops, None
        return ops

    def flush(self) -> None:
        """Submit the held writes now (nothing if they were taken or submitted)."""
        ops, self._ops = self._ops, None
        if ops is not None:
            self._future = self._writer.submit(ops)
            self._future.add_done_callback(_retrieve)

    def then_submit(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Submit ``ops`` once the writes ``flush`` submitted are committed: the future is ``ops``' commit,
        or the failure of the flushed writes (then ``ops`` are not submitted)."""
        first = self._future
        if first is None or (first.done() and first.exception() is None):
            return self._writer.submit(ops)
        return asyncio.ensure_future(self._after(first, ops))  # rare: an attempt that ran past the delay

    async def _after(self, first: asyncio.Future[None], ops: Sequence[Op]) -> None:
        await first
        await self._writer.submit(ops)


class HeldWrites:
    """The held writes of one writer, on the running event loop."""

    def __init__(self, writer: GroupCommitWriter, delay_s: float = START_RECORD_DELAY_S) -> None:
        self.writer = writer
        self.delay_s = delay_s
        self._held: collections.deque[HeldWrite] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def hold(self, ops: Sequence[Op]) -> HeldWrite:
        """Hold ``ops`` for at most ``delay_s``."""
        loop = asyncio.get_running_loop()
        held = HeldWrite(self.writer, ops, loop.time() + self.delay_s)
        self._held.append(held)
        if self._timer is None:
            self._timer = loop.call_at(held._due, self._sweep)
        return held

    def _sweep(self) -> None:
        self._timer = None
        queue = self._held
        now = asyncio.get_running_loop().time()
        while queue and (queue[0]._ops is None or queue[0]._due <= now):
            queue.popleft().flush()
        if queue:
            self._timer = asyncio.get_running_loop().call_at(queue[0]._due, self._sweep)

    def flush(self) -> None:
        """Submit everything held now (before the writer closes)."""
        while self._held:
            self._held.popleft().flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _retrieve(future: asyncio.Future[None]) -> None:
    """A failure nobody awaits is logged by the writer; reading it here keeps asyncio from warning again."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("held writes were not stored: %s", future.exception())

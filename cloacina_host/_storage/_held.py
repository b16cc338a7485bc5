"""Writes nobody waits for, held back so that they ride along with a later commit instead of costing one.

The engine records an attempt's start without waiting for it: the task runs at once. Submitted on
its own, that record would cost a commit (an fsync) of its own in a quiet host, one before the
attempt's end. ``HeldWrite`` keeps it on the event loop instead: when the attempt ends, its end
``take()``s the held writes and stores both in one commit (``_ops.ran`` folds them into one write per
row); an attempt still running after ``delay_s`` has its start submitted then, so a long task shows
``running`` and a host killed during it leaves a record of the attempt for recovery to mark
``interrupted``. ``flush()`` submits at once (the engine cancels the attempt: shutdown, lost lease).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ._writer import GroupCommitWriter, Op

log = logging.getLogger("cloacina_host.storage")

#: how long an attempt's start may wait for its end before it is committed on its own
START_RECORD_DELAY_S = 0.05


class HeldWrite:
    """``ops`` held for at most ``delay_s`` on the running loop, then submitted to ``writer``."""

    __slots__ = ("_future", "_ops", "_timer", "_writer")

    def __init__(self, writer: GroupCommitWriter, ops: Sequence[Op], delay_s: float = START_RECORD_DELAY_S) -> None:
        self._writer = writer
        self._ops: Sequence[Op] | None = ops
        self._future: asyncio.Future[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(delay_s, self.flush)

    def take(self) -> Sequence[Op] | None:
        """The held writes, for the caller to submit with its own; None if they were submitted already."""
        ops, self._ops = self._ops, None
        if ops is not None:
            self._timer.cancel()
        return ops

    def flush(self) -> None:
        """Submit the held writes now (nothing if they were taken or submitted)."""
        ops = self.take()
        if ops is not None:
            self._future = self._writer.submit(ops)
            self._future.add_done_callback(_retrieve)

    async def stored(self) -> None:
        """Wait until the writes submitted by ``flush`` are committed (raises ``StorageError`` if they failed)."""
        if self._future is not None:
            await self._future


def _retrieve(future: asyncio.Future[None]) -> None:
    """A failure nobody awaits is still logged once (the writer logs it), not as "never retrieved"."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("held writes were not stored: %s", future.exception())

"""A private event loop in a thread, so that the runner's synchronous methods work from any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._errors import UsageError

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on one long-lived loop in a daemon thread."""

    def __init__(self, name: str = "cloacina-runner") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it is done."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise UsageError(
                "A synchronous DefaultRunner method was called from inside the runner's own loop; "
                "await the async form (execute, submit, wait, aclose) there instead."
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

"""Hardening tests: a package that misbehaves at import time (chosen by ``$REG_HOSTILE``, unset when
packaging) and tasks that misbehave when run.

``$REG_HOSTILE``:
- ``fork-daemon``: fork a child that writes its pid to ``$REG_HOSTILE_PIDFILE`` and sleeps for an
  hour, holding every inherited descriptor (stdout, stderr, the worker's pipes);
- ``print``: print 1 GiB (1,024 lines of 1 MiB) to stdout;
- ``keyboard-interrupt``, ``system-exit``, ``custom-base``: raise that.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from cloacina_workflow import Context, task, workflow


class HostileInterrupt(BaseException):
    """Not an ``Exception``: escapes ``except Exception``."""


def _sleep_forever_in_a_child(pidfile: str) -> None:
    """Fork a child that records its pid and sleeps an hour, keeping every inherited descriptor."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            Path(pidfile).write_text(str(os.getpid()))
            time.sleep(3600)
        finally:
            os._exit(0)


_MODE = os.environ.get("REG_HOSTILE", "")
if _MODE == "fork-daemon":
    _sleep_forever_in_a_child(os.environ["REG_HOSTILE_PIDFILE"])
elif _MODE == "print":
    _line = "x" * (1024 * 1024 - 1)
    for _ in range(1024):
        print(_line)
    sys.stdout.flush()
elif _MODE == "keyboard-interrupt":
    raise KeyboardInterrupt
elif _MODE == "system-exit":
    raise SystemExit(3)
elif _MODE == "custom-base":
    raise HostileInterrupt("reg_hostile refuses to import")


@workflow(name="hostile", package="reg_hostile")
class hostile:
    @task(id="noop")
    def noop(context: Context) -> None:
        context.set("ran", True)


@workflow(name="fork_flow", package="reg_hostile")
class fork_flow:
    @task(id="forks")
    def forks(context: Context) -> None:
        """Leaves a grandchild of the worker holding the worker's pipes, then returns."""
        _sleep_forever_in_a_child(context.get("pidfile"))
        context.set("forked", True)


@workflow(name="block_flow", package="reg_hostile")
class block_flow:
    @task(id="blocks", timeout_s=1.0)
    async def blocks(context: Context) -> None:
        """Blocks the worker's event loop past its timeout: cancelling it cannot stop it."""
        time.sleep(3600)
        await asyncio.sleep(0)


@workflow(name="huge_flow", package="reg_hostile")
class huge_flow:
    @task(id="huge")
    def huge(context: Context) -> None:
        """An output context of 70 MB: over MAX_CONTEXT_BYTES."""
        context.set("blob", "y" * (70 * 1000 * 1000))

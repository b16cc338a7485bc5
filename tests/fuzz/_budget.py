"""The fuzz session's time box: each target runs hypothesis batches until its share of the budget is spent.

``CLOACINA_FUZZ_SECONDS`` (default 60) is the budget of the whole session, shared equally by the
targets; ``CLOACINA_FUZZ_SEED`` fixes the seed (else one is drawn and printed). Every example runs
under a per-example deadline (``CLOACINA_FUZZ_EXAMPLE_SECONDS``, default 10): an input that makes the
code under test run longer fails the target as a hang, with the input saved for a reproducer.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import resource
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

T = TypeVar("T")

TOTAL_SECONDS = float(os.environ.get("CLOACINA_FUZZ_SECONDS", "60"))
EXAMPLE_SECONDS = float(os.environ.get("CLOACINA_FUZZ_EXAMPLE_SECONDS", "10"))
SEED = int(os.environ.get("CLOACINA_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
#: long runs shrink what they find; short (CI) runs do not, so a hang fails in seconds, not minutes
SHRINK = os.environ.get("CLOACINA_FUZZ_SHRINK", "1" if TOTAL_SECONDS > 120 else "0") == "1"
BATCH = 25
#: address space the fuzzing process may use once a target starts: an input that makes a reader
#: allocate without bound fails with MemoryError (a failure of the target) instead of swapping
MEMORY_LIMIT = 3 * 1024**3


def limit_memory() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))


class Hang(Exception):
    """An example ran past the per-example deadline."""


@dataclass
class Tally:
    """What each target tried, for the session summary."""

    examples: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


TALLY = Tally()
ARTIFACTS = Path(os.environ.get("CLOACINA_FUZZ_ARTIFACTS") or tempfile.mkdtemp(prefix="cloacina-fuzz-"))


@contextmanager
def example_deadline(seconds: float = EXAMPLE_SECONDS) -> Iterator[None]:
    """Raise ``Hang`` in this (main) thread if the block runs longer than ``seconds``."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"the example ran longer than {seconds:g}s (the per-example deadline)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def save(name: str, value: Any) -> Path:
    """Keep a failing input (pickled; bytes and text as they are) and return where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if isinstance(value, bytes):
        path = ARTIFACTS / f"{_slug(name)}-{time.time_ns()}.bin"
        path.write_bytes(value)
    elif isinstance(value, str):
        path = ARTIFACTS / f"{_slug(name)}-{time.time_ns()}.txt"
        path.write_text(value, encoding="utf-8", errors="surrogatepass")
    else:
        path = ARTIFACTS / f"{_slug(name)}-{time.time_ns()}.pickle"
        try:
            path.write_bytes(pickle.dumps(value))
        except Exception:  # noqa: BLE001 - a value that cannot be pickled is kept as its repr
            path.write_text(repr(value)[:1_000_000], encoding="utf-8", errors="replace")
    return path


def fuzz(name: str, strategy: st.SearchStrategy[T], check: Callable[[T], None], *, share: float) -> None:
    """Run ``check`` on examples of ``strategy`` for ``share`` of the session's budget (at least one batch).

    ``check`` raises ``AssertionError`` when the property fails; any other exception it lets out fails
    the target too. The failing input is saved under ``ARTIFACTS`` and named in the failure.
    """
    limit_memory()
    budget = TOTAL_SECONDS * share
    started = time.monotonic()
    TALLY.examples.setdefault(name, 0)
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])]
    batch = 0
    while True:

        @seed(SEED + batch)
        @settings(
            max_examples=BATCH,
            deadline=None,
            database=None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(strategy)
        def one(value: T) -> None:
            TALLY.examples[name] += 1
            try:
                with example_deadline():
                    check(value)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                where = save(name, value)
                TALLY.failures[name] = f"{type(exc).__name__}: {str(exc)[:200]} (input saved in {where})"
                raise AssertionError(
                    f"{name}: {type(exc).__name__}: {str(exc)[:500]}\n(the input is saved in {where})"
                ) from exc

        try:
            one()
        finally:
            TALLY.seconds[name] = time.monotonic() - started
        batch += 1
        if time.monotonic() - started >= budget:
            return

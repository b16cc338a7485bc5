"""The chaos session (``nox -s chaos``): a seeded RNG for the kill moments, the number of rounds, real
processes started in their own process group (ended at teardown), and a summary of what was killed.

``CLOACINA_CHAOS_ROUNDS`` (default 3) is the number of kills per target; ``CLOACINA_CHAOS_SEED``
fixes the seed (else one is drawn and printed). The scale-out tests' fixtures (the scale-flows plugin
installed in a directory, real ``cloacina-ctl worker`` processes, the side-file reader) are reused.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("CLOACINA_CHAOS_ROUNDS", "3"))
SEED = int(os.environ.get("CLOACINA_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
#: a crashed-and-recovered execution must finish within this (so a regression fails, never hangs)
RECOVERY_DEADLINE_S = 90.0


def reused(module: str) -> ModuleType:
    """A module of the other suites (``tests`` is no package): imported by its dotted path from the root."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    return importlib.import_module(module)


_scaleout = reused("tests.integration.scaleout.conftest")
scale_site = _scaleout.scale_site
start_worker = _scaleout.start_worker
read_runs = _scaleout.read_runs
CTL: Path = _scaleout.CTL


@dataclass
class Report:
    """Per test: the rounds run and what was killed when (printed in the summary)."""

    lines: dict[str, list[str]] = field(default_factory=dict)


REPORT = Report()


def pytest_report_header() -> str:
    return f"cloacina chaos: seed {SEED} (CLOACINA_CHAOS_SEED), {ROUNDS} rounds per target (CLOACINA_CHAOS_ROUNDS)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("cloacina chaos summary")
    terminalreporter.write_line(f"seed {SEED}, {ROUNDS} rounds per target")
    for test, lines in REPORT.lines.items():
        terminalreporter.write_line(test)
        for line in lines:
            terminalreporter.write_line(f"  {line}")
    terminalreporter.write_line(
        f"reproduce with CLOACINA_CHAOS_SEED={SEED} CLOACINA_CHAOS_ROUNDS={ROUNDS} nox -s chaos"
    )


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Random delays for this test, from the session's seed (each test its own stream)."""
    return random.Random(f"{SEED}:{request.node.name}")


@pytest.fixture
def events(request: pytest.FixtureRequest) -> list[str]:
    """Lines of this test's summary."""
    return REPORT.lines.setdefault(request.node.name, [])


@dataclass
class Processes:
    """Processes a test started, each leading its own process group; all groups are killed at teardown."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.started.append(proc)
        return proc

    def adopt(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.started.append(proc)
        return proc

    @staticmethod
    def kill9(proc: subprocess.Popen[bytes]) -> int | None:
        """SIGKILL the process itself (a crash: its children are left as a crash leaves them) and reap it,
        so that its pid is no longer alive for the next host's recovery. Returns its status if it had
        already exited."""
        before = proc.poll()
        if before is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return before

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.close()

"""Scale-out fixtures: the scale-flows test plugin installed in a target directory, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

PROJECT = Path(__file__).parents[2] / "packages" / "scale-flows"
CTL = Path(sys.executable).with_name("cloacina-ctl")


@pytest.fixture(scope="session")
def scale_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, wheelhouse: ModuleType
) -> Path:
    """A directory holding ``cloacina-test-scale-flows`` (workflows ``scale::simple|pipeline|parallel|slow``)."""
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("cloacina-wheels") if cache is not None else tmp_path_factory.mktemp("wheels")
    wheel = wheelhouse.build_wheel(PROJECT, cache_dir)
    return wheelhouse.install_wheels([wheel], tmp_path_factory.mktemp("scale-site"))  # type: ignore[no-any-return]


@pytest.fixture
def scale_flows(scale_site: Path, wheelhouse: ModuleType) -> Iterator[ModuleType]:
    """The plugin's module imported here too (the submitter needs the workflows' structure)."""
    with wheelhouse.fresh_imports(["cloacina_test_scale_flows"]):
        sys.path.insert(0, str(scale_site))
        import cloacina_test_scale_flows

        yield cloacina_test_scale_flows


@dataclass
class WorkerProcess:
    """A real ``cloacina-ctl worker``; its stderr goes to ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                pytest.fail(f"worker {self.name} exited ({self.process.returncode}) before {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} never logged {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"worker {self.name} did not stop within {timeout}s of SIGTERM:\n{self.output()}")


@pytest.fixture
def start_worker(scale_site: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(url, name, *options)``: a ``cloacina-ctl worker`` seeing the scale-flows plugin."""
    started: list[WorkerProcess] = []
    env = {
        **os.environ,
        "PYTHONPATH": str(scale_site),
        "CLOACINA_HOME": str(tmp_path / "home"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CLOACINA_DATABASE_URL", None)

    def start(url: str, name: str, *options: str) -> WorkerProcess:
        log = tmp_path / f"worker-{name}.log"
        with open(log, "wb") as stderr:
            process = subprocess.Popen(
                [str(CTL), "worker", "--database-url", url, "--name", name, *options],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
            )
        worker = WorkerProcess(name, process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture(scope="session")
def ctl() -> Path:
    """The installed ``cloacina-ctl`` console script."""
    return CTL


@pytest.fixture(scope="session")
def read_runs() -> Callable[[Path], tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[int]]]]:
    """``read_runs(out_dir)``: the runs the tasks recorded, ``(counts, pids)`` by ``(key, task)``."""
    return _read_runs


def _read_runs(out_dir: Path) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[int]]]:
    """Runs recorded by the tasks themselves: how often each ``(key, task)`` ran, and in which pids."""
    counts: Counter[tuple[str, str]] = Counter()
    pids: dict[tuple[str, str], list[int]] = {}
    for log in out_dir.glob("runs-*.log"):
        for line in log.read_text(encoding="utf-8").splitlines():
            key, task, pid = line.split()
            counts[(key, task)] += 1
            pids.setdefault((key, task), []).append(int(pid))
    return counts, pids

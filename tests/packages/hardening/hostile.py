"""Helpers of the hardening tests: the hostile sample archives, the CLI in a real subprocess (with its
peak memory), and waiting for a process to be gone. Loaded by path (``tests`` is no package).

- ``hostile``: reg-hostile, whose import misbehaves per ``$REG_HOSTILE`` and whose tasks misbehave;
- ``shadow-host``: reg-shadow-host, whose wheel installs a top-level ``pydantic``. Packaging refuses
  it (that is tested too), so its archive is made with the graph read from the same project without
  ``pydantic`` and the packager's shadow checks switched off: the registry must still refuse it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest import mock

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "packages"

#: Runs ``main(argv)`` and writes the process's own peak RSS in KiB to a file: ``VmHWM``, which exec
#: resets (getrusage's ru_maxrss keeps the peak of the process it was forked from, here pytest's).
_CTL = """
import sys
from cloacina_host.cli import main
try:
    status = main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status_file:
        peak = next(line.split()[1] for line in status_file if line.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as f:
        f.write(peak)
sys.exit(status)
"""


def _archives() -> ModuleType:
    load_helper = importlib.import_module("tests.conftest").load_helper  # tests/ is not a package
    return load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")


def build(cache: Path) -> dict[str, Path]:
    archives = _archives()
    built = {"hostile": archives.archive(cache, "reg-hostile", PACKAGES / "reg-hostile")}
    built["shadow-host"] = _shadow_host_archive(cache, archives)
    return built


def _shadow_host_archive(cache: Path, archives: ModuleType) -> Path:
    from cloacina_host import package_workflow
    from cloacina_host._packaging import _package

    project = PACKAGES / "reg-shadow-host"
    key = f"reg-shadow-host-{archives._digest(project, 'host-shadow')}"
    real_load = _package.load_workflows

    def make(staging: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="cloacina-shadow-host-") as tmp:
            clean = Path(shutil.copytree(project, Path(tmp) / "clean"))
            shutil.rmtree(clean / "src" / "pydantic")
            text = (clean / "pyproject.toml").read_text().replace(', "src/pydantic"', "")
            (clean / "pyproject.toml").write_text(text)
            import build as pypa_build

            clean_wheel = Path(pypa_build.ProjectBuilder(clean).build("wheel", Path(tmp) / "dist"))

            def load_from_clean(wheels: Sequence[Path], *args: object, **kwargs: object) -> object:
                return real_load([clean_wheel, *wheels[1:]], *args, **kwargs)  # type: ignore[arg-type]

            shadows = [f"cloacina_host._packaging.{m}.stdlib_shadows" for m in ("_package", "_reader")]
            with (
                mock.patch("cloacina_host._packaging._package.load_workflows", load_from_clean),
                mock.patch(shadows[0], return_value=[]),
                mock.patch(shadows[1], return_value=[]),
            ):
                package_workflow(project, staging / "reg-shadow-host.cloacina", isolation=False)

    return archives._cached(cache, key, make)


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    stderr: str
    peak_rss_bytes: int


def ctl(
    args: Sequence[str], env: Mapping[str, str], tmp: Path, *, timeout_s: float = 180, to_files: bool = False
) -> Ran:
    """``cloacina-ctl ARGS`` in a real subprocess (own session, killed with its group on timeout).

    ``to_files``: its stdout and stderr go to files instead of pipes (so the test never holds a
    flood in memory); only their first 1 MiB is read back.
    """
    rss_file = tmp / f"rss-{time.monotonic_ns()}"
    argv = [sys.executable, "-c", _CTL, str(rss_file), *args]
    full_env = {**os.environ, **env}
    if to_files:
        out_path, err_path = tmp / f"out-{time.monotonic_ns()}", tmp / f"err-{time.monotonic_ns()}"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, env=full_env, start_new_session=True)
            status = _wait(proc, timeout_s)
        stdout = out_path.read_bytes()[: 1 << 20].decode(errors="replace")
        stderr = err_path.read_bytes()[: 1 << 20].decode(errors="replace")
        assert out_path.stat().st_size < 1 << 20, "the CLI flooded its stdout"
        assert err_path.stat().st_size < 1 << 20, "the CLI flooded its stderr"
    else:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, start_new_session=True, text=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise
        status = proc.returncode
    rss = int(rss_file.read_text()) if rss_file.exists() else 0
    return Ran(status, stdout, stderr, rss if sys.platform == "darwin" else rss * 1024)


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise


def _kill(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    return True


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout_s:g} s: {what}")
        time.sleep(0.05)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """``wait_until`` for a coroutine: polls without blocking the event loop."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout_s:g} s: {what}")
        await asyncio.sleep(0.02)


def read_pid(pidfile: Path, timeout_s: float = 30) -> int:
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout_s, f"{pidfile} written")
    return int(pidfile.read_text())


def reap_leftover(pidfile: Path) -> None:
    """Teardown: if the test failed and the process is still there, end it."""
    if pidfile.exists() and pidfile.read_text().strip():
        pid = int(pidfile.read_text())
        if running(pid):
            os.kill(pid, signal.SIGKILL)

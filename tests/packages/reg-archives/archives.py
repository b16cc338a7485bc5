"""Build the registry tests' ``.cloacina`` archives from the real projects in ``tests/packages/reg-*``.

Each archive is made by ``package_workflow`` (pypa ``build`` without isolation, the task graph read in
a child process), and cached under a directory keyed by a digest of the project's files, so a session
builds each at most once (and a later session not at all). Loaded by path (``tests`` is no package).

- ``swap-1``, ``swap-2``: reg-swap at 1.0.0 and at 2.0.0 (the copy's version rewritten)
- ``crash``: reg-crash (tasks that ``os._exit`` and segfault once)
- ``dep-a``, ``dep-b``: bundle reg-depmod 1.0 and 2.0, both built here from reg-depmod
- ``hang``: reg-hang (its import sleeps for ``$REG_HANG_SECONDS``)
- ``logs``: reg-logs (tasks that print, write to stderr and log; one waits on a gate file)
- ``shadow``: reg-shadow, whose wheel installs a top-level ``json`` (packaged with the packager's own
  shadow check switched off, so that the registry's check is what refuses it)
- ``demo``: the tutorial's simple-packaged-demo
- ``sched-1``, ``sched-2``: sched-flow at 1.0.0 and 2.0.0 (different schedules)
- ``trig``: trig-flow (a trigger firing on a file, one raising, one hanging)
- ``typed``: typed-flow (an input model, and a task that runs only when the context says so)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "packages"
_SKIP = {"__pycache__", "build", "dist", ".pytest_cache"}


def _digest(project: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if not path.is_file() or _SKIP & set(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def copy_project(project: Path, dest: Path, version: str | None = None) -> Path:
    """A copy of ``project`` in ``dest``; ``version`` rewrites its ``1.0.0``/``1.0`` version everywhere."""
    target = Path(shutil.copytree(project, dest / project.name, ignore=shutil.ignore_patterns(*_SKIP, "*.pyc")))
    if version is not None:
        for path in [target / "pyproject.toml", *target.rglob("__init__.py")]:
            text = path.read_text(encoding="utf-8")
            text = text.replace('version = "1.0.0"', f'version = "{version}"').replace(
                'version = "1.0"', f'version = "{version}"'
            )
            text = text.replace('VERSION = "1.0.0"', f'VERSION = "{version}"').replace(
                'VERSION = "1.0"', f'VERSION = "{version}"'
            )
            path.write_text(text, encoding="utf-8")
    return target


def _cached(cache: Path, key: str, make: Callable[[Path], None]) -> Path:
    """``cache/key/<file>``, made by ``make(staging_dir)`` unless present."""
    slot = cache / key
    found = sorted(slot.glob("*")) if slot.is_dir() else []
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        make(staging)
        try:
            os.rename(staging, slot)
        except OSError:  # another process was faster
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(slot.glob("*"))[0]


def archive(
    cache: Path,
    name: str,
    project: Path,
    *,
    version: str | None = None,
    find_links: Path | None = None,
    allow_shadow: bool = False,
) -> Path:
    from cloacina_host import package_workflow

    with tempfile.TemporaryDirectory(prefix="cloacina-reg-src-") as tmp:
        source = copy_project(project, Path(tmp), version)
        key = f"{name}-{_digest(source, f'{find_links is not None}{allow_shadow}')}"

        def make(staging: Path) -> None:
            options: dict[str, object] = {}
            if find_links is not None:
                options = {"bundle_deps": True, "find_links": [str(find_links)], "no_index": True}
            out = staging / f"{name}.cloacina"
            if allow_shadow:
                with (
                    mock.patch("cloacina_host._packaging._package.stdlib_shadows", return_value=[]),
                    mock.patch("cloacina_host._packaging._reader.stdlib_shadows", return_value=[]),
                ):
                    package_workflow(source, out, isolation=False, **options)  # type: ignore[arg-type]
            else:
                package_workflow(source, out, isolation=False, **options)  # type: ignore[arg-type]

        return _cached(cache, key, make)


def depmod_wheels(cache: Path) -> Path:
    """A directory holding reg-depmod 1.0 and 2.0 wheels."""
    import build

    project = PACKAGES / "reg-depmod"
    key = f"depmod-wheels-{_digest(project)}"

    def make(staging: Path) -> None:
        house = staging / "wheels"
        house.mkdir()
        for version in ("1.0", "2.0"):
            with tempfile.TemporaryDirectory(prefix="cloacina-reg-dep-") as tmp:
                source = copy_project(project, Path(tmp), version)
                build.ProjectBuilder(source).build("wheel", house)

    return _cached(cache, key, make)


def build_archives(cache: Path) -> dict[str, Path]:
    """Every archive the registry tests use, by short name."""
    wheels = depmod_wheels(cache)
    jobs: dict[str, Callable[[], Path]] = {
        "swap-1": lambda: archive(cache, "reg-swap-1", PACKAGES / "reg-swap"),
        "swap-2": lambda: archive(cache, "reg-swap-2", PACKAGES / "reg-swap", version="2.0.0"),
        "crash": lambda: archive(cache, "reg-crash", PACKAGES / "reg-crash"),
        "dep-a": lambda: archive(cache, "reg-dep-a", PACKAGES / "reg-dep-a", find_links=wheels),
        "dep-b": lambda: archive(cache, "reg-dep-b", PACKAGES / "reg-dep-b", find_links=wheels),
        "hang": lambda: archive(cache, "reg-hang", PACKAGES / "reg-hang"),
        "logs": lambda: archive(cache, "reg-logs", PACKAGES / "reg-logs"),
        "demo": lambda: archive(cache, "demo", ROOT / "plugins" / "simple-packaged-demo"),
        "sched-1": lambda: archive(cache, "sched-flow-1", PACKAGES / "sched-flow"),
        "sched-2": lambda: archive(cache, "sched-flow-2", PACKAGES / "sched-flow", version="2.0.0"),
        "trig": lambda: archive(cache, "trig-flow-1", PACKAGES / "trig-flow"),
        "typed": lambda: archive(cache, "typed-flow", PACKAGES / "typed-flow"),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        built = {name: future.result() for name, future in futures.items()}
    built["shadow"] = archive(cache, "reg-shadow", PACKAGES / "reg-shadow", allow_shadow=True)  # patches: alone
    return built

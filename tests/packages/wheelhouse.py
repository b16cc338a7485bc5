"""Build the projects tests need into real wheels (pypa ``build``) and install them (``installer``).

Tests load this module by path (``tests/`` is not a package); fixtures in
``tests/integration/conftest.py`` and ``tests/acceptance/test_cli_plugins.py`` call it. Wheels are
built without isolation (the test environment has hatchling), several at once, and cached under a
directory keyed by a digest of each project's files, so a session builds each project at most once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import build
import pyproject_hooks
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from installer.utils import get_launcher_kind

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = Path(__file__).resolve().parent

#: The real workflow packages of the repository: name -> project directory.
PLUGINS: Mapping[str, Path] = {
    "simple-packaged-demo": ROOT / "plugins" / "simple-packaged-demo",
    "etl-toolkit": ROOT / "plugins" / "etl-toolkit",
}
#: The small broken or conflicting plugins under tests/packages/: name -> project directory. Listed, not
#: globbed: other sample projects live beside them (some are meant not to build at all).
TEST_PACKAGES: Mapping[str, Path] = {
    name: PACKAGES / name
    for name in (
        "broken-import",
        "raising-hook",
        "not-a-workflow",
        "misspelt-hook",
        "no-hooks",
        "duplicate-one",
        "duplicate-two",
    )
}

#: Top-level modules the projects above install; tests forget them around in-process discovery.
MODULES = (
    "simple_packaged_demo",
    "etl_toolkit",
    *(f"cloacina_test_{name.replace('-', '_')}" for name in TEST_PACKAGES),
)

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".pytest_cache")
_SKIP_PARTS = {"__pycache__", "build", "dist", ".pytest_cache"}


def source_digest(project: Path) -> str:
    """A digest of every file of ``project`` that a build could read."""
    digest = hashlib.sha256()
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if not path.is_file() or _SKIP_PARTS & set(relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(project: Path, cache: Path) -> Path:
    """The wheel of ``project``, built with pypa ``build`` (no isolation) unless the cache has it."""
    slot = cache / f"{project.name}-{source_digest(project)[:20]}"
    cached = sorted(slot.glob("*.whl"))
    if cached:
        return cached[0]
    with tempfile.TemporaryDirectory(prefix="cloacina-build-") as tmp:
        source = Path(tmp) / project.name
        shutil.copytree(project, source, ignore=_IGNORED)  # never write into the repository
        builder = build.ProjectBuilder(source, runner=pyproject_hooks.quiet_subprocess_runner)
        missing = builder.check_dependencies("wheel")
        if missing:
            raise RuntimeError(
                f"Cannot build {project} without isolation: missing {sorted(map(str, missing))}. "
                "Install the test dependency group (it lists hatchling)."
            )
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))  # same file system as the slot
        built = Path(builder.build("wheel", staging))
        try:
            os.rename(staging, slot)
        except OSError:  # another process filled the slot first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
        wheel = slot / built.name
        if not wheel.is_file():
            raise RuntimeError(f"Built {built.name} but found no {wheel}")
        return wheel


def build_wheels(projects: Mapping[str, Path], cache: Path) -> dict[str, Path]:
    """Build every project (in parallel: each build runs in its own subprocess)."""
    with ThreadPoolExecutor(max_workers=min(8, len(projects)) or 1) as pool:
        futures = {name: pool.submit(build_wheel, path, cache) for name, path in projects.items()}
        return {name: future.result() for name, future in futures.items()}


def install_wheels(wheels: Iterable[Path], target: Path) -> Path:
    """Install ``wheels`` into ``target`` (a ``--target``-style directory) with ``installer``."""
    target.mkdir(parents=True, exist_ok=True)
    scheme = {
        "purelib": target,
        "platlib": target,
        "headers": target / "include",
        "scripts": target / "bin",
        "data": target / "data",
    }
    destination = SchemeDictionaryDestination(
        {key: str(value) for key, value in scheme.items()},
        interpreter=sys.executable,
        script_kind=get_launcher_kind(),
    )
    for wheel in wheels:
        with WheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": b"cloacina-tests\n"})
    return target


@contextlib.contextmanager
def fresh_imports(modules: Iterable[str] = MODULES) -> Iterator[None]:
    """Import ``modules`` afresh inside the block; afterwards restore ``sys.path`` and ``sys.modules``.

    In the test environment the real plugins are also installed in site-packages, and their own
    tests may have imported them already: without this, discovery from a target directory would
    hand back those modules instead of the ones installed there.
    """
    names = tuple(modules)

    def ours(module: str) -> bool:
        return any(module == name or module.startswith(f"{name}.") for name in names)

    importlib.invalidate_caches()
    saved_path = list(sys.path)
    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = saved_path

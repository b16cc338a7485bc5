"""Content-addressed installs: ``<home>/packages/<archive sha256>/``, one per archive ever registered.

The wheels of an archive are installed with ``installer`` (RECORD hashes checked) into a temporary
directory beside the final one, which is then renamed into place: a crash never leaves a
half-installed directory where a worker could find it. A missing directory is re-created from the
archive stored in the database, so a second machine sharing the database needs nothing copied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .._packaging import Archive
from .._packaging._extract import install_wheels
from .._settings import cloacina_home
from ._errors import RegistryError

#: Written last into a finished install: a directory without it is not used.
COMPLETE_MARKER = ".cloacina-installed"


def packages_root(home: str | os.PathLike[str] | None) -> Path:
    return cloacina_home(home) / "packages"


def install_dir(home: str | os.PathLike[str] | None, sha256: str) -> Path:
    return packages_root(home) / sha256


def is_installed(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file()


def ensure_installed(home: str | os.PathLike[str] | None, archive: Archive) -> tuple[Path, bool]:
    """The archive's install directory, installing it when missing; and whether this call created it."""
    target = install_dir(home, archive.sha256)
    if is_installed(target):
        return target, False
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".installing-{archive.sha256[:12]}-", dir=root))
    except OSError as exc:
        raise RegistryError(
            f"Cannot create an install directory under {root}: {exc.strerror}. Choose another --home "
            "(or CLOACINA_HOME) where Cloacina may write."
        ) from exc
    try:
        wheels_dir = staging / ".wheels"
        wheels_dir.mkdir()
        paths = []
        for filename in [archive.manifest.wheel.filename, *(b.filename for b in archive.manifest.bundled_wheels)]:
            path = wheels_dir / filename
            path.write_bytes(archive.wheels[filename])
            paths.append(path)
        try:
            install_wheels(paths, staging)
        except Exception as exc:  # installer raises many kinds on a bad wheel: one message
            raise RegistryError(
                f"{archive.source}: cannot install {archive.manifest.wheel.filename} with installer: "
                f"{type(exc).__name__}: {exc}. Rebuild the archive with cloacina-ctl package."
            ) from exc
        shutil.rmtree(wheels_dir)
        (staging / COMPLETE_MARKER).write_text(archive.sha256 + "\n", encoding="utf-8")
        if target.exists() and not is_installed(target):  # debris of an older, interrupted layout
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            if is_installed(target):  # another process installed the same archive first: use theirs
                shutil.rmtree(staging, ignore_errors=True)
                return target, False
            raise
        return target, True
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_install(path: Path) -> None:
    """Remove an install directory this process created (a registration that failed)."""
    shutil.rmtree(path, ignore_errors=True)

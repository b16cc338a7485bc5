"""Content-addressed installs: ``<home>/packages/<archive sha256>/``, one per archive ever registered.

The wheels of an archive are installed with ``installer`` (RECORD hashes checked) into a temporary
directory beside the final one, which is then renamed into place: a crash never leaves a
half-installed directory where a worker could find it, and the staging directory a killed
install leaves is removed by a later one (``_staging``). A missing directory is re-created from the
archive stored in the database, so a second machine sharing the database needs nothing copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .._packaging import Archive
from .._packaging._extract import install_wheels
from .._settings import cloacina_home
from ._errors import RegistryError
from ._staging import Staging, clean_stale, make_staging

#: Written last into a finished install: a directory without it is not used.
COMPLETE_MARKER = ".cloacina-installed"


def packages_root(home: str | os.PathLike[str] | None) -> Path:
    return cloacina_home(home) / "packages"


def install_dir(home: str | os.PathLike[str] | None, sha256: str) -> Path:
    return packages_root(home) / sha256


def is_installed(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file()


def _new_staging(root: Path, archive: Archive) -> Staging:
    for attempt in (1, 2):
        try:
            root.mkdir(parents=True, exist_ok=True)
            return make_staging(root, archive.sha256[:12])
        except FileNotFoundError:  # the root was removed meanwhile (emptied by a refused install): again
            if attempt == 2:
                raise
        except OSError as exc:
            raise RegistryError(
                f"Cannot create an install directory under {root}: {exc.strerror}. Choose another --home "
                "(or CLOACINA_HOME) where Cloacina may write."
            ) from exc
    raise AssertionError("unreachable")


def ensure_installed(home: str | os.PathLike[str] | None, archive: Archive) -> tuple[Path, bool]:
    """The archive's install directory, installing it when missing; and whether this call created it.

    Stale staging directories of killed installs are removed first (see ``_staging``).
    """
    target = install_dir(home, archive.sha256)
    if is_installed(target):
        return target, False
    root = target.parent
    clean_stale(root)
    staging = _new_staging(root, archive)
    try:
        wheels_dir = staging.path / ".wheels"
        wheels_dir.mkdir()
        paths = []
        for filename in [archive.manifest.wheel.filename, *(b.filename for b in archive.manifest.bundled_wheels)]:
            path = wheels_dir / filename
            path.write_bytes(archive.wheels[filename])
            paths.append(path)
        try:
            install_wheels(paths, staging.path)
        except Exception as exc:  # installer raises many kinds on a bad wheel: one message
            raise RegistryError(
                f"{archive.source}: cannot install {archive.manifest.wheel.filename} with installer: "
                f"{type(exc).__name__}: {exc}. Rebuild the archive with cloacina-ctl package."
            ) from exc
        shutil.rmtree(wheels_dir)
        (staging.path / COMPLETE_MARKER).write_text(archive.sha256 + "\n", encoding="utf-8")
        if target.exists() and not is_installed(target):  # debris of an older, interrupted layout
            shutil.rmtree(target, ignore_errors=True)
        staging.release()
        try:
            os.rename(staging.path, target)
        except OSError:
            if is_installed(target):  # another process installed the same archive first: use theirs
                shutil.rmtree(staging.path, ignore_errors=True)
                return target, False
            raise
        return target, True
    except BaseException:
        staging.close()
        shutil.rmtree(staging.path, ignore_errors=True)
        _remove_root_if_empty(root)
        raise


def _remove_root_if_empty(root: Path) -> None:
    with contextlib.suppress(OSError):
        root.rmdir()


def clean_leftovers(home: str | os.PathLike[str] | None) -> list[Path]:
    """Remove stale staging directories of killed installs under ``<home>/packages``; the ones removed."""
    return clean_stale(packages_root(home))


def remove_install(path: Path) -> None:
    """Remove an install directory this process created (a registration that was refused).

    The install root goes too when that leaves it empty, so a refusal leaves the home as it was.
    """
    shutil.rmtree(path, ignore_errors=True)
    _remove_root_if_empty(path.parent)

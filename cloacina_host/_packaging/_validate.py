"""``validate_archive``: every check the registry runs before storing an archive, without storing it.

The static checks of ``read_archive`` (this interpreter must be able to load the wheels), then the
wheels are unpacked with ``installer`` (RECORD hashes checked) into a temporary directory, the way
the registry installs them, and loaded by the registry's own loader (``_probe.check_loads``): in a
fresh worker, through pluggy with ``check_pending``, within the time limit; what loads must be
exactly what the manifest says (the same workflows, entry points, tasks and fingerprints). A
package that ``validate`` accepts, ``register`` accepts; what it refuses, it refuses in the same words.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from ._errors import ArchiveError
from ._extract import unpacked_site
from ._manifest import Manifest
from ._probe import check_loads
from ._reader import Archive, read_archive

#: The checks ``validate_archive`` runs, in order (reported by ``cloacina-ctl validate``).
CHECKS = (
    "zip structure, member names, links, sizes and compression ratios",
    "manifest.json first, JSON, known format_version, schema",
    "signatures (if any) well formed and verifying over manifest.json's bytes",
    "wheel sizes and sha256 match the manifest",
    "wheels are wheels: dist-info, METADATA, WHEEL tags, entry points",
    "wheel tags loadable by this interpreter",
    "no top-level module shadows the standard library",
    "task graphs valid (known dependencies, no cycles)",
    "wheels install cleanly (RECORD hashes)",
    "entry points load within the time limit and match the manifest (workflows, entry points, tasks, "
    "fingerprints): in a fresh worker, through pluggy with check_pending, as register loads them",
)


@dataclass(frozen=True)
class ValidationReport:
    """A valid archive: what was read, and the checks it passed."""

    archive: Archive
    checks: tuple[str, ...] = field(default=CHECKS)

    @property
    def manifest(self) -> Manifest:
        return self.archive.manifest


def validate_archive(
    source: str | os.PathLike[str] | bytes, *, load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S
) -> ValidationReport:
    """Run the registry's checks on an archive without registering it. Raises ``ArchiveError``."""
    archive = read_archive(source, require_compatible=True)

    def fail(message: str) -> ArchiveError:
        return ArchiveError(f"{archive.source}: {message.rstrip('.')}.", path=archive.source)

    manifest = archive.manifest
    with tempfile.TemporaryDirectory(prefix="cloacina-validate-") as tmp:
        paths = []
        for filename in [manifest.wheel.filename, *(b.filename for b in manifest.bundled_wheels)]:
            path = Path(tmp) / filename
            path.write_bytes(archive.wheels[filename])
            paths.append(path)
        with unpacked_site(paths, fail, prefix="cloacina-validate-") as target:
            check_loads(target, manifest, timeout_s=load_timeout_s, fail=fail)
    return ValidationReport(archive=archive)

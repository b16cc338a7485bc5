"""The registry's check before a version becomes active (on ``register`` and on ``activate``).

It is the one loader ``validate`` runs too (``_packaging._probe.check_loads``): the package's install
directory loaded in a fresh worker, the program that later runs its tasks, so what is checked is
what will run, and compared with its manifest. Only the error class and the message's prefix (the
archive or ``NAME==VERSION``) are the registry's.
"""

from __future__ import annotations

from pathlib import Path

from .._packaging import Manifest
from .._packaging._probe import check_loads as load_and_compare
from ._errors import RegistryError


def check_loads(package_dir: Path, manifest: Manifest, *, source: str, timeout_s: float) -> None:
    """Load the package in a fresh worker; ``RegistryError`` unless it gives exactly the manifest's workflows."""

    def fail(message: str) -> RegistryError:
        return RegistryError(f"{source}: {message.rstrip('.')}.")

    load_and_compare(package_dir, manifest, timeout_s=timeout_s, fail=fail)

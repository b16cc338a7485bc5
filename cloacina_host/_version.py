"""The installed host's version, read once from its distribution's metadata."""

from __future__ import annotations

import functools


@functools.cache
def host_version() -> str:
    """``cloacina-host``'s version (``0.0.0+unknown`` for a source tree never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cloacina-host")
    except PackageNotFoundError:  # pragma: no cover - source tree never installed
        return "0.0.0+unknown"

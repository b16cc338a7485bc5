"""In-process discovery needs fresh imports; the wheels and sites come from ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture
def fresh_imports(wheelhouse: ModuleType) -> Iterator[None]:
    """Discover in-process without seeing modules imported earlier; restores sys.path and sys.modules."""
    with wheelhouse.fresh_imports():
        yield

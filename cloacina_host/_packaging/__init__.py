"""Packaging: the ``.cloacina`` archive. Build it (``package_workflow``), read it safely
(``read_archive``), check it as the registry will (``validate_archive``), start a project (``scaffold``).

Each name is imported on first use (PEP 562): ``inspect`` needs the reader, not the builder, pypa
build, installer or the worker machinery that ``package`` and ``validate`` use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from .._defaults import DEFAULT_LOAD_TIMEOUT_S
    from ._errors import ArchiveError, PackagingError
    from ._manifest import FORMAT_VERSION, Manifest, manifest_json_schema, manifest_schema_text
    from ._package import PackageResult, package_workflow
    from ._reader import Archive, read_archive
    from ._validate import ValidationReport, validate_archive

#: public name -> the module that defines it
_LAZY = {
    "DEFAULT_LOAD_TIMEOUT_S": ".._defaults",
    "ArchiveError": "._errors",
    "PackagingError": "._errors",
    "FORMAT_VERSION": "._manifest",
    "Manifest": "._manifest",
    "manifest_json_schema": "._manifest",
    "manifest_schema_text": "._manifest",
    "PackageResult": "._package",
    "package_workflow": "._package",
    "Archive": "._reader",
    "read_archive": "._reader",
    "ValidationReport": "._validate",
    "validate_archive": "._validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "DEFAULT_LOAD_TIMEOUT_S",
    "FORMAT_VERSION",
    "Archive",
    "ArchiveError",
    "Manifest",
    "PackageResult",
    "PackagingError",
    "ValidationReport",
    "manifest_json_schema",
    "manifest_schema_text",
    "package_workflow",
    "read_archive",
    "validate_archive",
]

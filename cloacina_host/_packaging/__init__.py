"""Packaging: the ``.cloacina`` archive. Build it (``package_workflow``), read it safely
(``read_archive``), check it as the registry will (``validate_archive``), start a project (``scaffold``)."""

from __future__ import annotations

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from ._errors import ArchiveError, PackagingError
from ._manifest import FORMAT_VERSION, Manifest, manifest_json_schema, manifest_schema_text
from ._package import PackageResult, package_workflow
from ._reader import Archive, read_archive
from ._validate import ValidationReport, validate_archive

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

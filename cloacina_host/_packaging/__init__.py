"""Packaging: the ``.cloacina`` archive. Build it (``package_workflow``), read it safely
(``read_archive``), check it as the registry will (``validate_archive``), start a project (``scaffold``),
sign it (``sign_archive``, with keys from ``generate_key_pair`` / ``load_signing_key``).

Each name is imported on first use (PEP 562): ``inspect`` needs the reader, not the builder, pypa
build, installer or the worker machinery that ``package`` and ``validate`` use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from .._defaults import DEFAULT_LOAD_TIMEOUT_S
    from ._errors import ArchiveError, PackagingError, SigningError
    from ._keys import (
        PASSPHRASE_ENV,
        KeyPairFiles,
        PublicKey,
        SigningKey,
        generate_key_pair,
        load_signing_key,
        parse_public_key,
        read_public_key,
    )
    from ._manifest import FORMAT_VERSION, Manifest, manifest_json_schema, manifest_schema_text
    from ._package import PackageResult, package_workflow
    from ._reader import Archive, read_archive
    from ._signing import SignatureCheck, SignatureEntry, SignResult, check_signatures, sign_archive
    from ._validate import ValidationReport, validate_archive

#: public name -> the module that defines it
_LAZY = {
    "DEFAULT_LOAD_TIMEOUT_S": ".._defaults",
    "ArchiveError": "._errors",
    "PackagingError": "._errors",
    "SigningError": "._errors",
    "PASSPHRASE_ENV": "._keys",
    "KeyPairFiles": "._keys",
    "PublicKey": "._keys",
    "SigningKey": "._keys",
    "generate_key_pair": "._keys",
    "load_signing_key": "._keys",
    "parse_public_key": "._keys",
    "read_public_key": "._keys",
    "SignatureCheck": "._signing",
    "SignatureEntry": "._signing",
    "SignResult": "._signing",
    "check_signatures": "._signing",
    "sign_archive": "._signing",
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
    "PASSPHRASE_ENV",
    "Archive",
    "ArchiveError",
    "KeyPairFiles",
    "Manifest",
    "PackageResult",
    "PackagingError",
    "PublicKey",
    "SignResult",
    "SignatureCheck",
    "SignatureEntry",
    "SigningError",
    "SigningKey",
    "ValidationReport",
    "check_signatures",
    "generate_key_pair",
    "load_signing_key",
    "manifest_json_schema",
    "manifest_schema_text",
    "package_workflow",
    "parse_public_key",
    "read_archive",
    "read_public_key",
    "sign_archive",
    "validate_archive",
]

"""The names a user types: tenants, package names, versions, ``NAME==VERSION``; checked whole.

Every check is a ``fullmatch`` of a pattern without anchors (``re.match`` with ``$`` accepts a trailing
newline), with a length cap, so a name that passes is safe as a schema name, a file name and a
word in a message. What is refused gets one message naming what is allowed.
"""

from __future__ import annotations

import re

from ._errors import RegistryError, TenantError

#: A tenant names a PostgreSQL schema or a SQLite file as it is: 1 to 63 characters (PostgreSQL's limit).
TENANT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
TENANT_NAME_MAX = 63
_RESERVED_TENANTS = ("pg_", "information_schema")

#: A distribution name (PEP 508), as in the manifest; any spelling (``REG_swap``) normalises to one.
PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
PACKAGE_NAME_MAX = 200
#: A version as typed after ``==``: PEP 440 characters (local versions included), as in the manifest.
VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.+!_-]*[A-Za-z0-9])?")
VERSION_MAX = 100


def shown(value: object, limit: int = 80) -> str:
    """``value`` quoted for a message (``repr``: control characters visible), cut to about ``limit`` chars."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def check_tenant_name(name: str) -> str:
    """``name`` if it is a safe tenant identifier; else ``TenantError`` saying what is allowed."""
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name) or name.startswith(_RESERVED_TENANTS):
        raise TenantError(
            f"Tenant name {shown(name)} is not allowed: use 1 to {TENANT_NAME_MAX} lower-case letters, digits and "
            "'_', starting with a letter (and not pg_* or information_schema), e.g. --tenant acme.",
            tenant=str(name),
        )
    return name


def check_package_name(name: str) -> str:
    """``name`` if it can name a distribution; else ``RegistryError``."""
    if not isinstance(name, str) or len(name) > PACKAGE_NAME_MAX or not PACKAGE_NAME.fullmatch(name):
        raise RegistryError(
            f"Package name {shown(name)} is not a distribution name: use up to {PACKAGE_NAME_MAX} letters, "
            "digits, '.', '_' and '-', starting and ending with a letter or digit, e.g. simple-packaged-demo "
            "(see `cloacina-ctl packages list`)."
        )
    return name


def check_version(version: str, *, name: str = "") -> str:
    """``version`` if it can be a registered version; else ``RegistryError``."""
    if not isinstance(version, str) or len(version) > VERSION_MAX or not VERSION.fullmatch(version):
        what = f" of {name}" if name else ""
        raise RegistryError(
            f"Version {shown(version)}{what} is not a version: use up to {VERSION_MAX} letters, digits and "
            "'.', '+', '!', '_', '-', e.g. 1.0.0 (see `cloacina-ctl packages show NAME`)."
        )
    return version


def parse_requirement(text: str) -> tuple[str, str]:
    """``NAME==VERSION`` → ``(NAME, VERSION)``; ``RegistryError`` for anything else.

    Spaces around either part are allowed; control characters, a second ``==`` and the like are not.
    """
    name, sep, version = text.partition("==")
    name, version = name.strip(" "), version.strip(" ")
    if not sep or not name or not version:
        raise RegistryError(
            f"{shown(text)} does not name a version: write NAME==VERSION, e.g. simple-packaged-demo==1.0.0."
        )
    return check_package_name(name), check_version(version, name=name)
